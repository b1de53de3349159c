# Declarations of csrc/score/deflate_batch.h (nothing but cdef extern, all nogil).
from libc.stdint cimport int64_t, uint8_t
from libcpp cimport bool as cbool

from pygzlaw._status cimport Status

cdef extern from "score/deflate_batch.h" namespace "pgz" nogil:
    cdef struct DeflateParams:
        int level
        int window_bits
        int mem_level
        int strategy

    cdef struct TokenFormat:
        int width_bytes
        cbool big_endian
        cbool is_signed

    Status deflate_sizes(const uint8_t* data, const int64_t* offsets, int64_t n_seqs,
                         DeflateParams params, int n_threads, int64_t* out_bytes) noexcept
    Status token_deflate_sizes(const void* tokens, int dtype, const int64_t* offsets,
                               int64_t n_seqs, TokenFormat format, DeflateParams params,
                               int n_threads, int64_t* out_bytes) noexcept
    cbool serialize_tokens(const void* tokens, int dtype, int64_t n_tokens,
                           TokenFormat format, uint8_t* out) noexcept
