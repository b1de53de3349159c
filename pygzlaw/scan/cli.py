"""``pygzlaw scan`` and ``pygzlaw scan-merge``."""
from __future__ import annotations

import argparse
import sys

from pygzlaw._argtypes import positive_float as _positive_float
from pygzlaw._argtypes import positive_int as _positive_int
from pygzlaw._argtypes import thread_count, zlib_level


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scan", help="gzip compressibility of windows over a whole corpus",
        description="Cut every document into non-overlapping windows (bytes of raw text, or "
                    "tokens) and score each window's gzip ratio exactly (level 9, as "
                    "gzip.GzipFile). Inputs: .txt, .jsonl, .json, .parquet (optionally .gz or "
                    ".zst), directories (recursive), PCFG shard directories from 'pygzlaw "
                    "generate', and '-' for stdin. With --out the scan is resumable: rerun "
                    "the same command to continue after an interruption.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory: manifest.jsonl (resume), summary.json, windows/")
    p.add_argument("--window-bytes", type=_positive_int, default=1024,
                   help="window size in bytes of raw text (default 1024)")
    p.add_argument("--window-tokens", type=_positive_int, default=None,
                   help="window size in tokens (with --tokenizer; PCFG shards default to one "
                        "window per document)")
    p.add_argument("--tokenizer", default=None, metavar="FILE",
                   help="tokenizers JSON file: score token windows instead of bytes")
    p.add_argument("--token-bytes", type=int, default=4, choices=(1, 2, 4, 8),
                   help="bytes per serialized token id (default 4, the paper)")
    p.add_argument("--byteorder", default="big", choices=("big", "little"))
    p.add_argument("--keep-tail", action="store_true",
                   help="also score each document's short last window (default: count, skip)")
    p.add_argument("--field", default="text", help="JSON field with the text (a.b = nested)")
    p.add_argument("--column", default="text", help="Parquet column with the text")
    p.add_argument("--txt-unit", default="file", choices=("file", "line"),
                   help=".txt documents: the whole file (default) or each line")
    p.add_argument("--format", dest="fmt", default=None,
                   help="force the format of named files, e.g. jsonl or jsonl.zst")
    p.add_argument("--stdin-format", default="txt",
                   help="format of '-', e.g. jsonl.zst (default txt)")
    p.add_argument("--mode", default="exact", choices=("exact", "fast"),
                   help="exact (default) or fast first-pass mode (approximate)")
    p.add_argument("--level", type=zlib_level, default=9,
                   help="zlib level of exact mode, 0-9 (default 9)")
    p.add_argument("--threads", type=thread_count, default=2,
                   help="native scorer threads (default 2, -1 = all cores)")
    p.add_argument("--shard", default="0/1", metavar="i/n",
                   help="scan only part i of n of the sorted file list (default 0/1)")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local (default): this process; ray: one Ray task per shard of files "
                        "(needs pygzlaw[ray] and --out on storage every node can write)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join (--engine ray), e.g. auto or ray://host:10001; "
                        "default: RAY_ADDRESS, else a new local Ray")
    p.add_argument("--shard-mb", type=_positive_float, default=64.0,
                   help="--engine ray: input megabytes per task (default 64; a compressed "
                        "file is never split)")
    p.add_argument("--max-retries", type=int, default=3,
                   help="--engine ray: retries of a task whose worker dies (default 3)")
    p.add_argument("--per-window", action="store_true",
                   help="write per-window scores to DIR/windows/*.parquet (needs --out)")
    p.add_argument("--batch-mb", type=_positive_float, default=4.0,
                   help="window megabytes per scorer batch (memory ~3x this)")
    p.add_argument("--restart", action="store_true", help="ignore a previous manifest in --out")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any input was bad (the scan still completes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print the whole summary JSON instead of a short report")
    p.set_defaults(func=_cmd_scan)

    m = subparsers.add_parser(
        "scan-merge", help="combine scan summaries (e.g. from --shard i/n runs)",
        description="Merge summary.json files (or scan --out directories) of scans with "
                    "equal options into one summary with merged sketches.")
    m.add_argument("summaries", nargs="+", metavar="SUMMARY_OR_DIR")
    m.add_argument("--out", required=True, metavar="PATH", help="merged summary JSON")
    m.add_argument("--strict", action="store_true", help="exit 1 if any input was bad")
    m.set_defaults(func=_cmd_merge)


def _report(summary: dict, stream=None) -> None:
    stream = stream or sys.stdout
    o = summary["overall"]
    s = o["stats"]
    fmt = (lambda v: "n/a" if v is None else f"{v:.4f}")
    n_changed = len(summary.get("changed_inputs", ()))
    changed = f" ({n_changed} changed since the last scan, rescanned)" if n_changed else ""
    cfg = summary.get("config", {})
    if cfg.get("keep_tail"):
        tails = f"tails {o['n_tails']} (scored as short windows)"
    else:
        tails = (f"tails {o['n_tails']} ({o['tail_units']} tail bytes or tokens not scored; "
                 "--keep-tail scores them)")
    print(f"units {summary['n_units_done']}/{summary['n_units']}{changed}  docs {o['n_docs']}  "
          f"windows {o['n_windows']}  {tails}", file=stream)
    if cfg.get("mode") == "fast":
        scoring = "scores: fast mode, approximate (not GzipFile's sizes; ranks sources)"
    else:
        prov = summary.get("provenance") or {}
        lib = f"; {prov['zlib_flavour']} {prov['zlib_version']}" if prov else ""
        scoring = f"scores: exact (zlib level {cfg.get('level', 9)}, as gzip.GzipFile{lib})"
    print(f"gzip ratio: median {fmt(s['median'])}  std {fmt(s['std'])}  mean {fmt(s['mean'])}  "
          f"[{scoring}; quantiles {s['quantile_method']}, rank error {s['rank_error']:.4f}]",
          file=stream)
    if o["bad_input_total"]:
        kinds = ", ".join(f"{k}={v}" for k, v in o["bad_input"].items())
        print(f"bad input: {o['bad_input_total']} ({kinds})", file=stream)
        for ex in summary["bad_examples"][:10]:
            print(f"  {ex['file']}:{ex['line']}: {ex['kind']}: {ex['message']}", file=stream)
    for ch in summary.get("changed_inputs", ()):
        print(f"rescanned {ch['unit']}: changed since the last scan ({ch['reason']})",
              file=stream)
    t = summary.get("throughput")
    if t and t.get("window_bytes_per_s"):
        print(f"scored {t['window_bytes_scored'] / 1e6:.1f} MB of windows at "
              f"{t['window_bytes_per_s'] / 1e6:.1f} MB/s", file=stream)


def _cmd_scan(args: argparse.Namespace) -> int:
    import json

    from pygzlaw.scan import ScanConfig, scan

    cfg = ScanConfig(window_bytes=args.window_bytes, window_tokens=args.window_tokens,
                     tokenizer=args.tokenizer, token_bytes=args.token_bytes,
                     byteorder=args.byteorder, keep_tail=args.keep_tail, field=args.field,
                     column=args.column, txt_unit=args.txt_unit, fmt=args.fmt,
                     stdin_format=args.stdin_format, mode=args.mode, level=args.level)
    progress = not args.no_progress and sys.stderr.isatty()
    if args.engine == "ray":
        from pygzlaw.scan import ray_engine

        if args.shard != "0/1":
            raise ValueError("--shard i/n is for --engine local; --engine ray splits the files "
                             "into tasks itself (--shard-mb)")
        try:
            ray_engine.require_ray()
        except ImportError as e:
            print(f"pygzlaw scan: error: {e}", file=sys.stderr)
            return 2
        summary = ray_engine.scan_ray(
            args.paths, out_dir=args.out, config=cfg, threads=args.threads,
            per_window=args.per_window, address=args.address,
            shard_bytes=max(1, int(args.shard_mb * (1 << 20))), max_retries=args.max_retries,
            progress=progress, restart=args.restart, batch_bytes=int(args.batch_mb * (1 << 20)))
    else:
        if args.address is not None:
            raise ValueError("--address needs --engine ray")
        urls = [p for p in args.paths if "://" in p]
        if urls:
            raise ValueError(f"{urls[0]}: URL inputs (fsspec) are read by --engine ray; "
                             "pass local paths to --engine local")
        summary = scan(args.paths, out_dir=args.out, config=cfg, threads=args.threads,
                       shard=args.shard, per_window=args.per_window, progress=progress,
                       restart=args.restart, batch_bytes=int(args.batch_mb * (1 << 20)))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "sketch"}, indent=1))
    else:
        _report(summary)
    return 1 if args.strict and summary["overall"]["bad_input_total"] else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from pygzlaw.scan import scan_merge

    merged = scan_merge(args.summaries, out_path=args.out)
    _report(merged)
    return 1 if args.strict and merged["overall"]["bad_input_total"] else 0
