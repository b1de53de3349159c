import math

import pytest
import torch
from kernelcases import DEVICE, DTYPES, assert_close, leaf, needs_triton

import pygzlaw.kernels.linear_ce as linear_ce
from pygzlaw.kernels import (default_chunk_tokens, fused_linear_cross_entropy,
                             fused_linear_cross_entropy_reference)

M, D, V = 37, 24, 101
IMPLS = ["torch", pytest.param("triton", marks=needs_triton)]


def _case(ignore_index=-100, n_ignored=5):
    h = torch.randn(M, D)
    w = torch.randn(V, D) / math.sqrt(D) * 3
    targets = torch.randint(0, V, (M,))
    targets[torch.randperm(M)[:n_ignored]] = ignore_index
    return h, w, targets.to(DEVICE)


def _loss_and_grads(fn, h0, w0, targets, dtype, dloss=2.5, **kw):
    h, w = leaf(h0, dtype), leaf(w0, dtype)
    loss = fn(h, w, targets, **kw)
    gh, gw = torch.autograd.grad(loss * dloss, (h, w))   # dloss != 1: backward must scale
    return loss, gh, gw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("chunk_tokens", [10, None, 64])   # 10 does not divide 37; 64 > M
def test_matches_reference(impl, chunk_tokens, dtype):
    h0, w0, targets = _case()
    loss, gh, gw = _loss_and_grads(fused_linear_cross_entropy, h0, w0, targets, dtype,
                                   chunk_tokens=chunk_tokens, impl=impl)
    # the oracle: fp32 logits from the same (rounded) inputs
    lr, ghr, gwr = _loss_and_grads(fused_linear_cross_entropy_reference, h0.to(dtype),
                                   w0.to(dtype), targets, torch.float32)
    assert loss.dtype == torch.float32 and loss.shape == ()
    assert gh.dtype == dtype and gw.dtype == dtype
    assert_close(loss, lr, dtype)
    assert_close(gh, ghr, dtype)
    assert_close(gw, gwr, dtype)


@pytest.mark.parametrize("impl", IMPLS)
def test_other_ignore_index_and_no_grad(impl):
    h0, w0, targets = _case(ignore_index=7)
    want = fused_linear_cross_entropy_reference(h0.to(DEVICE), w0.to(DEVICE), targets, 7)
    with torch.no_grad():
        got = fused_linear_cross_entropy(h0.to(DEVICE), w0.to(DEVICE), targets, ignore_index=7,
                                         chunk_tokens=8, impl=impl)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("impl", IMPLS)
def test_all_ignored_is_nan_like_torch(impl):
    h0, w0, targets = _case(n_ignored=M)
    got = fused_linear_cross_entropy(h0.to(DEVICE), w0.to(DEVICE), targets, chunk_tokens=16,
                                     impl=impl)
    assert torch.isnan(got) and torch.isnan(
        fused_linear_cross_entropy_reference(h0.to(DEVICE), w0.to(DEVICE), targets))


@pytest.mark.parametrize("impl", IMPLS)
def test_never_materialises_full_logits(monkeypatch, impl):
    """Every logits block has at most chunk_tokens rows, and the chunks cover M exactly."""
    shapes = []
    make = linear_ce._chunk_logits

    def spy(h_chunk, weight):
        shapes.append(tuple(h_chunk.shape[:1]) + (weight.shape[0],))
        return make(h_chunk, weight)

    monkeypatch.setattr(linear_ce, "_chunk_logits", spy)
    h0, w0, targets = _case()
    _loss_and_grads(fused_linear_cross_entropy, h0, w0, targets, torch.float32,
                    chunk_tokens=10, impl=impl)
    assert shapes == [(10, V), (10, V), (10, V), (7, V)]


def test_default_chunk_bounds_the_logits_block():
    # a (chunk, V) block of about max(M * d, 2**25) elements, a power of 2, never more than M
    assert default_chunk_tokens(8192, 32001, 1024) == 1024     # 2**25 / 32001 = 1048 -> 1024
    assert default_chunk_tokens(2**16, 32001, 4096) == 8192    # M * d rule: 2**16 / 8
    assert default_chunk_tokens(37, 101, 24) == 37
    assert default_chunk_tokens(5, 10, 64) == 5
    for m, v, d in [(8192, 32001, 1024), (8192, 128256, 4096), (4096, 300, 64)]:
        c = default_chunk_tokens(m, v, d)
        assert c & (c - 1) == 0 or c == m
        assert c * v <= 2 * max(m * d, 2**25)


@pytest.mark.parametrize("kwargs,match", [
    (dict(targets=torch.tensor([0, 101, 2])), r"targets\[1\]=101 is outside \[0, 101\)"),
    (dict(targets=torch.tensor([0, -5, 2])), r"targets\[1\]=-5 is outside"),
    (dict(targets=torch.tensor([0, 1])), r"targets \(2,\) torch.int64 must be \(3,\) int64"),
    (dict(targets=torch.tensor([0, 1, 2], dtype=torch.int32)), "must be"),
    (dict(weight=torch.randn(101, 5)), r"h \(3, 4\) and weight \(101, 5\)"),
    (dict(weight=torch.randn(101, 4, dtype=torch.float64)), "cast one, e.g. h.to"),
    (dict(chunk_tokens=0), "chunk_tokens=0 must be >= 1"),
])
def test_bad_input_is_named(kwargs, match):
    args = dict(h=torch.randn(3, 4), weight=torch.randn(101, 4), targets=torch.tensor([0, 1, 2]))
    chunk = kwargs.pop("chunk_tokens", None)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fused_linear_cross_entropy(args["h"], args["weight"], args["targets"],
                                   chunk_tokens=chunk, impl="torch")


def test_autocast_casts_like_a_matmul():
    """Under autocast h and weight are cast to the autocast dtype (as h @ W.T would be) and the
    gradients flow back to the fp32 leaves."""
    h0, w0, targets = _case()
    h, w = leaf(h0, torch.float32), leaf(w0, torch.float32)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        loss = fused_linear_cross_entropy(h, w, targets, chunk_tokens=10)
    gh, gw = torch.autograd.grad(loss, (h, w))
    assert gh.dtype == gw.dtype == torch.float32
    lr, ghr, gwr = _loss_and_grads(fused_linear_cross_entropy_reference, h0.bfloat16(),
                                   w0.bfloat16(), targets, torch.float32, dloss=1.0)
    assert_close(loss, lr, torch.bfloat16)
    assert_close(gh, ghr, torch.bfloat16)
    assert_close(gw, gwr, torch.bfloat16)
