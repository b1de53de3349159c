"""Bench: pygzlaw's trainer against a plain eager PyTorch loop of the same model and data.

All runs train the same GPT (pygzlaw.model, same init seed, same kernels) on the same documents
(the native sampler, data seed 1234, documents [s·B, (s+1)·B) at step s) with AdamW, the same
cosine schedule and gradient clipping, in the same process. The plain loop is what one writes
first: sample the batch, convert, forward, backward, clip, step, in one thread. Each round runs,
in turn, the plain loop, the trainer eager (compile="off": what short runs such as a study's
tiny grid use) and the trainer compiled (compile="on": what compile="auto" picks for CPU runs
of >= 3e13 model FLOPs). Reported numbers are medians over rounds; each speedup is the median
of the per-round ratios, which a machine whose speed drifts between rounds disturbs least.

- ``train.cpu_step``: trainer eager vs plain loop, whole-run training tokens/s (setup
  excluded from both): the trainer's own overhead (~1.0x: both run the same model code).
- ``train.cpu_step_compiled``: trainer compiled vs plain loop, steady-state tokens/s (steps
  after the first 3). The one-off cost is measured apart, as a cold compile (inductor's
  on-disk caches off) in the warm-up: ``compile_s`` and ``breakeven_steps`` (compile_s /
  seconds saved per step).

The losses must agree (same computation; the compiled run to float rounding), which the bench
checks and reports.

On a GPU it also measures the MFU of gpt-275m in bf16 (one GPU, batch 32 x 256) and includes
``pygzlaw.bench.kernels.run()`` (per-kernel speed, fused cross-entropy memory).

Needs torch (``pip install 'pygzlaw[cpu]'``).

Usage: pygzlaw bench trainer [--quick] [--json PATH] [-- --threads 2 ...]
       (or python bench/bench_trainer.py [--quick] [--threads 2] [--json PATH])
Summary: speedup_vs_eager (compiled trainer / plain loop, steady state),
speedup_vs_eager_uncompiled (eager trainer / plain loop), compile_s, breakeven_steps,
data_wait_fraction (median over rounds), losses_max_abs_diff, compiled_losses_max_abs_diff,
and on GPU mfu, fused_ce_memory_ratio, device.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

from pygzlaw.bench._harness import median, quantiles, write_json  # noqa: E402  (one BLAS thread; before numpy)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pygzlaw.train import TrainConfig, train  # noqa: E402
from pygzlaw.train.loop import lr_at  # noqa: E402


def plain_loop(config: TrainConfig) -> tuple[float, list[float], list[float]]:
    """The baseline: an eager single-thread loop. Returns (training tokens/s, losses, step seconds)."""
    from pygzlaw.grammar import random_pcfg
    from pygzlaw.model import GPT, model_config
    from pygzlaw.sampler import Sampler

    sampler = Sampler(random_pcfg(config.grammar, config.grammar_seed), config.seq_len,
                      seed=config.data_seed, dtype=np.int32)
    mcfg = model_config(config.model, sampler.vocab_size, config.seq_len, kernels=config.kernels)
    model = GPT(mcfg)
    model.init_weights(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                            weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, config) / config.lr)
    B = config.batch_docs
    losses, step_s = [], []
    t0 = t_prev = time.perf_counter()
    for step in range(config.n_steps):
        docs, _ = sampler.sample(B, first_doc=step * B)
        x = torch.from_numpy(docs).long()
        loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        losses.append(float(loss.item()))
        now = time.perf_counter()
        step_s.append(now - t_prev)
        t_prev = now
    dt = time.perf_counter() - t0
    return config.n_steps * config.tokens_per_step / dt, losses, step_s


def trainer_run(config: TrainConfig) -> tuple[float, float, list[float], list[float], bool]:
    """(tokens/s, data-wait fraction, losses, step seconds, compiled) of one pygzlaw run."""
    rows = []
    rec = train(config.replace(log_every_steps=1), on_step=rows.append)
    step_s = [config.tokens_per_step / r["tokens_per_s"] for r in rows]
    return rec.tokens_per_s, rec.data_wait_fraction, [r["loss"] for r in rows], step_s, \
        rec.compiled


def cold_compile_s(config: TrainConfig, skip: int) -> float:
    """Seconds the first step of a compile="on" run spends beyond a steady step, with
    torch.compile's caches cleared and inductor's on-disk caches off (a first compile)."""
    import torch._dynamo
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    old = inductor_config.force_disable_caches
    inductor_config.force_disable_caches = True
    try:
        with warnings.catch_warnings():  # torch notes that caches-off also turns off its PGO
            warnings.filterwarnings("ignore", message=".*force_disable_caches")
            _, _, _, step_s, compiled = trainer_run(config)
    finally:
        inductor_config.force_disable_caches = old
    assert compiled, "compile='on' did not compile"
    return step_s[0] - median(step_s[skip:])


def steady_tokens_per_s(step_s: list[float], tokens_per_step: int, skip: int) -> float:
    """Tokens/s over the steps after the first ``skip`` (compile and first-call costs)."""
    rest = step_s[skip:]
    return len(rest) * tokens_per_step / sum(rest)


def gpu_section(quick: bool) -> dict:
    """MFU of gpt-275m in bf16 on one GPU, eager and compiled, plus pygzlaw.bench.kernels.run()."""
    out: dict = {"device": torch.cuda.get_device_name(0)}
    steps = 20 if quick else 60
    batch = 64  # 16K tokens per step: GEMMs large enough to fill one GPU
    cfg = TrainConfig(model="gpt-275m", grammar="main-3", n_tokens=steps * batch * 256,
                      batch_docs=batch, seq_len=256, lr=5e-5, val_docs=64, device="cuda",
                      progress=False, h_docs=0, log_every_steps=1)
    for mode in ("off", "on"):
        key = "eager" if mode == "off" else "compiled"
        try:
            c = cfg.replace(compile=mode)
            train(c.replace(n_tokens=5 * batch * 256))         # warm-up: kernels, allocator, compile
            rows = []
            rec = train(c, on_step=rows.append)
        except Exception as exc:  # recorded, not fatal: the other mode's numbers still stand
            out[f"{key}_error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
            continue
        steady = [r["mfu"] for r in rows[len(rows) // 3:] if r.get("mfu") is not None]
        out.update({f"mfu_{key}": median(steady) if steady else rec.mfu,
                    f"tokens_per_s_275m_{key}": rec.tokens_per_s,
                    f"peak_memory_bytes_{key}": rec.peak_memory_bytes,
                    f"data_wait_fraction_275m_{key}": rec.data_wait_fraction})
        out["vocab_size_275m"] = rec.vocab_size
    mfus = [out[k] for k in ("mfu_eager", "mfu_compiled") if out.get(k) is not None]
    out["mfu"] = max(mfus) if mfus else None
    try:
        from pygzlaw.bench.kernels import run as run_kernels

        kern = run_kernels(quick=quick)
        out["kernels"] = kern
        summ = kern.get("summary", kern) if isinstance(kern, dict) else {}
        out["fused_ce_memory_ratio"] = summ.get("fused_ce_memory_ratio")
    except Exception as exc:  # recorded, not fatal: the trainer numbers still stand
        out["kernels_error"] = f"{type(exc).__name__}: {exc}"
        out["fused_ce_memory_ratio"] = None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and steps")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for both (default 2)")
    ap.add_argument("--model", default="w64", help="model for the CPU comparison (default w64)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    ap.add_argument("--json", help="write the JSON document here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 5)
    steps = 12 if args.quick else 30
    skip = 3  # steady state: the first steps hold the compile and first-call allocations
    batch = 16
    config = TrainConfig(model=args.model, grammar="vocab300-3", n_tokens=steps * batch * 256,
                         batch_docs=batch, seq_len=256, lr=1e-3, val_docs=16, device="cpu",
                         threads=args.threads, progress=False, h_docs=0, kernels="torch",
                         compile="off")
    compiled_cfg = config.replace(compile="on")
    # warm-up of all three (imports, first-call allocations, grammar compile); the compiled
    # warm-up is a cold compile (inductor's on-disk caches off), the one-off cost a user pays;
    # later runs in this process reuse it
    plain_loop(config.replace(n_tokens=2 * batch * 256))
    trainer_run(config.replace(n_tokens=2 * batch * 256))
    compile_s = cold_compile_s(compiled_cfg.replace(n_tokens=(skip + 4) * batch * 256), skip)
    base_tps, ours_tps, waits, diffs = [], [], [], []
    base_steady, comp_steady, comp_diffs = [], [], []
    for _ in range(rounds):  # interleaved: plain, trainer eager, trainer compiled
        b, b_losses, b_steps = plain_loop(config)
        o, w, o_losses, _, _ = trainer_run(config)
        _, _, c_losses, c_steps, compiled = trainer_run(compiled_cfg)
        assert compiled, "compile='on' did not compile"
        base_tps.append(b)
        ours_tps.append(o)
        waits.append(w)
        diffs.append(max(abs(x - y) for x, y in zip(b_losses, o_losses)))
        comp_diffs.append(max(abs(x - y) for x, y in zip(b_losses, c_losses)))
        base_steady.append(steady_tokens_per_s(b_steps, config.tokens_per_step, skip))
        comp_steady.append(steady_tokens_per_s(c_steps, config.tokens_per_step, skip))
    ratios = [o / b for o, b in zip(ours_tps, base_tps)]
    c_ratios = [c / b for c, b in zip(comp_steady, base_steady)]
    params = {"model": args.model, "vocab": 301, "seq_len": 256, "batch_docs": batch,
              "steps": steps, "threads": args.threads, "dtype": "float32"}
    row = {"bench": "train.cpu_step", "baseline": "plain eager loop (same model, data, AdamW)",
           "metric": "throughput", "unit": "tokens/s",
           "params": {**params, "compile": "off"},
           "baseline_p50": median(base_tps), **{f"pygzlaw_{k}": v for k, v in
                                                quantiles(ours_tps).items()},
           "ratio": median(ratios),
           "ratio_per_round": ratios, "runs": rounds, "warmup_runs": 1}
    c_row = {"bench": "train.cpu_step_compiled",
             "baseline": "plain eager loop, steady state (steps after the first "
                         f"{skip})", "metric": "throughput", "unit": "tokens/s",
             "params": {**params, "compile": "on", "steady_after_steps": skip},
             "baseline_p50": median(base_steady), **{f"pygzlaw_{k}": v for k, v in
                                                     quantiles(comp_steady).items()},
             "ratio": median(c_ratios), "ratio_per_round": c_ratios,
             "compile_s_cold": compile_s, "runs": rounds, "warmup_runs": 1}
    step_saved_s = config.tokens_per_step / median(base_steady) \
        - config.tokens_per_step / median(comp_steady)
    breakeven = compile_s / step_saved_s if step_saved_s > 0 else None
    summary = {"speedup_vs_eager": c_row["ratio"],
               "speedup_vs_eager_uncompiled": row["ratio"],
               "data_wait_fraction": median(waits),
               "losses_max_abs_diff": max(diffs), "compiled_losses_max_abs_diff": max(comp_diffs),
               "compile_s": compile_s, "breakeven_steps": breakeven,
               "cpu_tokens_per_s": median(comp_steady),
               "cpu_tokens_per_s_uncompiled": median(ours_tps), "device": "cpu"}
    doc = {"bench": "trainer", "rows": [row, c_row], "summary": summary}
    if torch.cuda.is_available():
        gpu = gpu_section(args.quick)
        summary.update({"mfu": gpu["mfu"], "fused_ce_memory_ratio": gpu["fused_ce_memory_ratio"],
                        "device": gpu["device"]})
        doc["gpu"] = gpu
    write_json(args.json, doc)
    ok = summary["speedup_vs_eager"] >= 1.0 and summary["data_wait_fraction"] < 0.01
    print(f"trainer, compiled (as compile=auto runs long CPU jobs): {median(comp_steady):,.0f} "
          f"tokens/s vs plain loop {median(base_steady):,.0f} tokens/s, steady state: "
          f"{c_row['ratio']:.3f}x (compile {compile_s:.1f} s, repaid after "
          f"{breakeven if breakeven is None else round(breakeven)} steps; losses within "
          f"{max(comp_diffs):.1e})")
    print(f"trainer, eager (short runs): {median(ours_tps):,.0f} tokens/s vs plain loop "
          f"{median(base_tps):,.0f} tokens/s: {row['ratio']:.3f}x; data wait "
          f"{100 * median(waits):.3f}% of step time; losses agree to {max(diffs):.2e}; "
          f"bar {'met' if ok else 'NOT met'}")
    return 0 if math.isfinite(row["ratio"]) and math.isfinite(c_row["ratio"]) else 1


if __name__ == "__main__":
    sys.exit(main())
