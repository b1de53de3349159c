"""How a gzip ratio was computed: the zlib in use, its parameters, the serialization.

Every output that carries a gzip ratio (the generate manifest's H, scan summaries)
records ``gzip_provenance(...)``, so numbers computed differently are never mixed:
``pygzlaw scan-merge`` compares ``COMPARED_FIELDS`` and refuses a mismatch, naming
the field.

The zlib is the one the native scorer calls (it links the system ``libz``, the
library Python's ``zlib`` module loads): its ``zlibVersion()`` is read through the
scorer's extension module, and Python's ``zlib.ZLIB_RUNTIME_VERSION`` is kept beside
it. zlib-ng in compatibility mode (shipped as ``libz`` by some distributions)
reports a version ending in ``.zlib-ng`` there, which gives the flavour.
"""
from __future__ import annotations

import ctypes
import functools
import zlib

__all__ = ["gzip_provenance", "zlib_library", "zlib_flavour", "compare_provenance", "COMPARED_FIELDS"]

# Fields that change the compressed sizes; pygzlaw_version and python_zlib_version are
# recorded but do not block a merge (the scorer's own zlib and parameters decide).
COMPARED_FIELDS = ("zlib_flavour", "zlib_version", "scorer", "level", "window_bits",
                   "mem_level", "strategy", "serialization", "token_bytes", "byteorder")


@functools.lru_cache(maxsize=1)
def zlib_library() -> tuple[str, str]:
    """(flavour, version) of the zlib the native scorer uses: ("zlib", "1.2.13") or
    ("zlib-ng", "1.3.1.zlib-ng"). Falls back to Python's ZLIB_RUNTIME_VERSION when the
    extension cannot be asked (not built)."""
    version = getattr(zlib, "ZLIB_RUNTIME_VERSION", zlib.ZLIB_VERSION)
    try:
        from pygzlaw.score import _native

        fn = ctypes.CDLL(_native.__file__).zlibVersion
        fn.restype = ctypes.c_char_p
        version = fn().decode("ascii", "replace")
    except (ImportError, OSError, AttributeError):  # pragma: no cover - depends on the build
        pass
    return zlib_flavour(version), version


def zlib_flavour(version: str) -> str:
    """"zlib-ng" for zlib-ng's compat builds (their version reads e.g. "1.3.1.zlib-ng"),
    else "zlib"."""
    return "zlib-ng" if "zlib-ng" in version.lower() else "zlib"


def gzip_provenance(*, level: int = 9, scorer: str = "exact", serialization: str = "tokens",
                    token_bytes: int | None = 4, byteorder: str | None = "big") -> dict:
    """Provenance record of gzip ratios computed with these settings.

    Args:
        level: zlib compression level (9 = the paper's definition, Pandey 2024 Sec. 3).
        scorer: "exact" (zlib with gzip.GzipFile's parameters) or "fast".
        serialization: "tokens" (ids as ``token_bytes``-byte signed ints, ``byteorder``)
            or "utf-8" (raw text bytes; token_bytes and byteorder are then None).
        token_bytes, byteorder: token serialization (the paper: 4, "big").

    Returns:
        a JSON-able dict: zlib_flavour, zlib_version, python_zlib_version, scorer, level,
        window_bits (15), mem_level (8), strategy ("default"), container ("gzip"),
        serialization, token_bytes, byteorder, pygzlaw_version.
    """
    from pygzlaw import __version__

    flavour, version = zlib_library()
    if serialization == "utf-8":
        token_bytes = byteorder = None
    return {
        "zlib_flavour": flavour, "zlib_version": version,
        "python_zlib_version": getattr(zlib, "ZLIB_RUNTIME_VERSION", zlib.ZLIB_VERSION),
        "scorer": scorer, "level": int(level), "window_bits": 15, "mem_level": 8,
        "strategy": "default", "container": "gzip", "serialization": serialization,
        "token_bytes": token_bytes, "byteorder": byteorder, "pygzlaw_version": __version__,
    }


def compare_provenance(a: dict | None, b: dict | None, *, a_name: str, b_name: str) -> None:
    """Raise ValueError naming every COMPARED_FIELDS entry where two provenance records
    differ (or that one of them lacks), e.g. ``zlib_version: '1.2.13' in a.json vs
    '1.3.1.zlib-ng' in b.json``."""
    if a is None and b is None:
        return
    if a is None or b is None:
        missing = a_name if a is None else b_name
        raise ValueError(f"{missing} records no gzip provenance (written by an older pygzlaw), "
                         f"so its ratios may have been computed differently (field: provenance); "
                         "rescan it with this pygzlaw")
    diffs = [f"{k}: {a.get(k)!r} in {a_name} vs {b.get(k)!r} in {b_name}"
             for k in COMPARED_FIELDS if a.get(k) != b.get(k)]
    if diffs:
        raise ValueError("gzip ratios were computed differently (" + "; ".join(diffs)
                         + "); only summaries from the same zlib and settings merge: "
                           "rescan one side where the other ran")
