"""Bench: pygzlaw's fused kernels against their PyTorch references (forward + backward).

On a GPU (bf16, shapes of the 275M preset at the paper's batch: 32 x 256 tokens, d 1024,
FFN 2048, 16 heads of 64, vocab 32001), for each op: the Triton kernel (impl="triton"), the
eager PyTorch reference, ``torch.compile`` of the reference, and Liger-Kernel when it is
installed; medians of interleaved runs, each run ``inner`` fwd+bwd calls then a sync. Then
fused linear + cross-entropy peak memory against the unfused ``F.cross_entropy(h @ W.T)``
(bf16 logits upcast to fp32, what a plain model does), as torch.cuda.max_memory_allocated
above the inputs.

On CPU the Triton kernels are not timed (the interpreter is for correctness, not speed); it
compares the PyTorch chunked cross-entropy (impl="torch", what CPU training uses) with the
unfused one at vocab 32001, d 256, 32 x 256 tokens (8 x 256 with --quick): speed
(interleaved medians) and peak memory, measured as the peak RSS above the inputs of a fresh
process per variant (torch's CPU allocator keeps no peak statistics).

Needs torch (``pip install 'pygzlaw[cpu]'``); Triton for the GPU section.

Usage: pygzlaw bench kernels [--quick] [--json PATH] [-- --op rms_norm ...]
       (or python bench/bench_kernels.py [--quick] [--json PATH] [--op rms_norm ...])
``run(quick) -> dict`` returns the document (``pygzlaw.bench.trainer`` includes it).
Summary: device, fused_ce_memory_ratio (unfused peak / fused peak), and per op
speedup_vs_torch / speedup_vs_compile (reference time / Triton time) on a GPU;
chunked_ce_speed_ratio (unfused time / chunked time) on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from pygzlaw.bench._harness import median, quantiles, time_interleaved, write_json  # noqa: E402
from pygzlaw._subproc import module_argv  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from pygzlaw.kernels import (apply_rope, apply_rope_reference, fused_linear_cross_entropy,  # noqa: E402
                             rms_norm, rms_norm_reference, rope_tables, swiglu, swiglu_reference)


def unfused_linear_cross_entropy(h, weight, targets):
    """The baseline a plain model runs: all (M, V) logits in h's dtype, upcast for the loss."""
    return F.cross_entropy((h @ weight.t()).float(), targets, ignore_index=-100)


# the directory holding pygzlaw/ (a clone, or site-packages): the memory probes import from it
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fwd_bwd(fn, leaves, other_args, seed=0):
    """A closure running fn(*leaves, *other_args) and backward with fixed random output grads
    (made on the first call), returning nothing."""
    state = {}

    def step():
        out = fn(*leaves, *other_args)
        outs = out if isinstance(out, tuple) else (out,)
        if "dys" not in state:
            g = torch.Generator(device=outs[0].device).manual_seed(seed)
            state["dys"] = [torch.randn(o.shape, generator=g, device=o.device, dtype=o.dtype)
                            for o in outs]
        torch.autograd.grad(outs, leaves, state["dys"])
    return step


# ---------------------------------------------------------------------------------------- GPU

def _liger_variants():
    """Liger-Kernel's autograd Functions adapted to our signatures, or {} if not installed."""
    try:
        from liger_kernel.ops.fused_linear_cross_entropy import \
            LigerFusedLinearCrossEntropyFunction
        from liger_kernel.ops.rms_norm import LigerRMSNormFunction
        from liger_kernel.ops.rope import LigerRopeFunction
        from liger_kernel.ops.swiglu import LigerSiLUMulFunction
    except ImportError:
        return {}

    def rope(q, k, cos, sin):   # Liger wants (B, H, T, D) and full-width tables
        cos_full, sin_full = torch.cat([cos, cos], -1)[None], torch.cat([sin, sin], -1)[None]
        qr, kr = LigerRopeFunction.apply(q.transpose(1, 2), k.transpose(1, 2),
                                         cos_full.to(q.dtype), sin_full.to(q.dtype))
        return qr.transpose(1, 2), kr.transpose(1, 2)

    def flce(h, w, t):
        out = LigerFusedLinearCrossEntropyFunction.apply(h, w, t)
        return out[0] if isinstance(out, tuple) else out

    return {"rms_norm": lambda x, w: LigerRMSNormFunction.apply(x, w, 1e-6),
            "swiglu": LigerSiLUMulFunction.apply, "apply_rope": rope,
            "fused_linear_cross_entropy": flce}


GPU_DIMS = dict(B=32, T=256, d=1024, ffn=2048, H=16, V=32001)   # gpt-275m at the paper's batch


