"""Batched gzip compressibility: exact (the paper's definition) and an opt-in fast mode.

The gzip compressibility of a sequence is ``gzip member bytes / raw bytes``
(Pandey 2024, section 3). Token ids are serialized as 4-byte big-endian signed
integers by default, so a 256-token document is 1024 raw bytes.

Exact mode (the default) runs the system zlib with gzip.GzipFile's parameters
(raw deflate, level 9, window 15, memLevel 8, default strategy) in native threads,
one reused stream per thread, and returns sizes identical byte for byte to
``gzip.GzipFile(compresslevel=9)``. Fast mode (``mode="fast"``) is for first-pass
scans only: see :mod:`pygzlaw.score.fast` for its measured bias and rank correlation.

Main entry points: :func:`score_tokens`, :func:`score_bytes` (return :class:`Scores`),
:func:`gzip_ratio_batch` (bytes in, ratios out) and :func:`serialize_tokens`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "Scores",
    "score_tokens",
    "score_bytes",
    "gzip_ratio_batch",
    "serialize_tokens",
    "token_offsets",
    "GZIP_OVERHEAD_BYTES",
    "EMPTY_GZIP_BYTES",
]

# gzip member = 10-byte header + raw deflate + 8-byte trailer.
GZIP_OVERHEAD_BYTES = 18
# Size of gzip.GzipFile's output for b"": the 18 bytes plus the 2-byte empty final block.
EMPTY_GZIP_BYTES = 20

_MODES = ("exact", "fast")
_EMPTY_POLICIES = ("error", "nan")
_TOKEN_WIDTHS = (1, 2, 4, 8)
# numpy dtype -> pgz::TokenDType code (csrc/score/deflate_batch.h).
_DTYPE_CODES = {
    np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int16): 2, np.dtype(np.uint16): 3,
    np.dtype(np.int32): 4, np.dtype(np.uint32): 5, np.dtype(np.int64): 6, np.dtype(np.uint64): 7,
}
# zlib parameters of gzip.GzipFile: level, window bits, memLevel, strategy.
_EXACT_WINDOW_BITS = 15
_EXACT_MEM_LEVEL = 8
_EXACT_STRATEGY = 0


def _load_native():
    try:
        import importlib
        return importlib.import_module("pygzlaw.score._native")
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError(
            "pygzlaw's native extension is not built (pygzlaw/score/_native*.so missing); "
            "reinstall with a C++17 compiler and zlib headers "
            "(pip install -e . or python setup.py build_ext --inplace)") from exc


@dataclass(frozen=True)
class Scores:
    """Per-sequence compression results; all arrays have shape (n_seqs,).

    Attributes:
        compressed_bytes: int64, gzip member size in bytes (header + deflate + trailer).
        raw_bytes: int64, serialized input size in bytes.
        ratio: float64, compressed_bytes / raw_bytes (unitless; NaN for empty
            sequences when ``empty="nan"``). Lower = more compressible.
        mode: "exact" or "fast".
    """

    compressed_bytes: np.ndarray
    raw_bytes: np.ndarray
    ratio: np.ndarray
    mode: str = "exact"

    def __len__(self) -> int:
        return int(self.ratio.shape[0])


def _check_common(level: int, threads: int, mode: str, empty: str) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level <= 9:
        raise ValueError(f"level={level!r} is out of range; zlib levels are 0..9")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads={threads!r} must be an int (1 = serial, -1 = all cores)")
    if threads == 0 or threads < -1:
        raise ValueError(f"threads={threads} is invalid; use 1 (serial), n > 1, or -1 (all cores)")
    if mode not in _MODES:
        raise ValueError(f"mode={mode!r} is unknown; use one of {_MODES}")
    if empty not in _EMPTY_POLICIES:
        raise ValueError(f"empty={empty!r} is unknown; use one of {_EMPTY_POLICIES}")
    return int(threads) if threads > 0 else (os.cpu_count() or 1)


def _check_offsets(offsets, n_items: int, what: str) -> np.ndarray:
    """Validate offsets (n_seqs + 1,) into an array of n_items elements."""
    off = np.asarray(offsets)
    if off.ndim != 1 or off.shape[0] < 1:
        raise ValueError(f"offsets must be 1-D with n_seqs + 1 >= 1 entries, got shape {off.shape}")
    if off.dtype.kind not in "iu":
        raise TypeError(f"offsets must be integers, got dtype {off.dtype}")
    off = np.ascontiguousarray(off, dtype=np.int64)
    if off[0] < 0:
        raise ValueError(f"offsets[0]={off[0]} must be >= 0")
    if off[-1] > n_items:
        raise ValueError(f"offsets[-1]={off[-1]} exceeds the {n_items} {what} available")
    steps = np.diff(off)
    if steps.size and steps.min() < 0:
        i = int(np.argmax(steps < 0))
        raise ValueError(f"offsets must be non-decreasing: offsets[{i + 1}]={off[i + 1]} < "
                         f"offsets[{i}]={off[i]}")
    return off


def token_offsets(tokens, offsets=None):
    """Normalise token input to (flat native-endian values, offsets in tokens).

    Args:
        tokens: integer array of shape (n_seqs, seq_tokens); or 1-D values with
            ``offsets`` (ragged); or a sequence of 1-D integer arrays/lists.
        offsets: int array of shape (n_seqs + 1,) into the 1-D values, in tokens.

    Returns:
        (values, offsets): values a contiguous 1-D native-endian integer array,
        offsets int64 of shape (n_seqs + 1,).
    """
    if isinstance(tokens, np.ndarray):
        arr = tokens
    elif isinstance(tokens, (list, tuple)) and offsets is None and (
            len(tokens) == 0 or not np.isscalar(tokens[0])):
        parts = [np.asarray(t) for t in tokens]
        for i, p in enumerate(parts):
            if p.ndim != 1:
                raise ValueError(f"tokens[{i}] has shape {p.shape}; each sequence must be 1-D")
            if p.size and p.dtype.kind not in "iu":
                raise TypeError(f"tokens[{i}] has dtype {p.dtype}; token ids must be integers")
        lens = np.fromiter((p.shape[0] for p in parts), dtype=np.int64, count=len(parts))
        off = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lens, out=off[1:])
        nonempty = [p for p in parts if p.size]
        dtype = np.result_type(*[p.dtype for p in nonempty]) if nonempty else np.dtype(np.int32)
        if dtype.kind not in "iu":  # mixed uint64/int64 -> float64 in numpy
            raise TypeError("tokens mix uint64 with signed ids; pass one integer dtype")
        values = np.concatenate(nonempty).astype(dtype, copy=False) if nonempty \
            else np.zeros(0, dtype=dtype)
        return _native_int(values, "tokens"), off
    else:
        arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"tokens have dtype {arr.dtype}; token ids must be integers")
    if offsets is None:
        if arr.ndim != 2:
            raise ValueError(f"tokens have shape {arr.shape}; pass a 2-D (n_seqs, seq_tokens) "
                             "array, or 1-D values with offsets, or a list of 1-D arrays")
        n_seqs, seq_tokens = arr.shape
        values = _native_int(arr.reshape(-1), "tokens")
        return values, np.arange(n_seqs + 1, dtype=np.int64) * seq_tokens
    if arr.ndim != 1:
        raise ValueError(f"tokens have shape {arr.shape}; with offsets the values must be 1-D")
    values = _native_int(arr, "tokens")
    return values, _check_offsets(offsets, values.shape[0], "tokens")


def _native_int(a: np.ndarray, name: str) -> np.ndarray:
    dt = a.dtype.newbyteorder("=")
    if dt not in _DTYPE_CODES:
        raise TypeError(f"{name} have dtype {a.dtype}; use an integer dtype of 1, 2, 4 or 8 bytes")
    return np.ascontiguousarray(a, dtype=dt)


def _check_format(token_bytes: int, byteorder: str) -> None:
    if token_bytes not in _TOKEN_WIDTHS:
        raise ValueError(f"token_bytes={token_bytes!r} is unsupported; use one of {_TOKEN_WIDTHS}")
    if byteorder not in ("big", "little"):
        raise ValueError(f"byteorder={byteorder!r} is unknown; use 'big' or 'little'")


def _token_range(token_bytes: int, signed: bool) -> tuple[int, int]:
    """(lo, hi): the ids that ``token_bytes`` bytes hold, signed two's complement or unsigned."""
    bits = 8 * token_bytes
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _format_error(values: np.ndarray, off: np.ndarray, item: int, token_bytes: int,
                  signed: bool) -> ValueError:
    """Name the first out-of-range token of sequence `item` (runs only on error)."""
    bits = 8 * token_bytes
    lo, hi = _token_range(token_bytes, signed)
    seq = values[off[item]:off[item + 1]]
    bad = [(j, int(v)) for j, v in enumerate(seq.tolist()) if not lo <= int(v) <= hi]
    j, v = bad[0] if bad else (-1, None)
    kind = "signed" if signed else "unsigned"
    fix = "use a wider token_bytes"
    if v is not None and signed and 0 <= v < (1 << bits):
        fix += " or signed=False"
    return ValueError(f"seqs[{item}] token {j} = {v} does not fit {token_bytes}-byte {kind} "
                      f"serialization (range {lo}..{hi}); {fix}")


