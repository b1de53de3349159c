"""RMSNorm: y = x / sqrt(mean(x**2) + eps) * w (Zhang & Sennrich 2019, eq. 4), fp32 math.

Line-up: Triton kernels → launchers → custom op (``pygzlaw::rms_norm_fwd`` / ``_bwd``, with fake
implementations and autograd, so ``torch.compile`` traces through it) → eager reference →
public ``rms_norm``.
"""
from __future__ import annotations

import torch

from ._launch import check_cols, num_warps_for, resolve_impl, row_programs, tl, triton


@triton.jit
def _rmsnorm_fwd_kernel(y_ptr, x_ptr, w_ptr, rstd_ptr, n_cols, eps, BLOCK: tl.constexpr):
    """One program per row of a contiguous (n_rows, n_cols) x; math in fp32."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = tl.rsqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    tl.store(rstd_ptr + row, rstd)
    y = x * rstd * w
    tl.store(y_ptr + row * n_cols + cols, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rmsnorm_bwd_kernel(dx_ptr, dw_partial_ptr, dy_ptr, x_ptr, w_ptr, rstd_ptr, n_rows, n_cols,
                        rows_per_program, BLOCK: tl.constexpr):
    """Program p handles rows [p * rows_per_program, ...) and writes its partial dw row.

    With xhat = x * rstd and g = dy * w:  dx = rstd * (g - xhat * mean(g * xhat)),
    dw = sum over rows of dy * xhat. Partial sums per program instead of atomics keep the
    result deterministic."""
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK,), dtype=tl.float32)
    row_start = pid.to(tl.int64) * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, n_rows)
    for row in range(row_start, row_end):
        x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(rstd_ptr + row)
        xhat = x * rstd
        g = dy * w
        c = tl.sum(g * xhat, axis=0) / n_cols
        dx = (g - xhat * c) * rstd
        tl.store(dx_ptr + row * n_cols + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)
        dw += dy * xhat
    tl.store(dw_partial_ptr + pid * n_cols + cols, dw, mask=mask)


def rmsnorm_forward(x: torch.Tensor, weight: torch.Tensor, eps: float):
    """Launch the forward kernel. x: (..., d) float; weight: (d,).

    Returns (y like x, rstd of shape x.shape[:-1], fp32)."""
    d = x.shape[-1]
    block = check_cols("rms_norm", d)
    x2 = x.reshape(-1, d).contiguous()
    n_rows = x2.shape[0]
    y = torch.empty_like(x2)
    rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
    if n_rows:
        _rmsnorm_fwd_kernel[(n_rows,)](y, x2, weight.contiguous(), rstd, d, eps, BLOCK=block,
                                       num_warps=num_warps_for(block))
    return y.view(x.shape), rstd.view(x.shape[:-1])


def rmsnorm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                     rstd: torch.Tensor):
    """Launch the backward kernel. Returns (dx like x, dweight like weight)."""
    d = x.shape[-1]
    block = check_cols("rms_norm", d)
    x2 = x.reshape(-1, d).contiguous()
    dy2 = dy.reshape(-1, d).contiguous()
    n_rows = x2.shape[0]
    dx = torch.empty_like(x2)
    n_programs = row_programs(n_rows, x.device)
    rows_per_program = triton.cdiv(n_rows, n_programs)
    dw_partial = torch.zeros((n_programs, d), dtype=torch.float32, device=x.device)
    if n_rows:
        _rmsnorm_bwd_kernel[(n_programs,)](dx, dw_partial, dy2, x2, weight.contiguous(),
                                           rstd.reshape(-1).contiguous(), n_rows, d,
                                           rows_per_program, BLOCK=block,
                                           num_warps=num_warps_for(block))
    return dx.view(x.shape), dw_partial.sum(0).to(weight.dtype)


@torch.library.custom_op("pygzlaw::rms_norm_fwd", mutates_args=())
def _rms_norm_fwd_op(x: torch.Tensor, weight: torch.Tensor,
                     eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return rmsnorm_forward(x, weight, eps)


@_rms_norm_fwd_op.register_fake
def _(x, weight, eps):
    # the launchers return contiguous tensors whatever the input strides: say so to the compiler
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            x.new_empty(x.shape[:-1], dtype=torch.float32))


@torch.library.custom_op("pygzlaw::rms_norm_bwd", mutates_args=())
def _rms_norm_bwd_op(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                     rstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return rmsnorm_backward(dy, x, weight, rstd)


@_rms_norm_bwd_op.register_fake
def _(dy, x, weight, rstd):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(weight, memory_format=torch.contiguous_format))


def _rms_norm_setup(ctx, inputs, output):
    x, weight, _eps = inputs
    _y, rstd = output
    ctx.save_for_backward(x, weight, rstd)


def _rms_norm_backward(ctx, dy, _drstd):
    x, weight, rstd = ctx.saved_tensors
    dx, dw = _rms_norm_bwd_op(dy, x, weight, rstd)
    return dx, dw, None


_rms_norm_fwd_op.register_autograd(_rms_norm_backward, setup_context=_rms_norm_setup)


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eager PyTorch RMSNorm: fp32 math, output cast to x.dtype. The CPU path and the oracle."""
    xf = x.float()
    rstd = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (xf * rstd * weight.float()).to(x.dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, *,
             impl: str = "auto") -> torch.Tensor:
    """RMSNorm over the last dimension: x * rsqrt(mean(x**2, -1) + eps) * weight.

    Args:
        x: (..., d) float tensor (fp32, bf16 or fp16).
        weight: (d,) gain.
        eps: added to the mean square before the square root.
        impl: "auto" (Triton on CUDA tensors when triton imports, else torch), "torch", or
            "triton" (CPU tensors only under TRITON_INTERPRET=1).

    Returns:
        (..., d) tensor of x.dtype, computed in fp32.

    Raises:
        ValueError: weight's shape is not (d,), impl is unknown, or d > 65536 on the Triton path.
        RuntimeError: impl="triton" where Triton cannot run.
    """
    if weight.shape != (x.shape[-1],):
        raise ValueError(f"rms_norm: weight has shape {tuple(weight.shape)}, expected "
                         f"({x.shape[-1]},) to match x's last dimension")
    if resolve_impl("rms_norm", impl, x, weight) == "torch":
        return rms_norm_reference(x, weight, eps)
    check_cols("rms_norm", x.shape[-1])
    return _rms_norm_fwd_op(x, weight, float(eps))[0]
