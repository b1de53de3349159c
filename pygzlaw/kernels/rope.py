"""Rotary position embedding (Su et al. 2021, RoFormer, eq. 34), "rotate-half" convention.

Dimension i < head_dim/2 is paired with i + head_dim/2 and the pair is rotated by the angle
t * base**(-2i/head_dim) at position t:
    y[i]        = x[i] * cos - x[i + h/2] * sin
    y[i + h/2]  = x[i + h/2] * cos + x[i] * sin
The backward is the rotation by the opposite angle (sin -> -sin). fp32 math.

Line-up: Triton kernel → launcher → custom op (``pygzlaw::rope_fwd`` / ``_bwd``) → eager
reference → public ``apply_rope`` (and ``rope_tables`` for cos/sin).
"""
from __future__ import annotations

import torch

from ._launch import num_warps_for, resolve_impl, tl, triton


@triton.jit
def _rope_kernel(y_ptr, x_ptr, cos_ptr, sin_ptr, x_row_stride, seq_len, n_heads, head_dim,
                 half, BACKWARD: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """One program per (batch, position) row of x, (B*T, n_heads, head_dim) with rows
    ``x_row_stride`` apart and heads contiguous within a row (q and k read in place from a
    fused qkv projection), rotating every head of that row; y is contiguous; cos/sin:
    contiguous (>= T, half) fp32."""
    row = tl.program_id(0).to(tl.int64)
    t = row % seq_len
    heads = tl.arange(0, BLOCK_H)[:, None]
    cols = tl.arange(0, BLOCK_HALF)[None, :]
    mask = (heads < n_heads) & (cols < half)
    in_offs = row * x_row_stride + heads * head_dim + cols
    offs = row * n_heads * head_dim + heads * head_dim + cols
    x1 = tl.load(x_ptr + in_offs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + in_offs + half, mask=mask, other=0.0).to(tl.float32)
    c = tl.load(cos_ptr + t * half + cols, mask=cols < half, other=0.0)
    s = tl.load(sin_ptr + t * half + cols, mask=cols < half, other=0.0)
    if BACKWARD:
        s = -s
    y1 = x1 * c - x2 * s
    y2 = x2 * c + x1 * s
    tl.store(y_ptr + offs, y1.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(y_ptr + offs + half, y2.to(y_ptr.dtype.element_ty), mask=mask)


def rope_forward(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 backward: bool = False) -> torch.Tensor:
    """Launch the rotation kernel. x: (B, T, n_heads, head_dim); cos, sin: (>= T, head_dim/2)
    fp32. ``backward=True`` rotates by the opposite angle (the gradient). Returns y like x."""
    B, T, n_heads, head_dim = x.shape
    half = head_dim // 2
    x_c = x.reshape(B * T, n_heads, head_dim)    # a view when (B, T) merge, e.g. q of a qkv
    if x_c.stride(2) != 1 or x_c.stride(1) != head_dim:
        x_c = x_c.contiguous()
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    cos_c = cos[:T].float().contiguous()
    sin_c = sin[:T].float().contiguous()
    block_h = triton.next_power_of_2(n_heads)
    block_half = triton.next_power_of_2(half)
    if x.numel():
        _rope_kernel[(B * T,)](y, x_c, cos_c, sin_c, x_c.stride(0), T, n_heads, head_dim, half,
                               BACKWARD=backward, BLOCK_H=block_h, BLOCK_HALF=block_half,
                               num_warps=num_warps_for(2 * block_h * block_half))
    return y


@torch.library.custom_op("pygzlaw::rope_fwd", mutates_args=())
def _rope_fwd_op(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return rope_forward(x, cos, sin)


@_rope_fwd_op.register_fake
def _(x, cos, sin):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("pygzlaw::rope_bwd", mutates_args=())
def _rope_bwd_op(dy: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return rope_forward(dy, cos, sin, backward=True)


@_rope_bwd_op.register_fake
def _(dy, cos, sin):
    return torch.empty_like(dy, memory_format=torch.contiguous_format)


def _rope_setup(ctx, inputs, output):
    _x, cos, sin = inputs
    ctx.save_for_backward(cos, sin)


def _rope_backward(ctx, dy):
    cos, sin = ctx.saved_tensors
    return _rope_bwd_op(dy, cos, sin), None, None   # the tables are constants


_rope_fwd_op.register_autograd(_rope_backward, setup_context=_rope_setup)


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0, device=None):
    """cos and sin of the rotation angles t * base**(-2i/head_dim).

    Args:
        seq_len: positions t = 0 .. seq_len-1.
        head_dim: even head dimension.
        base: the RoFormer base (10000 in the paper and LLaMA).
        device: where to put the tables.

    Returns:
        (cos, sin), each (seq_len, head_dim // 2) fp32, computed in fp64 then rounded.

    Raises:
        ValueError: head_dim is odd or not positive, or seq_len < 1.
    """
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"rope_tables: head_dim={head_dim} must be a positive even number")
    if seq_len < 1:
        raise ValueError(f"rope_tables: seq_len={seq_len} must be >= 1")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq)
    return (angles.cos().to(torch.float32).to(device),
            angles.sin().to(torch.float32).to(device))


def _rotate_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    T, half = x.shape[1], x.shape[-1] // 2
    c = cos[:T].float().view(1, T, 1, half)                  # (1, T, 1, half)
    s = sin[:T].float().view(1, T, 1, half)
    xf = x.float()
    x1, x2 = xf[..., :half], xf[..., half:]                  # (B, T, n_heads, half) each
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(x.dtype)


def apply_rope_reference(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                         sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager PyTorch rotate-half RoPE on q and k, fp32 math. CPU path and oracle."""
    return _rotate_reference(q, cos, sin), _rotate_reference(k, cos, sin)


def _check_rope(name: str, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"apply_rope: {name} has shape {tuple(x.shape)}, expected 4 dims "
                         "(B, T, n_heads, head_dim)")
    T, head_dim = x.shape[1], x.shape[3]
    if head_dim % 2:
        raise ValueError(f"apply_rope: {name} head_dim={head_dim} must be even")
    for tname, tab in (("cos", cos), ("sin", sin)):
        if tab.dim() != 2 or tab.shape[0] < T or tab.shape[1] != head_dim // 2:
            raise ValueError(f"apply_rope: {tname} has shape {tuple(tab.shape)}, expected "
                             f"(>= {T}, {head_dim // 2}) for {name} of shape {tuple(x.shape)}; "
                             "build it with rope_tables(seq_len, head_dim)")


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *,
               impl: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q and k by their positions (rotate-half RoPE).

    Args:
        q: (B, T, n_heads, head_dim) float tensor, head_dim even.
        k: (B, T, n_kv_heads, head_dim), same dtype (n_kv_heads may differ from n_heads).
        cos, sin: (T', head_dim // 2) fp32 with T' >= T (rows 0..T-1 are used), from
            ``rope_tables``. Treated as constants: no gradient flows to them.
        impl: "auto" (Triton on CUDA tensors when triton imports, else torch), "torch", or
            "triton" (CPU tensors only under TRITON_INTERPRET=1).

    Returns:
        (q_rot, k_rot) with the shapes and dtypes of q and k.

    Raises:
        ValueError: a shape does not match (the message names the tensor), or impl is unknown.
        RuntimeError: impl="triton" where Triton cannot run.
    """
    _check_rope("q", q, cos, sin)
    _check_rope("k", k, cos, sin)
    if resolve_impl("apply_rope", impl, q, k, cos, sin) == "torch":
        return apply_rope_reference(q, k, cos, sin)
    return _rope_fwd_op(q, cos, sin), _rope_fwd_op(k, cos, sin)
