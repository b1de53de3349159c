"""Thin caller of ``pygzlaw.bench.sampler``, the same code as ``pygzlaw bench sampler``.

    python bench/bench_sampler.py [--quick] [--json PATH] ...   (see --help)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pygzlaw.bench.sampler import *  # noqa: E402,F401,F403  (tests import this module by name)
from pygzlaw.bench.sampler import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
