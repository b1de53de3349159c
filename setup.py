"""Build the native extensions.

Convention (see ARCHITECTURE.md): every stage with native code is a package
``pygzlaw/<stage>/`` holding ``_native.pyx``; its C++ lives in ``csrc/<stage>/*.cpp``
and may use the shared headers in ``csrc/common/``. One extension per stage.
"""
import glob
import os
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
# Extra link libraries per stage (the scorer links the system zlib, the one Python's
# own zlib module uses, so sizes match gzip.GzipFile byte for byte).
STAGE_LIBRARIES = {"score": ["z"]}


def _cxx_flags():
    if sys.platform == "win32":
        return ["/O2", "/std:c++17"]
    flags = ["-O3", "-std=c++17", "-Wall", "-Wno-unused-function"]
    if os.environ.get("PYGZLAW_NATIVE_ARCH") == "1":  # opt-in: not portable across CPUs
        flags.append("-march=native")
    return flags


def _extensions():
    exts = []
    # PYGZLAW_STAGES=score,sampler builds only those stages (for working on one).
    only = {s for s in os.environ.get("PYGZLAW_STAGES", "").split(",") if s}
    for pyx in sorted(glob.glob(os.path.join("pygzlaw", "*", "_native.pyx"))):
        stage = os.path.basename(os.path.dirname(pyx))
        if only and stage not in only:
            continue
        sources = [pyx] + sorted(glob.glob(os.path.join("csrc", stage, "*.cpp")))
        exts.append(
            Extension(
                f"pygzlaw.{stage}._native",
                sources=sources,
                include_dirs=[os.path.join(HERE, "csrc")],
                language="c++",
                extra_compile_args=_cxx_flags(),
                extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
                libraries=STAGE_LIBRARIES.get(stage, []),
            )
        )
    return exts


def _cythonize(exts):
    from Cython.Build import cythonize

    return cythonize(
        exts,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )


if __name__ == "__main__":  # pip and setuptools' build backend run this file as __main__;
    # bench/gpu_build.py imports the two helpers above without running setup()
    setup(ext_modules=_cythonize(_extensions()))
