# cython: language_level=3
"""Thin binding of csrc/score/deflate_batch.h: buffers in, one nogil call, status out.

All validation a caller can do before the call lives in pygzlaw/score/__init__.py;
these functions only check what the C++ alone can see.
"""
from libc.stdint cimport int64_t, uint8_t

from pygzlaw.score._native cimport (
    DeflateParams, Status, TokenFormat, deflate_sizes, serialize_tokens,
    token_deflate_sizes,
)


class NativeScoreError(ValueError):
    """A native call failed; ``item`` is the failing sequence index (-1 = none)."""

    def __init__(self, message, code, item):
        super().__init__(message)
        self.code = code
        self.item = item


cdef DeflateParams _params(int level, int window_bits, int mem_level, int strategy):
    cdef DeflateParams p
    p.level = level
    p.window_bits = window_bits
    p.mem_level = mem_level
    p.strategy = strategy
    return p


cdef TokenFormat _format(int width_bytes, bint big_endian, bint is_signed):
    cdef TokenFormat f
    f.width_bytes = width_bytes
    f.big_endian = big_endian
    f.is_signed = is_signed
    return f


cdef _raise(Status st):
    what = st.what.decode()
    if st.code == 2:
        raise MemoryError(f"seqs[{st.item}]: {what}")
    if st.item >= 0:
        raise NativeScoreError(f"seqs[{st.item}]: {what}", st.code, st.item)
    raise NativeScoreError(what, st.code, st.item)


def deflate_sizes_into(const uint8_t[::1] data, const int64_t[::1] offsets,
                       int level, int window_bits, int mem_level, int strategy,
                       int n_threads, int64_t[::1] out_bytes):
    """Gzip member size of data[offsets[i]:offsets[i+1]] into out_bytes[i]."""
    cdef Status st
    cdef const uint8_t* p = &data[0] if data.shape[0] > 0 else NULL
    cdef DeflateParams prm = _params(level, window_bits, mem_level, strategy)
    if offsets.shape[0] != out_bytes.shape[0] + 1:
        raise ValueError("offsets must have len(out_bytes) + 1 entries")
    if out_bytes.shape[0] == 0:
        return
    with nogil:
        st = deflate_sizes(p, &offsets[0], out_bytes.shape[0], prm, n_threads, &out_bytes[0])
    if st.code != 0:
        _raise(st)


def token_deflate_sizes_into(const uint8_t[::1] token_bytes, int dtype_code,
                             const int64_t[::1] offsets, int width_bytes, bint big_endian,
                             bint is_signed, int level, int window_bits, int mem_level,
                             int strategy, int n_threads, int64_t[::1] out_bytes):
    """As deflate_sizes_into for token ids (token_bytes: the raw elements of dtype_code)."""
    cdef Status st
    cdef const uint8_t* p = &token_bytes[0] if token_bytes.shape[0] > 0 else NULL
    cdef DeflateParams prm = _params(level, window_bits, mem_level, strategy)
    cdef TokenFormat fmt = _format(width_bytes, big_endian, is_signed)
    if offsets.shape[0] != out_bytes.shape[0] + 1:
        raise ValueError("offsets must have len(out_bytes) + 1 entries")
    if out_bytes.shape[0] == 0:
        return
    with nogil:
        st = token_deflate_sizes(<const void*>p, dtype_code, &offsets[0], out_bytes.shape[0],
                                 fmt, prm, n_threads, &out_bytes[0])
    if st.code != 0:
        _raise(st)


def serialize_tokens_into(const uint8_t[::1] token_bytes, int dtype_code, int64_t n_tokens,
                          int width_bytes, bint big_endian, bint is_signed,
                          uint8_t[::1] out):
    """Serialize n_tokens tokens into out; returns False if one does not fit the format."""
    cdef bint ok
    cdef TokenFormat fmt = _format(width_bytes, big_endian, is_signed)
    if n_tokens == 0:
        return True
    if out.shape[0] < n_tokens * width_bytes:
        raise ValueError("out is too small")
    with nogil:
        ok = serialize_tokens(<const void*>&token_bytes[0], dtype_code, n_tokens, fmt, &out[0])
    return ok
