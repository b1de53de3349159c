import math

import pytest
import torch
from kernelcases import DEVICE, DTYPES, assert_close, leaf, needs_triton

from pygzlaw.kernels import apply_rope, apply_rope_reference, rope_tables

# (B, T, n_heads, n_kv_heads, head_dim, table_len): head_dim 6 has a non-power-of-2 half,
# 3 heads a masked head block; tables longer than T are allowed
SHAPES = [(2, 5, 3, 1, 8, 7), (1, 3, 2, 2, 6, 3), (3, 1, 1, 1, 2, 1)]


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,T,H,H_kv,D,T_tab", SHAPES)
def test_triton_matches_reference(B, T, H, H_kv, D, T_tab, dtype):
    q0, k0 = torch.randn(B, T, H, D), torch.randn(B, T, H_kv, D)
    cos, sin = rope_tables(T_tab, D, device=DEVICE)
    dq, dk = torch.randn(B, T, H, D).to(DEVICE, dtype), torch.randn(B, T, H_kv, D).to(DEVICE, dtype)
    outs = {}
    for impl in ("triton", "torch"):
        q, k = leaf(q0, dtype), leaf(k0, dtype)
        qr, kr = apply_rope(q, k, cos, sin, impl=impl)
        outs[impl] = (qr, kr, *torch.autograd.grad((qr, kr), (q, k), (dq, dk)))
    for got, want in zip(outs["triton"], outs["torch"]):
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, dtype)


@needs_triton
def test_q_k_views_of_a_qkv_projection():
    """q and k as views of one (B, T, 3, H, hd) projection are read in place (row stride
    3 * H * hd); values and grads as the reference."""
    B, T, H, D = 2, 5, 3, 8
    x0 = torch.randn(B, T, 3, H, D)
    cos, sin = rope_tables(T, D, device=DEVICE)
    dq, dk = torch.randn(B, T, H, D, device=DEVICE), torch.randn(B, T, H, D, device=DEVICE)
    outs = []
    for impl in ("triton", "torch"):
        x = leaf(x0, torch.float32)
        q, k, _v = x.unbind(dim=2)
        qr, kr = apply_rope(q, k, cos, sin, impl=impl)
        outs.append((qr, kr, *torch.autograd.grad((qr, kr), x, (dq, dk))))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want)


def test_reference_is_complex_rotation():
    """Rotate-half RoPE = multiplying x[i] + i*x[i + D/2] by exp(i * t * base**(-2i/D))."""
    B, T, H, D = 2, 6, 2, 10
    q, k = torch.randn(B, T, H, D, dtype=torch.float64), torch.randn(B, T, 1, D)
    cos, sin = rope_tables(T, D, base=500.0)
    qr, _ = apply_rope_reference(q.float(), k, cos, sin)
    theta = torch.tensor([[t * 500.0 ** (-2 * i / D) for i in range(D // 2)] for t in range(T)],
                         dtype=torch.float64)
    z = torch.complex(q[..., : D // 2], q[..., D // 2:]) * torch.polar(
        torch.ones_like(theta), theta)[None, :, None, :]
    torch.testing.assert_close(qr.double(), torch.cat([z.real, z.imag], -1), atol=1e-5,
                               rtol=1e-5)


def test_scores_depend_only_on_relative_position():
    D = 16
    cos, sin = rope_tables(12, D)
    q1, k1 = torch.randn(1, 1, 1, D), torch.randn(1, 1, 1, D)
    q = q1.expand(1, 12, 1, D).contiguous()
    k = k1.expand(1, 12, 1, D).contiguous()
    qr, kr = apply_rope(q, k, cos, sin)
    s = qr[0, :, 0] @ kr[0, :, 0].T                  # (12, 12): s[i, j] depends on i - j
    for off in (-3, 0, 5):
        diag = torch.diagonal(s, off)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag), atol=1e-4, rtol=1e-4)


def test_rope_tables_values():
    cos, sin = rope_tables(4, 6, base=100.0)
    assert cos.shape == sin.shape == (4, 3) and cos.dtype == torch.float32
    assert cos[3, 1].item() == pytest.approx(math.cos(3 * 100.0 ** (-2 / 6)), abs=1e-7)
    assert sin[2, 2].item() == pytest.approx(math.sin(2 * 100.0 ** (-4 / 6)), abs=1e-7)


@pytest.mark.parametrize("args,match", [
    (((2, 3, 1, 8), (2, 3, 1, 8), (2, 4)), r"cos has shape \(2, 4\), expected \(>= 3, 4\)"),
    (((2, 3, 1, 7), (2, 3, 1, 7), (3, 3)), "q head_dim=7 must be even"),
    (((2, 3, 8), (2, 3, 1, 8), (3, 4)), r"q has shape \(2, 3, 8\), expected 4 dims"),
])
def test_bad_shapes_are_named(args, match):
    qs, ks, ts = args
    with pytest.raises(ValueError, match=match):
        apply_rope(torch.randn(qs), torch.randn(ks), torch.randn(ts), torch.randn(ts))


def test_rope_tables_rejects_odd_head_dim():
    with pytest.raises(ValueError, match="head_dim=5 must be a positive even number"):
        rope_tables(4, 5)
