import pytest
import torch
from kernelcases import DEVICE, DTYPES, assert_close, leaf, needs_triton

from pygzlaw.kernels import rms_norm, rms_norm_reference
from pygzlaw.kernels.rmsnorm import rmsnorm_forward

# odd d exercises the column mask; 37 rows do not divide among the backward's 4 programs
SHAPES = [(37, 24), (2, 5, 37), (1, 1), (3, 130)]


@needs_triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_triton_matches_reference(shape, dtype):
    x0 = torch.randn(shape) * 3
    w0 = 1 + 0.5 * torch.randn(shape[-1])
    dy = torch.randn(shape).to(DEVICE, dtype)
    outs = {}
    for impl in ("triton", "torch"):
        x, w = leaf(x0, dtype), leaf(w0, dtype)
        y = rms_norm(x, w, 1e-5, impl=impl)
        dx, dw = torch.autograd.grad(y, (x, w), dy)
        outs[impl] = (y, dx, dw)
    for got, want in zip(outs["triton"], outs["torch"]):
        assert got.dtype == dtype and got.shape == want.shape
    y, dx, dw = outs["triton"]
    yr, dxr, dwr = outs["torch"]
    assert_close(y, yr, dtype)
    assert_close(dx, dxr, dtype)
    assert_close(dw, dwr, dtype, scale=4)


@needs_triton
def test_rstd_is_the_inverse_rms():
    x = torch.randn(37, 24, device=DEVICE)
    _, rstd = rmsnorm_forward(x, torch.ones(24, device=DEVICE), 1e-6)
    assert rstd.shape == (37,) and rstd.dtype == torch.float32
    torch.testing.assert_close(rstd, 1 / torch.sqrt(x.pow(2).mean(-1) + 1e-6))


def test_reference_is_the_definition():
    x = torch.randn(4, 6, dtype=torch.float64)
    w = torch.randn(6, dtype=torch.float64)
    want = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w
    torch.testing.assert_close(rms_norm_reference(x.float(), w.float()), want.float())


def test_reference_output_dtype_is_input_dtype():
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    assert rms_norm(x, torch.ones(8), impl="torch").dtype == torch.bfloat16


def test_weight_shape_is_checked():
    with pytest.raises(ValueError, match=r"weight has shape \(7,\), expected \(8,\)"):
        rms_norm(torch.randn(3, 8), torch.ones(7))


@needs_triton
def test_too_wide_for_the_kernel_is_named():
    with pytest.raises(ValueError, match="hidden size 65537 exceeds.*impl='torch'"):
        rms_norm(torch.randn(1, 65537, device=DEVICE), torch.ones(65537, device=DEVICE),
                 impl="triton")
