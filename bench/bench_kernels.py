"""Thin caller of ``pygzlaw.bench.kernels``, the same code as ``pygzlaw bench kernels``.

    python bench/bench_kernels.py [--quick] [--json PATH] ...   (see --help)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pygzlaw.bench.kernels import *  # noqa: E402,F401,F403  (tests import this module by name)
from pygzlaw.bench.kernels import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
