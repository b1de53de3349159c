"""Benchmark of scan --engine ray against the local scan on the same corpus (issue 10).

One process, same corpus for both: a generated JSON Lines corpus of ``--files`` files of
``--file-mb`` MB each in a temporary directory (deleted at the end). Rounds interleave:

  * local: ``pygzlaw.scan.scan(threads=C)`` (the single-machine scan, C = --cpus);
  * ray: ``scan_ray`` on a local Ray with ``num_cpus=C``, one task per ``--shard-mb`` of input,
    each task ``threads=1`` (one declared CPU), merged summary written as by the CLI.

Ray is started once before the rounds (its start-up time is reported, not timed in the rounds,
as a cluster is started once for many scans). Both engines write their summary to a fresh
directory each round. Reports medians of the rounds: ``ray_vs_local`` (local seconds / ray
seconds, i.e. Ray's throughput relative to the local scan) and ``scan_mb_per_s_per_core``
(window MB scored per second per CPU under Ray).

Usage: python bench/bench_scale.py [--quick] [--json PATH] [--files N] [--file-mb MB]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _harness import git_commit, median, quantiles, time_interleaved, write_json  # noqa: E402

from pygzlaw.bench.scorer import WORDS  # noqa: E402  (the same web-like vocabulary)


def make_corpus(root: str, n_files: int, file_mb: float, seed: int = 0) -> int:
    """n_files JSON Lines files of about file_mb MB of web-like documents; returns bytes."""
    rng = random.Random(seed)
    vocab = WORDS + ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(
        rng.randint(3, 11))) for _ in range(3000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # Zipf-like word frequencies
    pool = rng.choices(vocab, weights, k=200_000)
    total = 0
    target = int(file_mb * 1e6)
    for i in range(n_files):
        lines, size = [], 0
        while size < target:
            start = rng.randrange(len(pool) - 3000)
            doc = " ".join(pool[start:start + rng.randint(200, 2500)])
            line = json.dumps({"text": doc, "id": len(lines)})
            lines.append(line)
            size += len(line) + 1
        data = ("\n".join(lines) + "\n").encode()
        with open(os.path.join(root, f"part-{i:05d}.jsonl"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="96 MB in 8 files, 2 rounds")
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--file-mb", type=float, default=25.0)
    ap.add_argument("--shard-mb", type=float, default=None,
                    help="input MB per Ray task (default: one file per task)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs for both engines (default 2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None, metavar="PATH")
    args = ap.parse_args(argv)
    if args.quick:
        args.files, args.file_mb, args.rounds = 8, 12.0, 2
    if args.files < 1 or args.file_mb <= 0 or args.cpus < 1 or args.rounds < 1:
        ap.error("--files, --file-mb, --cpus and --rounds must be positive")

    import ray

    from pygzlaw.scan import scan
    from pygzlaw.scan.ray_engine import scan_ray

    tmp = tempfile.mkdtemp(prefix="pygzlaw-bench-scale-")
    try:
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(corpus)
        t0 = time.perf_counter()
        corpus_bytes = make_corpus(corpus, args.files, args.file_mb)
        print(f"corpus: {args.files} files, {corpus_bytes / 1e6:.0f} MB "
              f"({time.perf_counter() - t0:.1f} s to write)", file=sys.stderr)
        shard_bytes = int(args.shard_mb * 1e6) if args.shard_mb else corpus_bytes // args.files
        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        ray_init_s = time.perf_counter() - t0
        last = {}
        counter = [0]

        def run_local():
            counter[0] += 1
            last["local"] = scan([corpus], out_dir=os.path.join(tmp, f"local-{counter[0]}"),
                                 threads=args.cpus, progress=False)

        def run_ray():
            counter[0] += 1
            last["ray"] = scan_ray([corpus], out_dir=os.path.join(tmp, f"ray-{counter[0]}"),
                                   threads=1, shard_bytes=shard_bytes, progress=False,
                                   timeout_s=600)

        times = time_interleaved({"local": run_local, "ray": run_ray}, runs=args.rounds,
                                 warmup=0)
        ray.shutdown()
        lo, ra = last["local"]["overall"], last["ray"]["overall"]
        assert {k: v for k, v in lo.items() if k != "stats"} == \
            {k: v for k, v in ra.items() if k != "stats"}, "ray and local scans differ"
        window_mb = lo["window_raw_bytes"] / 1e6
        t_local, t_ray = median(times["local"]), median(times["ray"])
        summary = {
            "ray_vs_local": t_local / t_ray,
            "scan_mb_per_s_per_core": window_mb / t_ray / args.cpus,
            "local_scan_mb_per_s_per_core": window_mb / t_local / args.cpus,
            "local_s": t_local, "ray_s": t_ray, "ray_init_s": ray_init_s,
            "corpus_mb": corpus_bytes / 1e6, "window_mb": window_mb, "files": args.files,
            "ray_tasks": last["ray"]["engine"]["n_shards"], "cpus": args.cpus,
            "rounds": args.rounds, "bar_ray_vs_local": 0.8,
        }
        rows = [{"engine": name, "unit": "s", **quantiles(ts), "runs": ts}
                for name, ts in times.items()]
        write_json(args.json, {"bench": "scale", "commit": git_commit(),
                               "timestamp": datetime.datetime.now(datetime.timezone.utc)
                               .isoformat(timespec="seconds"),
                               "summary": summary, "rows": rows})
        print(f"ray_vs_local {summary['ray_vs_local']:.2f}x  "
              f"({t_local:.2f} s local, {t_ray:.2f} s ray, {summary['ray_tasks']} tasks); "
              f"{summary['scan_mb_per_s_per_core']:.1f} MB/s per core under Ray", file=sys.stderr)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
