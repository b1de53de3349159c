from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libcpp.vector cimport vector

from pygzlaw._status cimport Status

cdef extern from "sampler/sample_docs.h" namespace "pgz" nogil:
    cdef struct Segment:
        int32_t token
        int32_t length
        int32_t nt
        int16_t depth
        int16_t last

    cdef struct AliasEntry:
        uint64_t threshold
        int32_t keep
        int32_t other

    cdef struct StreamEntry:
        int32_t token
        int32_t length
        int32_t n_complete
        int32_t n_terminals
        int32_t partial
        int32_t sentences

    cdef struct StreamColumn:
        uint64_t threshold
        StreamEntry entry[2]
        uint64_t pad

    cdef struct BlockGrammar:
        int32_t n_nonterminals
        int32_t start
        const int64_t* table_ranges
        const AliasEntry* alias
        const Segment* segments
        const int32_t* height
        const int32_t* tokens_i32
        const uint16_t* tokens_u16
        int64_t n_stream
        const StreamColumn* stream_columns
        const int32_t* stream_sentence_lengths
        int32_t stream_separator
        int32_t stream_max_depth
        int64_t stream_max_sentence

    cdef struct SamplerGuards:
        int32_t max_depth
        int64_t max_sentence_tokens
        int64_t max_consecutive_rejections

    cdef struct SampleCounts:
        int64_t n_sentences
        int64_t n_rejected_depth
        int64_t n_rejected_length
        int64_t n_tokens_sampled

    Status sample_docs_i32(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                           int64_t first_doc, int64_t n_docs, int64_t doc_tokens,
                           int32_t separator, int n_threads, int32_t* out, SampleCounts* counts)
    Status sample_docs_u16(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                           int64_t first_doc, int64_t n_docs, int64_t doc_tokens,
                           int32_t separator, int n_threads, uint16_t* out, SampleCounts* counts)
    Status sample_sentences(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                            int64_t first_sentence, int64_t n_sentences, int n_threads,
                            vector[int32_t]* tokens, vector[int64_t]* lengths,
                            SampleCounts* counts)
