"""TrainConfig.compile: when "auto" compiles, that a compiled run trains like the eager one, and
that a failing compile under "auto" falls back to eager with a warning."""
import pytest
import torch

import pygzlaw.train.loop as loop
from pygzlaw.model import model_config, train_flops_per_token
from pygzlaw.train import TrainConfig
from pygzlaw.train.config import COMPILE_AUTO_MIN_FLOPS

from trainutil import losses_of, tiny


class _Run:
    def __init__(self, device="cpu", fsdp=False):
        self.device, self.fsdp = torch.device(device), fsdp


def _auto(config=None, **run):
    config = config or tiny()
    return loop._resolve_compile(config, _Run(**run), COMPILE_AUTO_MIN_FLOPS)


def test_auto_compiles_long_cpu_runs_only(monkeypatch):
    monkeypatch.setattr(loop, "_have_cxx", lambda: True)
    cfg = tiny()
    assert loop._resolve_compile(cfg, _Run(), COMPILE_AUTO_MIN_FLOPS * 0.99) is False
    assert _auto(cfg) is True
    assert _auto(cfg, device="cuda") is False          # not measured on a GPU yet: opt-in there
    assert _auto(cfg, fsdp=True) is False
    assert _auto(tiny(kernels="triton")) is False      # the interpreter does not compile
    monkeypatch.setattr(loop, "_have_cxx", lambda: False)
    assert _auto(cfg) is False                         # inductor needs a C++ compiler
    assert loop._resolve_compile(tiny(compile="on"), _Run(), 0) is True
    assert loop._resolve_compile(tiny(compile="off"), _Run(), 1e30) is False


def test_auto_threshold_leaves_the_tiny_study_grid_eager():
    # the tiny study's largest run: w40 on a PCFG vocabulary (~300 ids), D = 512K tokens
    flops = train_flops_per_token(model_config("w40", 301, 256)) * 512 * 1024
    assert flops < COMPILE_AUTO_MIN_FLOPS / 100


@pytest.mark.parametrize("value, mode", [(True, "on"), (False, "off"), ("auto", "auto")])
def test_boolean_compile_is_read_as_on_off(value, mode):
    cfg = tiny(compile=value).validate()
    assert cfg.compile == mode
    assert TrainConfig.from_dict(cfg.to_dict()).compile == mode


def test_unknown_compile_value_is_named():
    with pytest.raises(ValueError, match=r"compile='fast'.*auto"):
        tiny(compile="fast").validate()


def test_failed_compile_under_auto_falls_back_to_eager(monkeypatch):
    eager, _ = losses_of(tiny(compile="off"))

    def broken(model, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler (simulated)")
        return call

    monkeypatch.setattr(loop, "COMPILE_AUTO_MIN_FLOPS", 0.0)
    monkeypatch.setattr(loop, "_have_cxx", lambda: True)
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match=r"compile='auto'.*simulated.*eagerly"):
        fell_back, record = losses_of(tiny(compile="auto"))
    assert record.compiled is False
    assert fell_back == eager                          # the failed attempt left no gradients


def test_a_failed_compile_that_was_asked_for_is_an_error(monkeypatch):
    def broken(model, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("compiler failed (simulated)")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        losses_of(tiny(compile="on"))


def test_compiled_run_trains_like_the_eager_run():
    """The real inductor path on CPU (one compile of a 1-layer w16: ~10-30 s)."""
    eager, rec_e = losses_of(tiny(compile="off", n_tokens=4 * 4 * 16))
    compiled, rec_c = losses_of(tiny(compile="on", n_tokens=4 * 4 * 16))
    assert rec_c.compiled is True and rec_e.compiled is False
    assert rec_c.compile_s > 0 and rec_e.compile_s is None     # the first step held the compile
    assert rec_c.tokens_per_s_steady > rec_c.tokens_per_s      # the steady rate leaves it out
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)
    assert rec_c.val_loss == pytest.approx(rec_e.val_loss, rel=1e-4)
