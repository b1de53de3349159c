"""Thin caller of ``pygzlaw.bench.fit``, the same code as ``pygzlaw bench fit``.

    python bench/bench_fit.py [--quick] [--json PATH] ...   (see --help)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pygzlaw.bench.fit import *  # noqa: E402,F401,F403  (tests import this module by name)
from pygzlaw.bench.fit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
