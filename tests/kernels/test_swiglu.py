import pytest
import torch
from kernelcases import DEVICE, DTYPES, assert_close, leaf, needs_triton

from pygzlaw.kernels import swiglu, swiglu_reference

# 3000 elements span 3 programs of 1024 with a masked tail
SHAPES = [(37, 24), (3, 1000), (1,)]


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
def test_non_contiguous_inputs():
    x = torch.randn(6, 10, device=DEVICE)
    gate, up = x[:, :5], x[:, 5:]                    # column slices: not contiguous
    torch.testing.assert_close(swiglu(gate, up, impl="triton"), swiglu_reference(gate, up))


def test_reference_is_the_definition():
    g = torch.randn(50, dtype=torch.float64)
    u = torch.randn(50, dtype=torch.float64)
    want = g / (1 + torch.exp(-g)) * u
    torch.testing.assert_close(swiglu_reference(g.float(), u.float()), want.float())


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"gate \(2, 3\).*up \(2, 4\)"):
        swiglu(torch.randn(2, 3), torch.randn(2, 4))
