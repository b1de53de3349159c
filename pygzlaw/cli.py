"""The ``pygzlaw`` command line. Each stage registers its own subcommands.

A stage module exposes ``register(subparsers)``; it adds its parsers and sets
``func`` on each (``func(args) -> int`` exit code). Imports are lazy inside the
stage commands so ``pygzlaw --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from pygzlaw import __version__

# Stage modules with subcommands, in the order they appear in --help.
STAGE_COMMANDS = (
    "pygzlaw.sampler.cli",   # generate
    "pygzlaw.score.cli",     # score
    "pygzlaw.scan.cli",      # scan, scan-merge
    "pygzlaw.laws.cli",      # fit, predict, allocate, plot
    "pygzlaw.serve.cli",     # serve
    "pygzlaw.study.cli",     # reproduce, runs, report
    "pygzlaw.train.cli",     # train
    "pygzlaw.benchcli",      # bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pygzlaw",
        description="gzip-predicted, data-dependent scaling laws: generate PCFG data, "
                    "score gzip compressibility, fit and serve scaling laws.")
    parser.add_argument("--version", action="version", version=f"pygzlaw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2

    def show_warning(message, category, filename, lineno, file=None, line=None):
        # A CLI user gets the message, not the library line that raised it.
        print(f"pygzlaw {args.command}: warning: {message}", file=file or sys.stderr)

    saved, warnings.showwarning = warnings.showwarning, show_warning
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe must fail here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # The reader went away (`pygzlaw ... | head`): stop quietly as Unix tools do. Point
        # stdout at /dev/null so the interpreter's final flush cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13  # the status of a process ended by SIGPIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError) as exc:
        # User errors: one line naming the problem, no traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"pygzlaw {args.command}: error: {msg}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":
    sys.exit(main())
