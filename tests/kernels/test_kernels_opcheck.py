"""torch.library.opcheck on every custom op: schema, fake (meta) implementation against the
real one (shapes, dtypes, strides), autograd registration, and AOT dispatch with dynamic
shapes; what torch.compile relies on."""
import pytest
import torch
from kernelcases import DEVICE, needs_triton

import pygzlaw.kernels  # noqa: F401  (registers the ops)
from pygzlaw.kernels import rope_tables


def _cases():
    x = torch.randn(5, 12, device=DEVICE, requires_grad=True)
    w = torch.randn(12, device=DEVICE, requires_grad=True)
    qkv = torch.randn(2, 3, 3, 2, 8, device=DEVICE)
    q = qkv[:, :, 0].requires_grad_(False)                     # a strided view, as in the model
    cos, sin = rope_tables(4, 8, device=DEVICE)
    h = torch.randn(7, 6, device=DEVICE, requires_grad=True)
    W = torch.randn(11, 6, device=DEVICE, requires_grad=True)
    t = torch.tensor([0, 3, -100, 10, 2, 2, 5], device=DEVICE)
    ops = torch.ops.pygzlaw
    return {
        "rms_norm_fwd": (ops.rms_norm_fwd.default, (x, w, 1e-6)),
        "rms_norm_bwd": (ops.rms_norm_bwd.default,
                         (torch.randn(5, 12, device=DEVICE), x.detach(), w.detach(),
                          torch.rand(5, device=DEVICE))),
        "swiglu_fwd": (ops.swiglu_fwd.default, tuple(x.chunk(2, dim=-1))),
        "swiglu_bwd": (ops.swiglu_bwd.default,
                       (torch.randn(5, 6, device=DEVICE), *x.detach().chunk(2, dim=-1))),
        "rope_fwd": (ops.rope_fwd.default, (q.detach().requires_grad_(True), cos, sin)),
        "rope_bwd": (ops.rope_bwd.default, (q, cos, sin)),
        "fused_linear_ce": (ops.fused_linear_ce.default, (h, W, t, -100, 3, True, True)),
        "fused_linear_ce_torch": (ops.fused_linear_ce.default, (h, W, t, -100, 3, False, True)),
    }


@needs_triton
@pytest.mark.parametrize("name", list(_cases()))
def test_opcheck(name):
    op, args = _cases()[name]
    torch.library.opcheck(op, args)
