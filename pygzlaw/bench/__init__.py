"""Benchmarks users run on their own machine: ``pygzlaw bench NAME [--quick] [--json PATH]``.

Each benchmark is a module with ``main(argv) -> int`` that runs its baseline and pygzlaw in
one process, prints the ratios and writes the JSON document of ``_harness.write_json``.
The scripts in a clone's ``bench/`` are thin callers of these modules (one code path).

``BENCHES`` maps a name to its module. A module is imported only when its benchmark runs, so
``pygzlaw bench --help`` imports neither torch nor the benchmarks; ``trainer`` and ``kernels``
need torch, and say how to install it when it is missing.
"""
from __future__ import annotations

import importlib

# One BLAS thread for every benchmark, set before any benchmark module imports numpy.
from pygzlaw.bench import _harness  # noqa: F401

__all__ = ["BENCHES", "NEEDS_TORCH", "run", "available"]

BENCHES = {
    "sampler": "pygzlaw.bench.sampler",   # native sampler vs pcfg; shard write speed per format
    "scorer": "pygzlaw.bench.scorer",     # exact scorer vs gzip.GzipFile; scan throughput
    "fit": "pygzlaw.bench.fit",           # batched Chinchilla fit vs a scipy loop
    "serve": "pygzlaw.bench.serve",       # the law service under load
    "trainer": "pygzlaw.bench.trainer",   # tokens/s of the trainer vs a plain loop; GPU: MFU
    "kernels": "pygzlaw.bench.kernels",   # fused kernels vs eager torch / torch.compile
}
NEEDS_TORCH = frozenset({"trainer", "kernels"})


def available() -> dict[str, str]:
    """{name: module} of every benchmark ``run`` can start."""
    return dict(BENCHES)


def _load(name: str):
    if name not in BENCHES:
        raise ValueError(f"benchmark {name!r} is unknown; choose one of {', '.join(BENCHES)}")
    try:
        return importlib.import_module(BENCHES[name])
    except ModuleNotFoundError as exc:
        if name in NEEDS_TORCH and exc.name and exc.name.split(".")[0] == "torch":
            raise ValueError(f"benchmark {name!r} needs torch, which is not installed; install "
                             "it with: pip install 'pygzlaw[cpu]' (CPU build) or a CUDA "
                             "build of torch") from exc
        raise


def run(name: str, argv: list[str] | None = None) -> int:
    """Run benchmark ``name`` with command-line arguments ``argv`` (e.g. ["--quick",
    "--json", "out.json"]); returns its exit status.

    Raises:
        ValueError: an unknown name, or ``trainer``/``kernels`` without torch installed.
    """
    return int(_load(name).main(list(argv or [])) or 0)