def _gpu_cases(quick: bool, dev: str, dims: dict, compile_backend: str):
    """(op, leaves, other args, {variant: fn}) at ``dims``, bf16."""
    dt = torch.bfloat16
    B, T, d, ffn, H, V = (dims[k] for k in ("B", "T", "d", "ffn", "H", "V"))
    B = max(1, B // 4) if quick else B
    M = B * T
    g = torch.Generator(device=dev).manual_seed(0)

    def leaf(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, device=dev) * scale).to(dt).requires_grad_()

    cos, sin = rope_tables(T, d // H, device=dev)
    targets = torch.randint(0, V, (M,), generator=g, device=dev)
    liger = _liger_variants()
    cases = [
        ("rms_norm", [leaf(M, d), leaf(d)], [],
         {"triton": lambda x, w: rms_norm(x, w, impl="triton"), "torch": rms_norm_reference}),
        ("swiglu", [leaf(M, ffn), leaf(M, ffn)], [],
         {"triton": lambda a, b: swiglu(a, b, impl="triton"), "torch": swiglu_reference}),
        ("apply_rope", [leaf(B, T, H, d // H), leaf(B, T, H, d // H)], [cos, sin],
         {"triton": lambda q, k, c, s: apply_rope(q, k, c, s, impl="triton"),
          "torch": apply_rope_reference}),
        ("fused_linear_cross_entropy", [leaf(M, d), leaf(V, d, scale=d ** -0.5)], [targets],
         {"triton": lambda h, w, t: fused_linear_cross_entropy(h, w, t, impl="triton"),
          "torch_chunked": lambda h, w, t: fused_linear_cross_entropy(h, w, t, impl="torch"),
          "torch": unfused_linear_cross_entropy}),
    ]
    for op, leaves, other, variants in cases:
        variants["compile"] = torch.compile(variants["torch"], backend=compile_backend)
        if op in liger:
            variants["liger"] = liger[op]
    return cases


def _gpu_peak_mb(fn) -> float:
    """Peak CUDA memory (MiB) allocated by one call of fn above what was allocated before."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _run_gpu(quick: bool, *, device: str = "cuda", dims: dict = GPU_DIMS,
             compile_backend: str = "inductor", runs: int | None = None,
             inner: int | None = None, ops: tuple[str, ...] | None = None) -> tuple[dict, list]:
    """The GPU section. ``device="cpu"`` (tiny dims, interpreter) only exercises the code."""
    runs = runs or (5 if quick else 15)
    inner = inner or (5 if quick else 20)
    on_cuda = device == "cuda"
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    rows = []
    summary = {"device": torch.cuda.get_device_name() if on_cuda else device}
    for op, leaves, other, variants in _gpu_cases(quick, device, dims, compile_backend):
        if ops and op not in ops:
            continue
        steps, errors = {}, {}
        for name, fn in variants.items():
            step = _fwd_bwd(fn, leaves, other)
            try:
                step()                                   # compile / autotune / first launch
                sync()
            except Exception as e:                       # a baseline that fails is reported
                errors[name] = f"{type(e).__name__}: {e}"[:300]
                continue
            steps[name] = step

        def repeat(step):
            def call():
                for _ in range(inner):
                    step()
                sync()
            return call

        times = time_interleaved({k: repeat(s) for k, s in steps.items()}, runs=runs, warmup=1)
        ms = {k: median(v) / inner * 1e3 for k, v in times.items()}
        for name, ts in times.items():
            rows.append({"name": f"{op} fwd+bwd [{name}]", "unit": "ms",
                         **{q: v / inner * 1e3 for q, v in quantiles(ts).items()},
                         "runs": runs, "inner": inner})
        for name, err in errors.items():
            rows.append({"name": f"{op} fwd+bwd [{name}]", "error": err})
        if "triton" in ms:
            for base in ("torch", "compile", "liger", "torch_chunked"):
                if base in ms:
                    summary[f"{op}_speedup_vs_{base}"] = round(ms[base] / ms["triton"], 3)
        print(f"{op}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in ms.items()), file=sys.stderr)
        if op == "fused_linear_cross_entropy" and on_cuda:
            peaks = {name: _gpu_peak_mb(steps[name]) for name in ("triton", "torch_chunked",
                                                                  "torch") if name in steps}
            rows.append({"name": "fused_linear_cross_entropy peak memory fwd+bwd", "unit": "MiB",
                         **{f"{k}_mib": round(v, 1) for k, v in peaks.items()},
                         "tokens": leaves[0].shape[0], "vocab": leaves[1].shape[0],
                         "d_model": leaves[0].shape[1]})
            if "triton" in peaks and "torch" in peaks:
                summary["fused_ce_peak_mib"] = round(peaks["triton"], 1)
                summary["unfused_ce_peak_mib"] = round(peaks["torch"], 1)
                summary["fused_ce_memory_ratio"] = round(peaks["torch"] / peaks["triton"], 2)
                print(f"fused CE peak {peaks['triton']:.0f} MiB vs unfused "
                      f"{peaks['torch']:.0f} MiB", file=sys.stderr)
    return summary, rows


# ---------------------------------------------------------------------------------------- CPU

def _cpu_ce_inputs(M: int, d: int, V: int):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(M, d, generator=g).requires_grad_()
    w = (torch.randn(V, d, generator=g) * d ** -0.5).requires_grad_()
    return h, w, torch.randint(0, V, (M,), generator=g)


def _status_bytes(field: str) -> int:
    """A memory line of /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _memory_probe(variant: str, M: int, d: int, V: int) -> None:
    """Child process: one fwd+bwd of ``variant``; prints the peak RSS above the inputs (MiB).
    The peak (VmHWM) is reset to the current RSS first by writing 5 to /proc/self/clear_refs
    (Linux >= 4.0), so importing torch does not set it."""
    torch.set_num_threads(1)
    h, w, t = _cpu_ce_inputs(M, d, V)
    fn = {"chunked": lambda: fused_linear_cross_entropy(h, w, t, impl="torch"),
          "unfused": lambda: unfused_linear_cross_entropy(h, w, t)}[variant]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_bytes("VmRSS")
    loss = fn()
    loss.backward()
    peak = _status_bytes("VmHWM")
    print(json.dumps({"variant": variant, "peak_extra_mib": max(0, peak - before) / 2**20}))


def _cpu_peak_mib(variant: str, M: int, d: int, V: int) -> float:
    # a fresh interpreter per variant, so one variant's peak cannot hide in the other's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    r = subprocess.run(module_argv("pygzlaw.bench.kernels", "--memory-probe", variant,
                                   str(M), str(d), str(V)), capture_output=True, text=True, timeout=600,
                       check=True, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_extra_mib"]


def _run_cpu(quick: bool) -> tuple[dict, list]:
    print("no GPU: Triton kernels not timed (on CPU they run only under the interpreter, for "
          "tests); comparing the PyTorch chunked cross-entropy with the unfused one",
          file=sys.stderr)
    B, T, d, V = (8 if quick else 32), 256, 256, 32001     # the paper's batch: 32 x 256
    M = B * T
    runs = 3 if quick else 5
    h, w, t = _cpu_ce_inputs(M, d, V)
    steps = {"chunked": _fwd_bwd(lambda h, w, t: fused_linear_cross_entropy(h, w, t, impl="torch"),
                                 [h, w], [t]),
             "unfused": _fwd_bwd(unfused_linear_cross_entropy, [h, w], [t])}
    times = time_interleaved(steps, runs=runs, warmup=1)
    rows = [{"name": f"cross-entropy fwd+bwd [{k}]", "unit": "s", **quantiles(v), "runs": runs,
             "tokens": M, "vocab": V, "d_model": d} for k, v in times.items()]
    peaks = {k: _cpu_peak_mib(k, M, d, V) for k in ("chunked", "unfused")}
    rows.append({"name": "cross-entropy peak RSS above inputs, fwd+bwd", "unit": "MiB",
                 **{f"{k}_mib": round(v, 1) for k, v in peaks.items()}, "tokens": M, "vocab": V,
                 "d_model": d})
    summary = {"device": "cpu (no GPU: Triton kernels not timed)",
               "chunked_ce_speed_ratio": round(median(times["unfused"]) /
                                               median(times["chunked"]), 3),
               "fused_ce_memory_ratio": round(peaks["unfused"] / max(peaks["chunked"], 1e-9), 2),
               "fused_ce_peak_mib": round(peaks["chunked"], 1),
               "unfused_ce_peak_mib": round(peaks["unfused"], 1)}
    print(f"chunked CE {median(times['chunked']):.3f} s, unfused {median(times['unfused']):.3f} s;"
          f" peak {peaks['chunked']:.0f} MiB vs {peaks['unfused']:.0f} MiB", file=sys.stderr)
    return summary, rows


OPS = ("rms_norm", "swiglu", "apply_rope", "fused_linear_cross_entropy")


def run(quick: bool = False, ops: tuple[str, ...] | None = None) -> dict:
    """Run the bench (on a GPU: only ``ops`` when given); returns the JSON document
    (``_harness.write_json`` adds the machine, commit and timestamp when it is written)."""
    summary, rows = (_run_gpu(quick, ops=ops) if torch.cuda.is_available()
                     else _run_cpu(quick))
    return {"bench": "kernels", "quick": quick, "torch": torch.__version__,
            "summary": summary, "rows": rows}


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--memory-probe":
        _memory_probe(sys.argv[2], *map(int, sys.argv[3:6]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller batch, fewer runs")
    ap.add_argument("--json", help="write the JSON document here")
    ap.add_argument("--op", action="append", choices=OPS,
                    help="GPU only: bench this op (repeatable; default all)")
    args = ap.parse_args(argv)
    write_json(args.json, run(args.quick, tuple(args.op) if args.op else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
