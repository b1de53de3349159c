"""torch.compile(fullgraph=True) traces through the custom ops (their fake implementations and
registered autograd) and gives the eager result."""
import torch
from kernelcases import DEVICE, needs_triton

from pygzlaw.kernels import (apply_rope, fused_linear_cross_entropy, rms_norm, rope_tables,
                             swiglu)


def _block(x, w_norm, w_gate, w_up, w_out, targets, cos, sin, impl):
    B, T, d = x.shape
    h = rms_norm(x, w_norm, impl=impl)                                 # (B, T, d)
    q, k = apply_rope(h.view(B, T, 2, d // 2), h.view(B, T, 2, d // 2), cos, sin, impl=impl)
    h = h + (q * k).view(B, T, d)
    h = swiglu(h @ w_gate.T, h @ w_up.T, impl=impl)                    # (B, T, ffn)
    return fused_linear_cross_entropy(h.view(B * T, -1), w_out, targets, chunk_tokens=4,
                                      impl=impl)


@needs_triton
def test_compile_fullgraph_through_custom_ops():
    B, T, d, ffn, V = 2, 5, 8, 12, 11
    params = [torch.ones(d) + 0.1 * torch.randn(d), torch.randn(ffn, d), torch.randn(ffn, d),
              torch.randn(V, ffn)]
    x = torch.randn(B, T, d, device=DEVICE)
    targets = torch.randint(0, V, (B * T,), device=DEVICE)
    targets[3] = -100
    cos, sin = rope_tables(T, d // 2, device=DEVICE)
    compiled = torch.compile(_block, fullgraph=True, backend="aot_eager")
    results = []
    for fn, impl in [(compiled, "triton"), (_block, "torch")]:
        ps = [p.to(DEVICE).requires_grad_(True) for p in params]
        loss = fn(x, *ps, targets, cos, sin, impl)
        results.append((loss, *torch.autograd.grad(loss, ps)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
