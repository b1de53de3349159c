"""Shared plumbing for the fused ops: the optional Triton import, choosing an implementation,
and block/warp settings for launches.

Triton is optional: on a machine without it (``pip install pygzlaw[torch]`` on macOS, say) the
``@triton.jit`` decorators below turn into no-ops, the kernel bodies are never run, and every op
takes its PyTorch path.
"""
from __future__ import annotations

import os
import types

import torch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # the torch-only install: kernels stay plain functions, never launched
    HAS_TRITON = False

    def _jit(fn=None, **_kw):
        return fn if fn is not None else (lambda f: f)

    def _next_power_of_2(n: int) -> int:
        return 1 << max(int(n) - 1, 0).bit_length()

    triton = types.SimpleNamespace(jit=_jit, next_power_of_2=_next_power_of_2,
                                   cdiv=lambda a, b: -(-a // b))
    tl = types.SimpleNamespace(constexpr=object)

IMPLS = ("auto", "torch", "triton")

# A row-wise kernel holds a whole row of d values in registers; past this the fused kernel would
# spill, and the PyTorch path is the right tool.
MAX_FUSED_COLS = 65536


def interpreting() -> bool:
    """True when Triton's CPU interpreter is on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def resolve_impl(op: str, impl: str, *tensors: torch.Tensor) -> str:
    """Which implementation ``op`` runs: "torch" or "triton".

    "auto" picks Triton when every tensor is on CUDA and Triton imports, else torch.
    "triton" on CPU tensors needs ``TRITON_INTERPRET=1`` (set before triton is imported).

    Raises:
        ValueError: ``impl`` is not one of "auto", "torch", "triton".
        RuntimeError: ``impl="triton"`` where Triton cannot run (not installed, or CPU tensors
            without the interpreter); the message names the fix.
    """
    if impl not in IMPLS:
        raise ValueError(f"{op}: impl={impl!r} is not one of {', '.join(map(repr, IMPLS))}")
    on_cuda = all(t.is_cuda for t in tensors)
    if impl == "auto":
        return "triton" if (on_cuda and HAS_TRITON) else "torch"
    if impl == "torch":
        return "torch"
    if not HAS_TRITON:
        raise RuntimeError(f"{op}: impl='triton' but triton is not installed; "
                           "pip install triton, or pass impl='torch'")
    if not on_cuda and not interpreting():
        devices = sorted({str(t.device) for t in tensors})
        raise RuntimeError(
            f"{op}: impl='triton' needs CUDA tensors (got {', '.join(devices)}); on CPU set "
            "TRITON_INTERPRET=1 before importing triton (slow, for tests), or pass impl='torch'")
    return "triton"


def check_cols(op: str, n_cols: int) -> int:
    """BLOCK for a kernel that keeps one row of ``n_cols`` values in registers."""
    if n_cols > MAX_FUSED_COLS:
        raise ValueError(f"{op}: hidden size {n_cols} exceeds the fused kernel's maximum "
                         f"({MAX_FUSED_COLS}); pass impl='torch'")
    return triton.next_power_of_2(n_cols)


def num_warps_for(block: int) -> int:
    """Warps for a row-wise kernel over ``block`` columns: enough threads that each holds at
    most ~16 values (a warp is 32 threads), capped at 16 warps. Ignored by the interpreter."""
    return max(1, min(16, block // 512))


def row_programs(n_rows: int, device: torch.device) -> int:
    """Programs for a kernel that loops over rows and writes one partial sum per program
    (the RMSNorm weight gradient): a few per SM on a GPU, few in the interpreter, where each
    program costs ~0.6 ms of Python."""
    if device.type == "cuda":
        n_sm = torch.cuda.get_device_properties(device).multi_processor_count
        return max(1, min(n_rows, 4 * n_sm))
    return max(1, min(n_rows, 4))
