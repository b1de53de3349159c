"""impl="auto" / "torch" / "triton": which path runs, and the errors when one cannot."""
import importlib
import subprocess
import sys

import pytest
import torch

import pygzlaw.kernels.linear_ce as linear_ce
import pygzlaw.kernels.rmsnorm as rmsnorm
import pygzlaw.kernels.rope as rope
from pygzlaw.kernels import (apply_rope, fused_linear_cross_entropy, rms_norm, rope_tables,
                             swiglu as swiglu_fn)
from pygzlaw.kernels._launch import resolve_impl

# the package's `swiglu` attribute is the public function; the module is in sys.modules
swiglu_module = importlib.import_module("pygzlaw.kernels.swiglu")


def _calls():
    x = torch.randn(2, 3, 1, 4)
    cos, sin = rope_tables(3, 4)
    return {
        "rms_norm": lambda impl: rms_norm(x, torch.ones(4), impl=impl),
        "swiglu": lambda impl: swiglu_fn(x, x, impl=impl),
        "apply_rope": lambda impl: apply_rope(x, x, cos, sin, impl=impl),
        "fused_linear_cross_entropy": lambda impl: fused_linear_cross_entropy(
            torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 4]), impl=impl),
    }


def test_auto_on_cpu_runs_the_torch_path(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a Triton launcher ran for CPU tensors with impl='auto'")

    for mod, name in [(rmsnorm, "rmsnorm_forward"), (swiglu_module, "swiglu_forward"),
                      (rope, "rope_forward")]:
        monkeypatch.setattr(mod, name, boom)
    monkeypatch.setattr(linear_ce, "_ce_fwd_bwd_kernel", None)   # subscripting it would fail
    for op, call in _calls().items():
        call("auto")
    assert resolve_impl("x", "auto", torch.zeros(1)) == "torch"


@pytest.mark.parametrize("op", list(_calls()))
def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch, op):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match=rf"{op}: impl='triton' needs CUDA tensors \(got cpu\)"
                                           r".*TRITON_INTERPRET=1.*impl='torch'"):
        _calls()[op]("triton")


@pytest.mark.parametrize("op", list(_calls()))
def test_unknown_impl_is_named(op):
    with pytest.raises(ValueError, match=rf"{op}: impl='cuda' is not one of 'auto', 'torch'"):
        _calls()[op]("cuda")


def test_import_pygzlaw_does_not_import_torch():
    code = "import sys, pygzlaw; assert 'torch' not in sys.modules and 'triton' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_kernels_import_without_triton():
    """A torch-only install: the module imports, "auto" takes torch, "triton" says why not."""
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from pygzlaw.kernels import rms_norm, HAS_TRITON\n"
        "assert not HAS_TRITON\n"
        "x = torch.randn(2, 4); rms_norm(x, torch.ones(4))\n"
        "try:\n"
        "    rms_norm(x, torch.ones(4), impl='triton')\n"
        "except RuntimeError as e:\n"
        "    assert 'triton is not installed' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