def serialize_tokens(tokens, offsets=None, *, token_bytes: int = 4, byteorder: str = "big",
                     signed: bool = True) -> tuple[bytes, np.ndarray]:
    """Serialize token ids the way the scorer does (the paper: 4-byte big-endian signed).

    Args:
        tokens, offsets: as in :func:`score_tokens`.
        token_bytes: bytes per token, 1, 2, 4 or 8.
        byteorder: "big" or "little".
        signed: two's complement (True, the paper) or unsigned.

    Returns:
        (data, byte_offsets): the concatenated bytes and int64 offsets of shape
        (n_seqs + 1,) in bytes.

    Raises:
        ValueError: a token does not fit the format; the message names sequence and token.
    """
    _check_format(token_bytes, byteorder)
    values, off = token_offsets(tokens, offsets)
    flat = values[off[0]:off[-1]] if off.shape[0] > 1 else values[:0]
    out = np.empty(flat.shape[0] * token_bytes, dtype=np.uint8)
    ok = _load_native().serialize_tokens_into(flat.view(np.uint8), _DTYPE_CODES[flat.dtype],
                                         flat.shape[0], token_bytes, byteorder == "big",
                                         bool(signed), out)
    if not ok:
        rel = off - off[0]
        for i in range(off.shape[0] - 1):
            seq = flat[rel[i]:rel[i + 1]]
            if seq.size and not _fits(seq, token_bytes, signed):
                raise _format_error(flat, rel, i, token_bytes, signed)
    return out.tobytes(), (off - off[0]) * token_bytes


