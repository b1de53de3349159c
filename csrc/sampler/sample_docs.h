// Native PCFG sampler: fixed-length packed documents and unpacked sentences.
//
// The grammar arrives compiled (pygzlaw/sampler/compile.py): per-nonterminal
// alias tables for O(1) rule choice and right-hand sides whose symbols are
// already token ids (>= 0) or nonterminals (-nt - 1), plus a skip table that
// jumps over runs of terminals once a document is full. Nothing here allocates
// per token or touches Python.
#pragma once
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace pgz {

struct CompiledGrammar {
    int32_t n_nonterminals;
    int32_t start;                    // nonterminal each sentence starts from
    const int64_t* rule_offsets;      // (n_nonterminals + 1): rules of nt i
    const uint32_t* alias_threshold;  // (n_rules): keep local rule j if low 32 bits < threshold
    const int32_t* alias_other;       // (n_rules): local rule index taken otherwise
    const int64_t* rhs_offsets;       // (n_rules + 1)
    const int32_t* rhs_symbols;       // token id (>= 0) or -(nt + 1)
    // skip[i]: index of the first nonterminal at or after symbol i in its rule,
    // or the rule's end. Lets the cut sentence be finished without touching its
    // terminals (only their count matters once the document is full).
    const int64_t* skip;
};

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
Status sample_docs_i32(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, int32_t* out, SampleCounts* counts) noexcept;
Status sample_docs_u16(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, uint16_t* out, SampleCounts* counts) noexcept;

// Unpacked sentences first_sentence .. first_sentence + n_sentences - 1, each from
// its own stream (seed, index). Appends tokens and per-sentence lengths.
Status sample_sentences(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_sentence, int64_t n_sentences, int n_threads,
                        std::vector<int32_t>* tokens, std::vector<int64_t>* lengths,
                        SampleCounts* counts) noexcept;

}  // namespace pgz
