# distutils: language = c++
"""Thin binding over csrc/sampler: validate nothing (the Python API does), call
one C++ function without the GIL, turn its Status into an exception."""
import numpy as np

from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

from pygzlaw.sampler._native cimport (
    AliasEntry, BlockGrammar, SampleCounts, SamplerGuards, Segment, Status, StreamColumn,
    sample_docs_i32, sample_docs_u16, sample_sentences,
)


cdef class NativeGrammar:
    """Owns the block tables (pygzlaw.sampler.blocks.BlockTables) and the C
    struct that points into them."""
    cdef BlockGrammar g
    cdef object _keep  # the numpy arrays the pointers refer to

    def __init__(self, b, const int32_t[::1] tokens_i32, const uint16_t[::1] tokens_u16):
        # structured arrays laid out like the C structs
        if (b.alias.dtype.itemsize != sizeof(AliasEntry)
                or b.segments.dtype.itemsize != sizeof(Segment)
                or b.stream_columns.dtype.itemsize != sizeof(StreamColumn)):
            raise ValueError("block tables do not match the native struct layout")
        cdef const int64_t[:, ::1] table_ranges = b.table_ranges
        cdef const int32_t[::1] height = b.height
        cdef const int32_t[::1] sentence_lengths = b.stream_sentence_lengths
        cdef const unsigned char[::1] alias = b.alias.view(np.uint8)
        cdef const unsigned char[::1] segments = b.segments.view(np.uint8)
        cdef const unsigned char[::1] stream_columns = b.stream_columns.view(np.uint8)
        self._keep = (b, tokens_i32, tokens_u16)
        self.g.n_nonterminals = <int32_t>height.shape[0]
        self.g.start = b.start
        self.g.table_ranges = &table_ranges[0, 0]
        self.g.alias = <const AliasEntry*>&alias[0]
        self.g.segments = <const Segment*>&segments[0]
        self.g.height = &height[0]
        self.g.tokens_i32 = &tokens_i32[0]
        self.g.tokens_u16 = &tokens_u16[0]
        self.g.n_stream = b.stream_entries.shape[0]
        self.g.stream_columns = <const StreamColumn*>&stream_columns[0]
        self.g.stream_sentence_lengths = &sentence_lengths[0]
        self.g.stream_separator = b.stream_separator
        self.g.stream_max_depth = b.stream_max_depth
        self.g.stream_max_sentence = b.stream_max_sentence


cdef SamplerGuards _guards(int32_t max_depth, int64_t max_sentence_tokens,
                           int64_t max_consecutive_rejections):
    cdef SamplerGuards gd
    gd.max_depth = max_depth
    gd.max_sentence_tokens = max_sentence_tokens
    gd.max_consecutive_rejections = max_consecutive_rejections
    return gd


cdef dict _counts_dict(SampleCounts c):
    return {"n_sentences": c.n_sentences, "n_rejected_depth": c.n_rejected_depth,
            "n_rejected_length": c.n_rejected_length, "n_tokens_sampled": c.n_tokens_sampled}


cdef _raise(Status st, str what):
    msg = st.what.decode()
    if st.item >= 0:
        raise RuntimeError(f"{what} {st.item}: {msg}")
    raise ValueError(msg)


def sample_docs_into(NativeGrammar grammar, uint64_t seed, int64_t first_doc, out,
                     int32_t separator, int n_threads, int32_t max_depth,
                     int64_t max_sentence_tokens, int64_t max_consecutive_rejections):
    """Fill the C-contiguous (n_docs, doc_tokens) int32 or uint16 array `out`."""
    cdef int32_t[:, ::1] out_i32
    cdef uint16_t[:, ::1] out_u16
    cdef SampleCounts counts
    cdef Status st
    cdef SamplerGuards gd = _guards(max_depth, max_sentence_tokens, max_consecutive_rejections)
    cdef int64_t n_docs = out.shape[0], doc_tokens = out.shape[1]
    if n_docs == 0:
        return _counts_dict(counts)
    if out.dtype == np.int32:
        out_i32 = out
        with nogil:
            st = sample_docs_i32(grammar.g, gd, seed, first_doc, n_docs, doc_tokens, separator,
                                 n_threads, &out_i32[0, 0], &counts)
    else:
        out_u16 = out
        with nogil:
            st = sample_docs_u16(grammar.g, gd, seed, first_doc, n_docs, doc_tokens, separator,
                                 n_threads, &out_u16[0, 0], &counts)
    if st.code != 0:
        _raise(st, "document")
    return _counts_dict(counts)


def sample_sentences_native(NativeGrammar grammar, uint64_t seed, int64_t first_sentence,
                            int64_t n_sentences, int n_threads, int32_t max_depth,
                            int64_t max_sentence_tokens, int64_t max_consecutive_rejections):
    """Returns (tokens int32 (n_total,), offsets int64 (n_sentences + 1,), counts dict)."""
    cdef vector[int32_t] toks
    cdef vector[int64_t] lens
    cdef SampleCounts counts
    cdef Status st
    cdef SamplerGuards gd = _guards(max_depth, max_sentence_tokens, max_consecutive_rejections)
    with nogil:
        st = sample_sentences(grammar.g, gd, seed, first_sentence, n_sentences, n_threads,
                              &toks, &lens, &counts)
    if st.code != 0:
        _raise(st, "sentence")
    tokens = np.empty(toks.size(), dtype=np.int32)
    cdef int32_t[::1] tv = tokens
    if toks.size():
        memcpy(&tv[0], toks.data(), toks.size() * sizeof(int32_t))
    lengths = np.empty(lens.size(), dtype=np.int64)
    cdef int64_t[::1] lv = lengths
    if lens.size():
        memcpy(&lv[0], lens.data(), lens.size() * sizeof(int64_t))
    offsets = np.zeros(n_sentences + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return tokens, offsets, _counts_dict(counts)
