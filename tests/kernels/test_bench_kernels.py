"""The bench's GPU section with tiny shapes (on CPU tensors through the interpreter when there
is no GPU): checks its code (variants, interleaving, summary keys), not speed."""
from kernelcases import DEVICE, needs_triton


@needs_triton
def test_gpu_section_code_runs_on_cpu():
    from pygzlaw.bench import kernels as bench_kernels

    dims = dict(B=1, T=4, d=16, ffn=24, H=2, V=37)
    summary, rows = bench_kernels._run_gpu(False, device=DEVICE, dims=dims,
                                           compile_backend="aot_eager", runs=1, inner=1)
    assert not [r for r in rows if "error" in r]
    for op in ("rms_norm", "swiglu", "apply_rope", "fused_linear_cross_entropy"):
        assert summary[f"{op}_speedup_vs_torch"] > 0
        assert summary[f"{op}_speedup_vs_compile"] > 0
    assert summary["fused_linear_cross_entropy_speedup_vs_torch_chunked"] > 0
    names = {r["name"] for r in rows}
    assert "swiglu fwd+bwd [compile]" in names and all(r["p50"] > 0 for r in rows)
