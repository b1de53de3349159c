import pytest
import torch
from kernelcases import DEVICE, DTYPES, assert_close, leaf, needs_triton

from pygzlaw.kernels import swiglu, swiglu_reference

# 1500 columns span 2 column blocks of 1024 with a masked tail
SHAPES = [(37, 24), (3, 1500), (1,)]


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_matches_reference(shape, dtype):
    g0, u0 = torch.randn(shape) * 3, torch.randn(shape)
    dy = torch.randn(shape).to(DEVICE, dtype)
    outs = {}
    for impl in ("triton", "torch"):
        g, u = leaf(g0, dtype), leaf(u0, dtype)
        y = swiglu(g, u, impl=impl)
        outs[impl] = (y, *torch.autograd.grad(y, (g, u), dy))
    for got, want in zip(outs["triton"], outs["torch"]):
        assert got.dtype == dtype and got.shape == want.shape
        assert_close(got, want, dtype)


@needs_triton
@pytest.mark.parametrize("layout", ["halves_of_a_projection", "transposed"])
def test_strided_inputs(layout):
    """gate/up read in place when their rows merge (halves of one (B, T, 2 * ffn) projection),
    copied when they do not (a transposed view); values and grads as the reference."""
    if layout == "halves_of_a_projection":
        x0 = torch.randn(2, 3, 2 * 37)
    else:
        x0 = torch.randn(2 * 37, 3, 2).transpose(0, 2)            # (2, 3, 74), last stride 6
    dy = torch.randn(2, 3, 37, device=DEVICE)
    outs = []
    for impl in ("triton", "torch"):
        x = leaf(x0, torch.float32)
        gate, up = x.chunk(2, dim=-1)
        y = swiglu(gate, up, impl=impl)
        outs.append((y, *torch.autograd.grad(y, x, dy)))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want)


def test_reference_is_the_definition():
    g = torch.randn(50, dtype=torch.float64)
    u = torch.randn(50, dtype=torch.float64)
    want = g / (1 + torch.exp(-g)) * u
    torch.testing.assert_close(swiglu_reference(g.float(), u.float()), want.float())


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"gate \(2, 3\).*up \(2, 4\)"):
        swiglu(torch.randn(2, 3), torch.randn(2, 4))


def test_halves_of_a_projection_are_not_copied():
    import importlib
    rows = importlib.import_module("pygzlaw.kernels.swiglu")._rows
    gate, up = torch.randn(2, 3, 10).chunk(2, dim=-1)
    assert rows(gate).data_ptr() == gate.data_ptr() and rows(gate).stride() == (10, 1)
    t = torch.randn(10, 3, 2).transpose(0, 2)                   # last-dim stride 6: must copy
    assert rows(t).is_contiguous()
