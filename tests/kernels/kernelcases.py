"""Test helpers for tests/kernels (unique module name: no clash with other folders' helpers)."""
import pytest
import torch

from pygzlaw.kernels._launch import HAS_TRITON, interpreting

# (atol, rtol) of the Triton path against the reference on the same inputs. The math is fp32 in
# both, so fp32 differs only by summation order; bf16 outputs differ by up to one bf16 ulp
# (2**-8 relative): Triton 3.7.1's interpreter converts fp32 -> bf16 by truncation (about half
# of the values of a random fp32 tensor come out one ulp below torch's round-to-nearest-even;
# a GPU rounds to nearest).
TOL = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (2e-2, 2e-2)}
DTYPES = [torch.float32, torch.bfloat16]

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# Triton runs natively on a GPU, under the interpreter on CPU; neither: nothing to compare.
needs_triton = pytest.mark.skipif(
    not HAS_TRITON or (DEVICE == "cpu" and not interpreting()),
    reason="triton not installed, or CPU without TRITON_INTERPRET=1 (set in tests/conftest.py)")


def assert_close(got, want, dtype, scale=1.0):
    """assert_close with the dtype's (atol, rtol); ``scale`` widens atol for quantities that
    are sums of many terms (gradients summed over rows)."""
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(got.float(), want.float(), atol=atol * scale, rtol=rtol)


def leaf(t, dtype):
    """A fresh leaf copy of t on DEVICE in dtype, requiring grad."""
    return t.detach().to(DEVICE, dtype).requires_grad_(True)
