"""pygzlaw's native sampler vs the ``pcfg`` package (the research code's sampler).

Same grammar for both (``to_pcfg_package``), same output: documents of 256
tokens, sentences joined by separator 0 (terminal t -> token t + 1), the
overflowing sentence cut. The baseline is pcfg's ``generate`` plus the Python
packing the research pipeline needs; it is timed for a few seconds per preset
(it runs at ~1e6 tokens/s), pygzlaw for a fixed number of documents with 1 and
2 threads alternating run by run, medians of several runs, in the same process.

    pygzlaw bench sampler [--quick] [--json PATH]   (or python bench/bench_sampler.py ...)

Summary keys: tokens_per_s_per_core_median (1 thread, median over the six main
presets), speedup_vs_pcfg_median (1-thread pygzlaw / pcfg, median over
presets), thread_scaling_2 (2-thread / 1-thread throughput of runs made back to
back, median over pairs, then over presets), bin_vs_npy_write (shard write speed of
``generate --format bin`` over ``--format npy`` on the same tokens, interleaved;
the bar is >= 0.9 since both are raw token streams), and format_write_tokens_per_s
(every format's shard writer, tokens/s, written to a temporary directory).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time


from pygzlaw.bench._harness import median, quantiles, time_interleaved, write_json  # noqa: E402  (before numpy)

import numpy as np  # noqa: E402

from pygzlaw.grammar import MAIN_PRESETS, analyze, random_pcfg, to_pcfg_package  # noqa: E402
from pygzlaw.sampler import Sampler  # noqa: E402

DOC_TOKENS = 256  # the paper's context length


def pcfg_tokens_per_s(grammar, budget_s: float, seed: int) -> tuple[float, dict]:
    """Documents from pcfg.PCFG.generate, packed like the research pipeline, for budget_s.

    Returns (tokens/s, details). Tokens are counted in finished documents only.
    """
    model = to_pcfg_package(grammar)
    token_of = {name: i + 1 for i, name in enumerate(grammar.terminal_names)}
    random.seed(seed)
    n_docs = n_sentences = n_rejected = 0
    doc = np.zeros(DOC_TOKENS, dtype=np.int32)
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    pos = 0
    while True:
        try:
            sentence = next(model.generate(1))
        except RecursionError:  # the research code discards and resamples
            n_rejected += 1
            continue
        n_sentences += 1
        ids = [token_of[w] for w in sentence.split()]
        if pos > 0:
            doc[pos] = 0
            pos += 1
        take = min(len(ids), DOC_TOKENS - pos)
        doc[pos:pos + take] = ids[:take]
        pos += take
        if pos >= DOC_TOKENS - 1:  # full (a lone trailing separator slot stays 0)
            n_docs += 1
            pos = 0
            if time.perf_counter() >= deadline:
                break
    elapsed = time.perf_counter() - t0
    return n_docs * DOC_TOKENS / elapsed, {"docs": n_docs, "sentences": n_sentences,
                                           "rejected": n_rejected, "seconds": elapsed}


def pygzlaw_runs(grammar, n_docs: int, runs: int,
                 first_doc: int = 0) -> tuple[list[float], list[float]]:
    """tokens/s of Sampler.fill into one reused (n_docs, 256) buffer with 1 and
    with 2 threads, alternating run by run (see time_interleaved)."""
    samplers = {t: Sampler(grammar, DOC_TOKENS, seed=0, threads=t) for t in (1, 2)}
    buf = np.empty((n_docs, DOC_TOKENS), dtype=samplers[1].dtype)
    first = [first_doc]

    def once(threads: int):
        def fill():
            samplers[threads].fill(buf, first_doc=first[0])
            first[0] += n_docs  # fresh documents every run
        return fill

    secs = time_interleaved({"1": once(1), "2": once(2)}, runs=runs, warmup=1)
    return [buf.size / t for t in secs["1"]], [buf.size / t for t in secs["2"]]


def format_write_rows(n_docs: int, runs: int) -> list[dict]:
    """Shard write speed of each format (pygzlaw.sampler.formats.write_shard: file
    bytes, sha256 while writing, fsync, rename) on one (n_docs, 256) uint16 shard of
    main-3, runs interleaved; npy is the baseline of every row. bin's .idx costs a
    second file and fsync: ~2.5 ms, 12% of an 8 MB shard's write, ~3% at 32 MiB."""
    import tempfile

    from pygzlaw.sampler import formats

    buf = np.empty((n_docs, DOC_TOKENS), dtype=np.uint16)
    Sampler(random_pcfg("main-3", 0), DOC_TOKENS, seed=0).fill(buf)
    fmts = ["npy", "bin", "parquet"]
    try:
        import streaming  # noqa: F401
        fmts.append("mds")
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="pygzlaw-bench-formats-") as d:
        secs = {f: [] for f in fmts}
        for r in range(runs + 1):  # round 0 is the warm-up
            # the order flips every round: whoever writes right after another format's
            # fsync was measured up to 30% slower here, whichever format it was
            for f in (fmts if r % 2 else fmts[::-1]):
                t0 = time.perf_counter()
                formats.write_shard(f, d, 0, buf, 0)
                if r:
                    secs[f].append(time.perf_counter() - t0)
    rows = []
    for f in fmts:
        rows.append({
            "bench": "generate.write_shard", "baseline": "format npy (np.save)",
            "metric": "throughput", "unit": "tokens/s",
            "params": {"format": f, "n_docs": n_docs, "doc_tokens": DOC_TOKENS,
                       "dtype": "uint16", "preset": "main-3"},
            "baseline_p50": buf.size / median(secs["npy"]),
            "pygzlaw_p50": buf.size / median(secs[f]),
            "pygzlaw": quantiles([buf.size / t for t in secs[f]]),
            # per-round ratio, then the median: robust to drift between rounds
            "ratio": median([a / b for a, b in zip(secs["npy"], secs[f])]),
            "runs": runs, "warmup_runs": 1,
        })
        print(f"write --format {f:8s} {rows[-1]['pygzlaw_p50'] / 1e6:8.1f} Mtok/s "
              f"(x{rows[-1]['ratio']:.2f} of npy)", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs, < 2 minutes")
    ap.add_argument("--json", metavar="PATH", help="write the full JSON document here")
    ap.add_argument("--presets", default=",".join(MAIN_PRESETS))
    ap.add_argument("--grammar-seed", type=int, default=0)
    ap.add_argument("--shard-docs", type=int, default=None,
                    help="documents per shard of the format rows (default: generate's default)")
    args = ap.parse_args(argv)

    n_docs = 16_384 if args.quick else 65_536  # 4.2M / 16.8M tokens per run
    rounds = 1 if args.quick else 3  # pcfg and pygzlaw alternate round by round
    runs = 5 if args.quick else 4  # pygzlaw runs per round
    pcfg_budget_s = 1.5 if args.quick else 3.0

    load_start = os.getloadavg()[0]  # shared machines: a busy neighbour halves these numbers
    rows = []
    for name in args.presets.split(","):
        g = random_pcfg(name, args.grammar_seed)
        one, two, base = [], [], []
        for r in range(rounds):
            base.append(pcfg_tokens_per_s(g, pcfg_budget_s, seed=r))
            a, b = pygzlaw_runs(g, n_docs, runs, first_doc=r * 2 * (runs + 1) * n_docs)
            one += a
            two += b
        base_tps = median([b[0] for b in base])
        row = {
            "bench": "sampler.fill", "baseline": "pcfg 0.1.5 generate + Python packing",
            "metric": "throughput", "unit": "tokens/s",
            "params": {"preset": name, "grammar_seed": args.grammar_seed, "doc_tokens": DOC_TOKENS,
                       "n_docs": n_docs, "spectral_radius": analyze(g)["spectral_radius"]},
            "baseline_p50": base_tps, "baseline_detail": base[0][1],
            "pygzlaw_1t": quantiles(one), "pygzlaw_2t": quantiles(two),
            "pygzlaw_p50": median(one),
            "ratio": median(one) / base_tps,
            # 2-thread over 1-thread throughput of runs made back to back,
            # median over pairs: robust to the machine's drift between pairs
            "thread_scaling_2": median([b / a for a, b in zip(one, two)]),
            "runs": rounds * runs, "warmup_runs": rounds,
        }
        rows.append(row)
        print(f"{name}: pygzlaw {median(one) / 1e6:8.1f} Mtok/s (1 thread), "
              f"{median(two) / 1e6:8.1f} Mtok/s (2 threads, x{row['thread_scaling_2']:.2f}); "
              f"pcfg {base_tps / 1e6:6.3f} Mtok/s; speedup x{row['ratio']:,.0f}", flush=True)

    # at generate's default --shard-docs (32 MiB uint16 shards), the size users write
    from pygzlaw.sampler.cli import DEFAULT_SHARD_DOCS

    fmt_rows = format_write_rows(args.shard_docs or DEFAULT_SHARD_DOCS, 5 if args.quick else 9)
    rows += fmt_rows
    rows_s = [r for r in rows if r["bench"] == "sampler.fill"]
    summary = {
        "bin_vs_npy_write": next(r["ratio"] for r in fmt_rows if r["params"]["format"] == "bin"),
        "format_write_tokens_per_s": {r["params"]["format"]: r["pygzlaw_p50"] for r in fmt_rows},
        "tokens_per_s_per_core_median": median([r["pygzlaw_p50"] for r in rows_s]),
        "speedup_vs_pcfg_median": median([r["ratio"] for r in rows_s]),
        "thread_scaling_2": median([r["thread_scaling_2"] for r in rows_s]),
        "pcfg_tokens_per_s_median": median([r["baseline_p50"] for r in rows_s]),
        "presets": [r["params"]["preset"] for r in rows_s],
        "quick": args.quick,
        "load_avg_1m": {"start": load_start, "end": os.getloadavg()[0]},
    }
    write_json(args.json, {"bench": "bench_sampler", "summary": summary, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
