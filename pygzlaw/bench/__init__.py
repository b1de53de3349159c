"""Benchmarks users run on their own machine: ``pygzlaw bench NAME [--quick] [--json PATH]``.

Each benchmark is a module with ``main(argv) -> int`` that runs its baseline and pygzlaw in
one process, prints the ratios and writes the JSON document of ``_harness.write_json``.
The scripts in a clone's ``bench/`` are thin callers of these modules (one code path).

``BENCHES`` maps a name to its module; ``trainer`` and ``kernels`` still live as scripts in
a clone's ``bench/`` (``CLONE_SCRIPTS``): ``run`` loads them from there, and says so when
pygzlaw is installed without a clone.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

# One BLAS thread for every benchmark, set before any benchmark module imports numpy.
from pygzlaw.bench import _harness  # noqa: F401

__all__ = ["BENCHES", "CLONE_SCRIPTS", "run", "available"]

BENCHES = {
    "sampler": "pygzlaw.bench.sampler",   # native sampler vs pcfg; shard write speed per format
    "scorer": "pygzlaw.bench.scorer",     # exact scorer vs gzip.GzipFile; scan throughput
    "fit": "pygzlaw.bench.fit",           # batched Chinchilla fit vs a scipy loop
    "serve": "pygzlaw.bench.serve",       # the law service under load
}
CLONE_SCRIPTS = {
    "trainer": "bench_trainer.py",        # tokens/s and MFU of the trainer (needs torch)
    "kernels": "bench_kernels.py",        # fused kernels vs eager torch (needs torch)
}
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def available() -> dict[str, str]:
    """{name: where its code is} for every benchmark ``run`` can start here."""
    out = dict(BENCHES)
    for name, script in CLONE_SCRIPTS.items():
        path = os.path.join(_ROOT, "bench", script)
        if os.path.isfile(path):
            out[name] = path
    return out


def _load(name: str):
    if name in BENCHES:
        return importlib.import_module(BENCHES[name])
    if name not in CLONE_SCRIPTS:
        raise ValueError(f"benchmark {name!r} is unknown; choose one of "
                         f"{', '.join(list(BENCHES) + list(CLONE_SCRIPTS))}")
    path = os.path.join(_ROOT, "bench", CLONE_SCRIPTS[name])
    if not os.path.isfile(path):
        raise ValueError(f"benchmark {name!r} lives in a clone's bench/{CLONE_SCRIPTS[name]}, "
                         f"not in the installed package ({path} does not exist); run it from a "
                         "clone of pygzlaw")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(name: str, argv: list[str] | None = None) -> int:
    """Run benchmark ``name`` with command-line arguments ``argv`` (e.g. ["--quick",
    "--json", "out.json"]); returns its exit status.

    Raises:
        ValueError: an unknown name, or a clone-only benchmark without a clone.
    """
    return int(_load(name).main(list(argv or [])) or 0)
