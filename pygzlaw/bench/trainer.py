"""Bench: pygzlaw's trainer against a plain eager PyTorch loop of the same model and data.

Both train the same GPT (pygzlaw.model, same init seed, same kernels) on the same documents
(the native sampler, data seed 1234, documents [s·B, (s+1)·B) at step s) with AdamW, the same
cosine schedule and gradient clipping, in the same process. The plain loop is what one writes
first: sample the batch, convert, forward, backward, clip, step, in one thread. Rounds
alternate the two (each round: one run of each, in turn), and the reported numbers are medians
over rounds of training tokens/s (setup excluded from both); the speedup is the median of
the per-round ratios, which a machine whose speed drifts between rounds disturbs least. The losses of the two must agree
(same computation), which the bench checks and reports.

On a GPU it also measures the MFU of gpt-275m in bf16 (one GPU, batch 32 x 256) and includes
``pygzlaw.bench.kernels.run()`` (per-kernel speed, fused cross-entropy memory).

Needs torch (``pip install 'pygzlaw[cpu]'``).

Usage: pygzlaw bench trainer [--quick] [--json PATH] [-- --threads 2 ...]
       (or python bench/bench_trainer.py [--quick] [--threads 2] [--json PATH])
Summary: speedup_vs_eager (trainer tokens/s / plain loop tokens/s, medians), data_wait_fraction
(median over rounds), losses_max_abs_diff, and on GPU mfu, fused_ce_memory_ratio, device.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

from pygzlaw.bench._harness import median, quantiles, write_json  # noqa: E402  (one BLAS thread; before numpy)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pygzlaw.train import TrainConfig, train  # noqa: E402
from pygzlaw.train.loop import lr_at  # noqa: E402


def plain_loop(config: TrainConfig) -> tuple[float, list[float]]:
    """The baseline: an eager single-thread loop. Returns (training tokens/s, losses)."""
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
    losses = []
    t0 = time.perf_counter()
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
    dt = time.perf_counter() - t0
    return config.n_steps * config.tokens_per_step / dt, losses


def trainer_run(config: TrainConfig) -> tuple[float, float, list[float]]:
    rows = []
    rec = train(config, on_step=rows.append)
    return rec.tokens_per_s, rec.data_wait_fraction, [r["loss"] for r in rows]


def gpu_section(quick: bool) -> dict:
    """MFU of gpt-275m in bf16 on one GPU, plus pygzlaw.bench.kernels.run()."""
    out: dict = {"device": torch.cuda.get_device_name(0)}
    steps = 20 if quick else 60
    cfg = TrainConfig(model="gpt-275m", grammar="main-3", n_tokens=steps * 32 * 256, batch_docs=32,
                      seq_len=256, lr=5e-5, val_docs=64, device="cuda", progress=False,
                      h_docs=0, log_every_steps=1)
    rows = []
    train(cfg.replace(n_tokens=5 * 32 * 256))             # warm-up: kernels, allocator
    rec = train(cfg, on_step=rows.append)
    steady = [r["mfu"] for r in rows[len(rows) // 3:] if r.get("mfu") is not None]
    out.update({"mfu": median(steady) if steady else rec.mfu, "mfu_whole_run": rec.mfu,
                "tokens_per_s_275m": rec.tokens_per_s, "peak_memory_bytes": rec.peak_memory_bytes,
                "vocab_size_275m": rec.vocab_size, "data_wait_fraction_275m": rec.data_wait_fraction})
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
    steps = 8 if args.quick else 20
    batch = 16
    config = TrainConfig(model=args.model, grammar="vocab300-3", n_tokens=steps * batch * 256,
                         batch_docs=batch, seq_len=256, lr=1e-3, val_docs=16, device="cpu",
                         threads=args.threads, progress=False, h_docs=0, kernels="torch")
    # warm-up of both (imports, first-call allocations, grammar compile)
    plain_loop(config.replace(n_tokens=2 * batch * 256))
    trainer_run(config.replace(n_tokens=2 * batch * 256))
    base_tps, ours_tps, waits, diffs = [], [], [], []
    for _ in range(rounds):
        b, b_losses = plain_loop(config)
        o, w, o_losses = trainer_run(config)
        base_tps.append(b)
        ours_tps.append(o)
        waits.append(w)
        diffs.append(max(abs(x - y) for x, y in zip(b_losses, o_losses)))
    ratios = [o / b for o, b in zip(ours_tps, base_tps)]
    row = {"bench": "train.cpu_step", "baseline": "plain eager loop (same model, data, AdamW)",
           "metric": "throughput", "unit": "tokens/s",
           "params": {"model": args.model, "vocab": 301, "seq_len": 256, "batch_docs": batch,
                      "steps": steps, "threads": args.threads, "dtype": "float32"},
           "baseline_p50": median(base_tps), **{f"pygzlaw_{k}": v for k, v in
                                                quantiles(ours_tps).items()},
           "ratio": median(ratios),
           "ratio_per_round": ratios, "runs": rounds, "warmup_runs": 1}
    summary = {"speedup_vs_eager": row["ratio"], "data_wait_fraction": median(waits),
               "losses_max_abs_diff": max(diffs), "cpu_tokens_per_s": median(ours_tps),
               "device": "cpu"}
    doc = {"bench": "trainer", "rows": [row], "summary": summary}
    if torch.cuda.is_available():
        gpu = gpu_section(args.quick)
        summary.update({"mfu": gpu["mfu"], "fused_ce_memory_ratio": gpu["fused_ce_memory_ratio"],
                        "device": gpu["device"]})
        doc["gpu"] = gpu
    write_json(args.json, doc)
    ok = summary["speedup_vs_eager"] >= 1.0 and summary["data_wait_fraction"] < 0.01
    print(f"trainer {median(ours_tps):,.0f} tokens/s vs plain loop {median(base_tps):,.0f} "
          f"tokens/s: {row['ratio']:.3f}x; data wait {100 * median(waits):.3f}% of step time; "
          f"losses agree to {max(diffs):.2e}; bar {'met' if ok else 'NOT met'}")
    return 0 if math.isfinite(row["ratio"]) else 1


if __name__ == "__main__":
    sys.exit(main())
