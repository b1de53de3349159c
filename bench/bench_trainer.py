"""Thin caller of ``pygzlaw.bench.trainer``, the same code as ``pygzlaw bench trainer``.

    python bench/bench_trainer.py [--quick] [--json PATH] ...   (see --help)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pygzlaw.bench.trainer import *  # noqa: E402,F401,F403  (tests import this module by name)
from pygzlaw.bench.trainer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
