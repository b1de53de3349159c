"""Opt-in fast mode: approximate gzip sizes for first-pass scans. Never the default.

Backends (numbers from ``bench/bench_scorer.py --quick`` on the project's 2-core
machine; per-core ratios from process CPU time):

* ``"isal"`` (default fast backend): ISA-L level 0 through the ``isal`` package,
  raw deflate + 18 bytes. 14.6x exact throughput per core on paper-style token
  documents, 5.8x on 1 KB text windows. ISA-L levels 1 and 2 are *not* used: they
  gave different sizes for the same input in different processes (platform notes;
  re-measured here: 3718599 vs 3718605 total bytes over the same 8000 documents),
  while level 0 gave identical sizes in every process tried (tested). Each item is
  one Python call, which holds the GIL between items, so ``threads`` is ignored
  (2 Python threads measured 0.82x of one).
* ``"zlib1"``: the native exact-mode machinery at zlib level 1: deterministic, GIL
  released, scales with ``threads``, but only ~2.7x exact per core.

What fast mode is good for (measured, same bench):

* ranking documents of *different* sources: Spearman 0.992 (isal) against exact over
  paper-style documents from the six main PCFG presets mixed; the six dataset medians
  are ranked identically (Spearman 1.0);
* *not* ranking documents within one homogeneous source: Spearman 0.24-0.92 within a
  single preset and 0.76 over English-like text windows (zlib1: 0.79). The spread of
  exact ratios inside one source is small compared with the approximation's noise.
* scale: ISA-L level 0 is biased high (ratio +0.25 on paper-style tokens, +0.17 on
  text). :class:`FastCalibration` (linear, fitted on a sample scored both ways) brings
  dataset medians to within ~0.03 of exact (mean absolute per-document error 0.018).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "ISAL_LEVEL", "FastCalibration",
           "fast_bytes_sizes", "fast_token_sizes", "calibrate"]

BACKENDS = ("isal", "zlib1")
DEFAULT_BACKEND = "isal"
# ISA-L level 0: deterministic across processes (levels 1-2 are not, see above).
ISAL_LEVEL = 0
# Token bytes per fast-mode serialization chunk: bounds the intermediate buffer.
_CHUNK_BYTES = 8 << 20
_GZIP_OVERHEAD = 18


def _backend(backend: str | None) -> str:
    b = DEFAULT_BACKEND if backend is None else backend
    if b not in BACKENDS:
        raise ValueError(f"fast_backend={backend!r} is unknown; use one of {BACKENDS}")
    return b


def _isal_sizes(buf: np.ndarray, off: np.ndarray, out: np.ndarray) -> None:
    from isal import isal_zlib

    compress = isal_zlib.compress
    mv = memoryview(buf)
    lvl = ISAL_LEVEL
    sizes = [len(compress(mv[b:e], lvl, -15))
             for b, e in zip(off[:-1].tolist(), off[1:].tolist())]
    out[:] = np.asarray(sizes, dtype=np.int64) + _GZIP_OVERHEAD


def fast_bytes_sizes(buf: np.ndarray, off: np.ndarray, *, threads: int = 1,
                     backend: str | None = None) -> np.ndarray:
    """Approximate gzip member sizes (bytes) of buf[off[i]:off[i+1]]; int64 (n_seqs,)."""
    b = _backend(backend)
    n_seqs = off.shape[0] - 1
    out = np.empty(n_seqs, dtype=np.int64)
    if n_seqs == 0:
        return out
    if b == "isal":
        _isal_sizes(buf, off, out)
    else:
        from pygzlaw.score import _native
        _native.deflate_sizes_into(buf, off, 1, 15, 8, 0, threads, out)
    return out


def fast_token_sizes(values: np.ndarray, off: np.ndarray, *, token_bytes: int = 4,
                     byteorder: str = "big", signed: bool = True, threads: int = 1,
                     backend: str | None = None) -> np.ndarray:
    """Approximate gzip member sizes of token sequences; int64 (n_seqs,).

    ``values``/``off`` as returned by :func:`pygzlaw.score.token_offsets`. The
    isal backend serializes at most ~8 MB of tokens at a time.
    """
    from pygzlaw.score import _DTYPE_CODES, _format_error

    b = _backend(backend)
    n_seqs = off.shape[0] - 1
    out = np.empty(n_seqs, dtype=np.int64)
    if n_seqs == 0:
        return out
    if b == "zlib1":
        from pygzlaw.score import _native
        try:
            _native.token_deflate_sizes_into(values.view(np.uint8).reshape(-1),
                                             _DTYPE_CODES[values.dtype], off, token_bytes,
                                             byteorder == "big", bool(signed), 1, 15, 8, 0,
                                             threads, out)
        except _native.NativeScoreError as exc:
            if exc.item >= 0 and "does not fit" in str(exc):
                raise _format_error(values, off, exc.item, token_bytes, signed) from None
            raise
        return out
    from pygzlaw.score import serialize_tokens

    i = 0
    while i < n_seqs:
        # Take sequences until ~_CHUNK_BYTES of serialized tokens (at least one).
        limit = off[i] + max(1, _CHUNK_BYTES // token_bytes)
        j = int(np.searchsorted(off, limit, side="right")) - 1
        j = min(max(j, i + 1), n_seqs)
        data, boff = serialize_tokens(values, off[i:j + 1], token_bytes=token_bytes,
                                      byteorder=byteorder, signed=signed)
        try:
            _isal_sizes(np.frombuffer(data, dtype=np.uint8), boff, out[i:j])
        except ValueError as exc:  # pragma: no cover - serialize_tokens names the item
            raise ValueError(f"seqs[{i}..{j}]: {exc}") from None
        i = j
    return out


@dataclass(frozen=True)
class FastCalibration:
    """Linear map from fast-mode ratios to the exact scale, fitted on a sample.

    Attributes:
        slope, intercept: exact_ratio ~= slope * fast_ratio + intercept.
        residual_std: sample std of (exact - calibrated) on the fit sample (unitless ratio).
        spearman: rank correlation between fast and exact ratios on the sample.
        n_sample: sequences in the sample.
        backend: fast backend the calibration belongs to.
    """

    slope: float
    intercept: float
    residual_std: float
    spearman: float
    n_sample: int
    backend: str

    @classmethod
    def fit(cls, fast_ratio, exact_ratio, backend: str | None = None) -> "FastCalibration":
        """Least-squares fit on paired ratios of shape (n_sample,), n_sample >= 3."""
        from scipy.stats import spearmanr

        f = np.asarray(fast_ratio, dtype=np.float64)
        e = np.asarray(exact_ratio, dtype=np.float64)
        if f.shape != e.shape or f.ndim != 1:
            raise ValueError(f"fast_ratio {f.shape} and exact_ratio {e.shape} must be 1-D, same shape")
        ok = np.isfinite(f) & np.isfinite(e)
        f, e = f[ok], e[ok]
        if f.shape[0] < 3:
            raise ValueError(f"calibration needs >= 3 finite pairs, got {f.shape[0]}")
        if np.ptp(f) == 0:
            raise ValueError("fast ratios are all equal; the sample cannot fix a slope")
        slope, intercept = np.polyfit(f, e, 1)
        resid = e - (slope * f + intercept)
        rho = float(spearmanr(f, e)[0])
        return cls(float(slope), float(intercept), float(np.std(resid, ddof=1)), rho,
                   int(f.shape[0]), _backend(backend))

    def apply(self, fast_ratio) -> np.ndarray:
        """Calibrated ratios, float64 of the input's shape."""
        return self.slope * np.asarray(fast_ratio, dtype=np.float64) + self.intercept

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(tokens, offsets=None, *, backend: str | None = None, threads: int = 1,
              **format_kw) -> FastCalibration:
    """Score a token sample both ways and fit a :class:`FastCalibration`.

    Args:
        tokens, offsets: a sample, as in :func:`pygzlaw.score.score_tokens` (a few
            thousand sequences spanning the corpus is plenty).
        backend: fast backend to calibrate.
        threads: threads for the exact pass.
        **format_kw: token_bytes, byteorder, signed.
    """
    from pygzlaw.score import score_tokens

    exact = score_tokens(tokens, offsets, threads=threads, **format_kw).ratio
    fast = score_tokens(tokens, offsets, mode="fast", fast_backend=backend, threads=threads,
                        **format_kw).ratio
    return FastCalibration.fit(fast, exact, backend)
