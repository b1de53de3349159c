"""``pygzlaw bench NAME [--quick] [--json PATH] [...]``: the benchmarks of ``pygzlaw.bench``."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add ``bench`` to the ``pygzlaw`` command line."""
    from pygzlaw.bench import BENCHES

    names = list(BENCHES)
    p = subparsers.add_parser(
        "bench", help="run a benchmark on this machine (baseline and pygzlaw, ratio, JSON)",
        description="Run one of pygzlaw's benchmarks on this machine: the baseline and pygzlaw "
                    "in one process, medians of interleaved runs, ratios printed, and the JSON "
                    "document (machine, commit, timestamp, rows) written with --json. The same "
                    "code as the scripts in a clone's bench/. trainer and kernels need torch "
                    "(pip install 'pygzlaw[cpu]').")
    p.add_argument("name", choices=names, metavar="NAME", help="one of: " + ", ".join(names))
    p.add_argument("--quick", action="store_true", help="smaller runs (about a minute or two)")
    p.add_argument("--json", metavar="PATH", help="write the JSON document here")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="further options of that benchmark (see pygzlaw bench NAME -- --help)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from pygzlaw.bench import run

    extra = [a for a in args.args if a != "--"]
    argv = (["--quick"] if args.quick else []) + (["--json", args.json] if args.json else [])
    return run(args.name, argv + extra)