def _fits(seq: np.ndarray, token_bytes: int, signed: bool) -> bool:
    lo, hi = _token_range(token_bytes, signed)
    return lo <= int(seq.min()) and int(seq.max()) <= hi


def _ratios(sizes: np.ndarray, raw: np.ndarray, empty: str) -> np.ndarray:
    zero = raw == 0
    if zero.any():
        if empty == "error":
            i = int(np.argmax(zero))
            raise ValueError(f"seqs[{i}] has 0 bytes; gzip ratio is undefined for an empty "
                             "sequence (pass empty='nan' to get NaN instead)")
        with np.errstate(divide="ignore", invalid="ignore"):
            r = sizes / raw
        r[zero] = np.nan
        return r
    return sizes / raw


def score_tokens(tokens, offsets=None, *, token_bytes: int = 4, byteorder: str = "big",
                 signed: bool = True, mode: str = "exact", level: int = 9, threads: int = 1,
                 empty: str = "error", fast_backend: str | None = None) -> Scores:
    """Gzip compressibility of token-id sequences (Pandey 2024, section 3).

    Each token is serialized to ``token_bytes`` bytes (default: 4-byte big-endian
    signed, the paper's choice) inside the native workers, so no batch-sized byte
    buffer is built; each sequence is then compressed alone.

    Args:
        tokens: integer array of shape (n_seqs, seq_tokens), any integer dtype; or
            1-D values of shape (n_tokens,) with ``offsets``; or a list of 1-D arrays.
        offsets: int array of shape (n_seqs + 1,), sequence i is
            ``tokens[offsets[i]:offsets[i + 1]]`` (in tokens). Only with 1-D tokens.
        token_bytes: bytes per token: 1, 2, 4 or 8.
        byteorder: "big" (paper) or "little".
        signed: signed two's complement (paper) or unsigned range check.
        mode: "exact" (byte-identical to gzip.GzipFile) or "fast" (approximate, see
            pygzlaw.score.fast).
        level: zlib level 0..9 for exact mode; the paper's definition uses 9.
        threads: worker threads; 1 = serial, -1 = all cores. Results are identical
            for every value.
        empty: what the ratio of an empty sequence is: "error" (raise) or "nan".
            Its compressed size is always 20 bytes (an empty gzip member).
        fast_backend: fast mode backend (default pygzlaw.score.fast.DEFAULT_BACKEND).

    Returns:
        :class:`Scores` with arrays of shape (n_seqs,).

    Raises:
        ValueError: bad parameter, offsets, an out-of-range token (named by sequence
            and position), or an empty sequence with ``empty="error"``.
    """
    n_threads = _check_common(level, threads, mode, empty)
    _check_format(token_bytes, byteorder)
    values, off = token_offsets(tokens, offsets)
    n_seqs = off.shape[0] - 1
    raw = np.diff(off) * token_bytes
    sizes = np.empty(n_seqs, dtype=np.int64)
    if mode == "fast":
        from pygzlaw.score import fast
        sizes = fast.fast_token_sizes(values, off, token_bytes=token_bytes, byteorder=byteorder,
                                      signed=signed, threads=n_threads, backend=fast_backend)
    elif n_seqs:
        nat = _load_native()
        try:
            nat.token_deflate_sizes_into(
                values.view(np.uint8).reshape(-1), _DTYPE_CODES[values.dtype], off, token_bytes,
                byteorder == "big", bool(signed), int(level), _EXACT_WINDOW_BITS,
                _EXACT_MEM_LEVEL, _EXACT_STRATEGY, n_threads, sizes)
        except nat.NativeScoreError as exc:
            if exc.item >= 0 and "does not fit" in str(exc):
                raise _format_error(values, off, exc.item, token_bytes, signed) from None
            raise
    return Scores(sizes, raw, _ratios(sizes, raw, empty), mode)


