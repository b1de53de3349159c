"""Build pygzlaw's native extensions in place without pip, for a machine with no package index
(the GPU image: Cython, setuptools, numpy and a C++ compiler present; pyproject's build
requirements and dependencies maybe not). Uses setup.py's own extension list, but not
setup(), so pyproject.toml's metadata (which needs setuptools >= 77) is never read.

Usage (repo root): python3 bench/gpu_build.py [--jobs N]; then PYTHONPATH=$PWD python3 -m pygzlaw ...
"""
import argparse
import os
import runpy
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiles")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.chdir(root)
    from setuptools import Distribution

    helpers = runpy.run_path(os.path.join(root, "setup.py"), run_name="pygzlaw_setup")
    t0 = time.perf_counter()
    dist = Distribution({"name": "pygzlaw-native",
                         "ext_modules": helpers["_cythonize"](helpers["_extensions"]())})
    cmd = dist.get_command_obj("build_ext")
    cmd.inplace = True
    cmd.parallel = args.jobs
    dist.run_command("build_ext")
    print(f"built {len(dist.ext_modules)} extensions in place in {time.perf_counter() - t0:.1f} s "
          f"(python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
