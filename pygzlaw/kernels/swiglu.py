"""SwiGLU gate: y = silu(gate) * up, silu(a) = a * sigmoid(a) (Shazeer 2020, eq. 6), fp32 math.

Line-up: Triton kernels → launchers → custom op (``pygzlaw::swiglu_fwd`` / ``_bwd``) → eager
reference → public ``swiglu``. The backward recomputes sigmoid(gate) instead of saving it, so
the op keeps only its two inputs for backward.
"""
from __future__ import annotations

import torch

from ._launch import resolve_impl, tl, triton

# Columns per program: 1024 fp32 values = 8 per thread at 4 warps, a full 128-bit vector for
# bf16 loads.
_BLOCK_MAX = 1024
_NUM_WARPS = 4


@triton.jit
def _swiglu_fwd_kernel(y_ptr, gate_ptr, up_ptr, gate_row_stride, up_row_stride, n_cols,
                       BLOCK: tl.constexpr):
    """Program (row, j) does columns [j * BLOCK, (j + 1) * BLOCK) of one row. Inputs may have
    any row stride (gate and up are usually the two halves of one projection's output, read
    in place); y is contiguous."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    a = tl.load(gate_ptr + row * gate_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(up_ptr + row * up_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    y = a * tl.sigmoid(a) * u
    tl.store(y_ptr + row * n_cols + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_bwd_kernel(dgate_ptr, dup_ptr, dy_ptr, gate_ptr, up_ptr, dy_row_stride,
                       gate_row_stride, up_row_stride, n_cols, BLOCK: tl.constexpr):
    """d/da [a * s(a)] = s * (1 + a * (1 - s)), s = sigmoid(a); dgate and dup contiguous."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    a = tl.load(gate_ptr + row * gate_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(up_ptr + row * up_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + row * dy_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    s = tl.sigmoid(a)
    dgate = dy * u * s * (1.0 + a * (1.0 - s))
    dup = dy * a * s
    tl.store(dgate_ptr + row * n_cols + cols, dgate.to(dgate_ptr.dtype.element_ty), mask=mask)
    tl.store(dup_ptr + row * n_cols + cols, dup.to(dup_ptr.dtype.element_ty), mask=mask)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x as (n_rows, n_cols) with unit column stride: a view when the leading dims merge
    (e.g. a chunk of a (B, T, 2 * ffn) projection), else a contiguous copy."""
    x2 = x.reshape(-1, x.shape[-1] if x.dim() else 1)
    return x2 if x2.stride(-1) == 1 else x2.contiguous()


def _grid(n_rows: int, n_cols: int):
    block = min(_BLOCK_MAX, triton.next_power_of_2(n_cols))
    return (n_rows, triton.cdiv(n_cols, block)), block


def swiglu_forward(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Launch the forward kernel. gate, up: same shape and dtype, any strides with a unit
    last-dim stride read in place. Returns y, contiguous, of gate's shape and dtype."""
    g2, u2 = _rows(gate), _rows(up)
    n_rows, n_cols = g2.shape
    y = torch.empty((n_rows, n_cols), dtype=gate.dtype, device=gate.device)
    if y.numel():
        grid, block = _grid(n_rows, n_cols)
        _swiglu_fwd_kernel[grid](y, g2, u2, g2.stride(0), u2.stride(0), n_cols, BLOCK=block,
                                 num_warps=_NUM_WARPS)
    return y.view(gate.shape)


def swiglu_backward(dy: torch.Tensor, gate: torch.Tensor, up: torch.Tensor):
    """Launch the backward kernel. Returns (dgate, dup), contiguous, shaped like gate."""
    g2, u2, dy2 = _rows(gate), _rows(up), _rows(dy)
    n_rows, n_cols = g2.shape
    dgate = torch.empty((n_rows, n_cols), dtype=gate.dtype, device=gate.device)
    dup = torch.empty((n_rows, n_cols), dtype=up.dtype, device=up.device)
    if dgate.numel():
        grid, block = _grid(n_rows, n_cols)
        _swiglu_bwd_kernel[grid](dgate, dup, dy2, g2, u2, dy2.stride(0), g2.stride(0),
                                 u2.stride(0), n_cols, BLOCK=block, num_warps=_NUM_WARPS)
    return dgate.view(gate.shape), dup.view(up.shape)


@torch.library.custom_op("pygzlaw::swiglu_fwd", mutates_args=())
def _swiglu_fwd_op(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return swiglu_forward(gate, up)


@_swiglu_fwd_op.register_fake
def _(gate, up):
    return torch.empty_like(gate, memory_format=torch.contiguous_format)


@torch.library.custom_op("pygzlaw::swiglu_bwd", mutates_args=())
def _swiglu_bwd_op(dy: torch.Tensor, gate: torch.Tensor,
                   up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return swiglu_backward(dy, gate, up)


@_swiglu_bwd_op.register_fake
def _(dy, gate, up):
    return (torch.empty_like(gate, memory_format=torch.contiguous_format),
            torch.empty_like(up, memory_format=torch.contiguous_format))


def _swiglu_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _swiglu_backward(ctx, dy):
    gate, up = ctx.saved_tensors
    return _swiglu_bwd_op(dy, gate, up)


_swiglu_fwd_op.register_autograd(_swiglu_backward, setup_context=_swiglu_setup)


def swiglu_reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Eager PyTorch SwiGLU: silu(gate) * up in fp32, cast to gate.dtype. CPU path and oracle."""
    return (torch.nn.functional.silu(gate.float()) * up.float()).to(gate.dtype)


def swiglu(gate: torch.Tensor, up: torch.Tensor, *, impl: str = "auto") -> torch.Tensor:
    """SwiGLU gate: silu(gate) * up, elementwise.

    Args:
        gate: (...) float tensor, the gate projection x @ W1.
        up: same shape and dtype, the up projection x @ W3.
        impl: "auto" (Triton on CUDA tensors when triton imports, else torch), "torch", or
            "triton" (CPU tensors only under TRITON_INTERPRET=1).

    Returns:
        Tensor of gate's shape and dtype, computed in fp32.

    Raises:
        ValueError: shapes or dtypes differ, or impl is unknown.
        RuntimeError: impl="triton" where Triton cannot run.
    """
    if gate.shape != up.shape or gate.dtype != up.dtype:
        raise ValueError(f"swiglu: gate {tuple(gate.shape)} {gate.dtype} and up "
                         f"{tuple(up.shape)} {up.dtype} must have the same shape and dtype")
    if resolve_impl("swiglu", impl, gate, up) == "torch":
        return swiglu_reference(gate, up)
    return _swiglu_fwd_op(gate, up)
