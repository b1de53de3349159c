// Native PCFG sampler: fixed-length packed documents and unpacked sentences.
//
// The grammar arrives unrolled into derivation blocks
// (pygzlaw/sampler/blocks.py): each nonterminal has a "fast" table of blocks
// (several rule choices expanded at once) and a "plain" table (its rules),
// each with an alias table for O(1) choice. A block is a list of segments: a
// run of token ids, then one pending nonterminal (none in the last segment).
// Nothing here allocates per token or touches Python.
#pragma once
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace pgz {

// A run of tokens, then a pending nonterminal (nt = -1: none). Only a block's
// last segment may have nt = -1; a last segment with nt >= 0 is a tail call.
struct Segment {
    int32_t token;   // first token of the run in BlockGrammar::tokens_*
    int32_t length;  // run length (tokens)
    int32_t nt;      // pending nonterminal after the run, or -1
    int16_t depth;   // its depth relative to the block's root nonterminal (>= 1)
    int16_t last;    // 1 in a block's last segment
};

// One alias column, with both candidate blocks resolved to their first segment.
struct AliasEntry {
    uint64_t threshold;  // keep this column's block if the low 64 bits of r * m < threshold
    int32_t keep;        // first segment of the column's own block
    int32_t other;       // first segment of its alias block
};

// One entry of the document stream's table (blocks.STREAM_ENTRY_DTYPE).
struct StreamEntry {
    int32_t token;        // its complete sentences, each followed by the separator
    int32_t length;       // tokens in that run
    int32_t n_complete;   // complete sentences
    int32_t n_terminals;  // length - n_complete
    int32_t partial;      // first segment of the partial sentence, or -1
    int32_t sentences;    // index of its first sentence length in stream_sentence_lengths
};

// One alias column of the stream's table: both candidate entries inline, so a
// draw reads one cache line (blocks.STREAM_COLUMN_DTYPE).
struct StreamColumn {
    uint64_t threshold;     // entry[0] if the low 64 bits of r * m < threshold, else entry[1]
    StreamEntry entry[2];
    uint64_t pad;
};
static_assert(sizeof(StreamColumn) == 64, "one cache line per stream column");

struct BlockGrammar {
    int32_t n_nonterminals;
    int32_t start;                 // nonterminal each sentence starts from
    const int64_t* table_ranges;   // (2 n, 2) [lo, hi): fast table of nt in row nt, plain in n + nt
    const AliasEntry* alias;       // (n_blocks)
    const Segment* segments;
    const int32_t* height;         // (n): deepest relative depth inside nt's fast blocks
    // The runs' token ids in the output dtype, padded by kTokenPad so runs can
    // be copied in fixed-size chunks.
    const int32_t* tokens_i32;
    const uint16_t* tokens_u16;
    // The document stream's table (one draw gives several short sentences).
    int64_t n_stream;                 // entries (0: documents sample sentence by sentence)
    const StreamColumn* stream_columns;
    const int32_t* stream_sentence_lengths;
    int32_t stream_separator;         // separator inside the entries' runs
    int32_t stream_max_depth;         // used only when max_depth >= this
    int64_t stream_max_sentence;      // and max_sentence_tokens >= this
};

constexpr int64_t kTokenPad = 32;  // = blocks.TOKEN_PAD

struct SamplerGuards {
    int32_t max_depth;            // deepest allowed nonterminal nesting (start = depth 1)
    int64_t max_sentence_tokens;  // longest allowed sentence
    int64_t max_consecutive_rejections;  // give up (error) after this many in a row
};

// Counters summed over a call. Integer sums, so independent of n_threads.
struct SampleCounts {
    int64_t n_sentences = 0;        // sentences begun in documents (the cut one included)
    int64_t n_rejected_depth = 0;   // attempts discarded by max_depth
    int64_t n_rejected_length = 0;  // attempts discarded by max_sentence_tokens
    int64_t n_tokens_sampled = 0;   // terminal tokens drawn, written or not (work done)
};

// Fills out[i * doc_tokens : (i + 1) * doc_tokens] with document first_doc + i for
// i in [0, n_docs). Sentences are joined by `separator` and the stream is cut at
// exactly doc_tokens. Document d depends only on (grammar, seed, d).
Status sample_docs_i32(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, int32_t* out, SampleCounts* counts) noexcept;
Status sample_docs_u16(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, uint16_t* out, SampleCounts* counts) noexcept;

// Unpacked sentences first_sentence .. first_sentence + n_sentences - 1, each from
// its own stream (seed, index). Appends tokens and per-sentence lengths.
Status sample_sentences(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_sentence, int64_t n_sentences, int n_threads,
                        std::vector<int32_t>* tokens, std::vector<int64_t>* lengths,
                        SampleCounts* counts) noexcept;

}  // namespace pgz