def _bytes_input(seqs, offsets) -> tuple[np.ndarray, np.ndarray]:
    """Normalise byte input to (uint8 buffer, int64 offsets in bytes)."""
    if offsets is not None:
        if isinstance(seqs, np.ndarray):
            if seqs.dtype != np.uint8 or seqs.ndim != 1:
                raise TypeError(f"with offsets, seqs must be one bytes-like buffer or a 1-D uint8 "
                                f"array, got dtype {seqs.dtype} shape {seqs.shape}")
            buf = np.ascontiguousarray(seqs)
        else:
            buf = np.frombuffer(memoryview(seqs).cast("B"), dtype=np.uint8)
        return buf, _check_offsets(offsets, buf.shape[0], "bytes")
    if isinstance(seqs, np.ndarray):
        if seqs.dtype != np.uint8 or seqs.ndim != 2:
            raise TypeError(f"seqs array must be uint8 of shape (n_seqs, seq_bytes), got dtype "
                            f"{seqs.dtype} shape {seqs.shape}; for token ids use score_tokens")
        n, w = seqs.shape
        return np.ascontiguousarray(seqs).reshape(-1), np.arange(n + 1, dtype=np.int64) * w
    if isinstance(seqs, (bytes, bytearray, memoryview)):
        raise TypeError("one bytes buffer needs offsets=; for a batch pass a list of bytes")
    parts = []
    for i, s in enumerate(seqs):
        if isinstance(s, str):
            raise TypeError(f"seqs[{i}] is str; encode text first (e.g. s.encode('utf-8'))")
        parts.append(memoryview(s).cast("B") if not isinstance(s, bytes) else s)
    lens = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    off = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    buf = np.frombuffer(b"".join(parts), dtype=np.uint8)
    return buf, off


def score_bytes(seqs, offsets=None, *, mode: str = "exact", level: int = 9, threads: int = 1,
                empty: str = "error", fast_backend: str | None = None) -> Scores:
    """Gzip compressibility of raw byte sequences (e.g. UTF-8 text windows).

    Args:
        seqs: a sequence of bytes-like objects of any lengths; or a uint8 array of
            shape (n_seqs, seq_bytes); or one bytes-like buffer / 1-D uint8 array
            with ``offsets``.
        offsets: int array of shape (n_seqs + 1,), in bytes, for the one-buffer form.
        mode, level, threads, empty, fast_backend: as in :func:`score_tokens`.

    Returns:
        :class:`Scores` with arrays of shape (n_seqs,).
    """
    n_threads = _check_common(level, threads, mode, empty)
    buf, off = _bytes_input(seqs, offsets)
    n_seqs = off.shape[0] - 1
    raw = np.diff(off)
    if mode == "fast":
        from pygzlaw.score import fast
        sizes = fast.fast_bytes_sizes(buf, off, threads=n_threads, backend=fast_backend)
    else:
        sizes = np.empty(n_seqs, dtype=np.int64)
        if n_seqs:
            _load_native().deflate_sizes_into(buf, off, int(level), _EXACT_WINDOW_BITS,
                                         _EXACT_MEM_LEVEL, _EXACT_STRATEGY, n_threads, sizes)
    return Scores(sizes, raw, _ratios(sizes, raw, empty), mode)


def gzip_ratio_batch(seqs: Sequence[bytes] | np.ndarray, *, level: int = 9, threads: int = 1,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Gzip compressibility of each byte sequence: compressed bytes / raw bytes.

    Args:
        seqs: uint8 array of shape (n_seqs, seq_bytes), or a sequence of bytes-like
            objects of any lengths (each >= 1 byte).
        level: zlib level, 0..9. The paper's definition uses 9.
        threads: worker threads; 1 = serial, -1 = all cores. Identical results for all.
        out: optional float64 array of shape (n_seqs,) to fill.

    Returns:
        float64 array of shape (n_seqs,), unitless, usually in (0, 1.1].

    Raises:
        ValueError: a sequence is empty or ``level`` is out of range.
    """
    ratio = score_bytes(seqs, level=level, threads=threads).ratio
    if out is None:
        return ratio
    if out.shape != ratio.shape or out.dtype != np.float64:
        raise ValueError(f"out must be float64 of shape {ratio.shape}, got {out.dtype} {out.shape}")
    out[...] = ratio
    return out
