#include "sampler/sample_docs.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <new>

#include "common/parallel.h"
#include "common/rng.h"

namespace pgz {
namespace {

enum class Outcome { kAccepted, kRejectedDepth, kRejectedLength };

struct Frame {
    const int32_t* next;  // next symbol of this rule's right-hand side
    const int32_t* end;
};

// Documents per work item: large enough to amortise the atomic hand-out, small
// enough that 2 threads stay balanced on a few hundred documents.
constexpr int64_t kDocsPerChunk = 64;
constexpr int64_t kSentencesPerChunk = 256;

// Expands sentences top-down, left to right, with an explicit stack. One per
// worker: the stack (max_depth frames) is allocated once per call.
class Expander {
  public:
    Expander(const CompiledGrammar& g, const SamplerGuards& guards)
        : g_(g), guards_(guards), stack_(static_cast<size_t>(guards.max_depth)) {}

    // One rule of nonterminal nt by its alias table: one 64-bit draw, the high
    // 32 bits pick a column (Lemire's multiply-shift), the low 32 bits decide
    // between the column and its alias. Single-rule nonterminals draw nothing.
    inline int64_t choose_rule(int32_t nt, SplitMix64& rng) const noexcept {
        const int64_t lo = g_.rule_offsets[nt];
        const uint64_t n = static_cast<uint64_t>(g_.rule_offsets[nt + 1] - lo);
        if (n == 1) return lo;
        const uint64_t r = rng.next();
        uint64_t j = ((r >> 32) * n) >> 32;
        if (static_cast<uint32_t>(r) >= g_.alias_threshold[lo + j])
            j = static_cast<uint64_t>(g_.alias_other[lo + j]);
        return lo + static_cast<int64_t>(j);
    }

    // Samples one sentence from the start symbol, depth first, left to right,
    // calling emit(token, offset_in_sentence) for its first `room` terminals.
    // Past `room` the rest is only counted: the sentence is still finished so
    // the guards judge all of it, as in the reference, but runs of terminals
    // are jumped over with the skip table. A sentence that would nest deeper
    // than max_depth or grow past max_sentence_tokens is abandoned at that
    // point (the caller discards what was emitted); draws happen only at
    // nonterminals, so the draws consumed are exactly the reference's.
    // *n_tokens gets the sentence length (up to the rejection point).
    template <class Emit>
    inline Outcome sentence(SplitMix64& rng, int64_t room, int64_t* n_tokens,
                            Emit&& emit) noexcept {
        Frame* const base = stack_.data();
        Frame* const limit = base + guards_.max_depth;  // frame index i has depth i + 1
        const int64_t max_len = guards_.max_sentence_tokens;
        const int32_t* const rhs = g_.rhs_symbols;
        const int64_t* const rhs_off = g_.rhs_offsets;
        int64_t len = 0;
        Frame* top = base;
        int64_t r = choose_rule(g_.start, rng);
        *top = Frame{rhs + rhs_off[r], rhs + rhs_off[r + 1]};
        // Phase 1: emit, one symbol at a time (fastest for the short runs of
        // terminals random grammars have; a run-copying variant measured slower).
        // The top frame lives in registers (p, e); frames below hold resume points.
        const int32_t* p = top->next;
        const int32_t* e = top->end;
        const int64_t stop = room < max_len ? room : max_len;
        for (;;) {
            if (p == e) {
                if (top == base) {
                    *n_tokens = len;
                    return Outcome::kAccepted;
                }
                --top;
                p = top->next;
                e = top->end;
                continue;
            }
            const int32_t s = *p;
            if (s >= 0) {
                if (len == stop) {
                    // One more terminal follows: past max_len it is rejected here
                    // (phase 2 would reject at the same point); else the document
                    // is full and the rest is only counted.
                    if (len == max_len) {
                        *n_tokens = len;
                        return Outcome::kRejectedLength;
                    }
                    top->next = p;
                    top->end = e;
                    break;
                }
                emit(s, len);
                ++len;
                ++p;
            } else {
                if (top + 1 >= limit) {
                    *n_tokens = len;
                    return Outcome::kRejectedDepth;
                }
                top->next = p + 1;
                r = choose_rule(-s - 1, rng);
                ++top;
                p = rhs + rhs_off[r];
                e = rhs + rhs_off[r + 1];
                top->end = e;
            }
        }
        // Phase 2: count. Jump to the next nonterminal (or the rule's end),
        // adding the terminals passed over.
        const int64_t* const skip = g_.skip;
        for (;;) {
            const int32_t* p = top->next;
            if (p == top->end) {
                if (top == base) break;
                --top;
                continue;
            }
            const int32_t* nt = rhs + skip[p - rhs];
            len += nt - p;
            if (len > max_len) {
                *n_tokens = max_len;
                return Outcome::kRejectedLength;
            }
            if (nt == top->end) {
                top->next = nt;
                continue;
            }
            if (top + 1 >= limit) {
                *n_tokens = len;
                return Outcome::kRejectedDepth;
            }
            top->next = nt + 1;
            r = choose_rule(-*nt - 1, rng);
            ++top;
            *top = Frame{rhs + rhs_off[r], rhs + rhs_off[r + 1]};
        }
        *n_tokens = len;
        return Outcome::kAccepted;
    }

  private:
    const CompiledGrammar& g_;
    SamplerGuards guards_;
    std::vector<Frame> stack_;
};

// Keeps the error with the lowest item index, so the reported error does not
// depend on thread timing.
struct FirstError {
    std::mutex mu;
    Status status;
    void offer(const Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        if (status.code == 0 || s.item < status.item) status = s;
    }
};

void add_counts(SampleCounts* total, const SampleCounts& part, std::mutex& mu) {
    std::lock_guard<std::mutex> lock(mu);
    total->n_sentences += part.n_sentences;
    total->n_rejected_depth += part.n_rejected_depth;
    total->n_rejected_length += part.n_rejected_length;
    total->n_tokens_sampled += part.n_tokens_sampled;
}

Status check_args(const CompiledGrammar& g, const SamplerGuards& guards) {
    if (g.n_nonterminals <= 0 || g.start < 0 || g.start >= g.n_nonterminals)
        return Status{kInvalidArgument, -1, "compiled grammar has no valid start nonterminal"};
    if (guards.max_depth < 1) return Status{kInvalidArgument, -1, "max_depth must be >= 1"};
    if (guards.max_sentence_tokens < 1)
        return Status{kInvalidArgument, -1, "max_sentence_tokens must be >= 1"};
    return Status{};
}

template <class T>
Status sample_docs_impl(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                        int n_threads, T* out, SampleCounts* counts) noexcept {
    Status st = check_args(g, guards);
    if (st.code != 0) return st;
    if (doc_tokens < 1) return Status{kInvalidArgument, -1, "doc_tokens must be >= 1"};
    FirstError first_error;
    std::mutex counts_mu;
    try {
        run_items(n_docs, n_threads, kDocsPerChunk, [&](int64_t begin, int64_t end, int) {
            Expander ex(g, guards);
            SampleCounts local;
            for (int64_t i = begin; i < end; ++i) {
                T* const doc = out + i * doc_tokens;
                SplitMix64 rng(stream_state(seed, static_cast<uint64_t>(first_doc + i)));
                int64_t pos = 0;
                int64_t rejected_in_a_row = 0;
                while (pos < doc_tokens) {
                    T* const dst = doc + pos;
                    int64_t len = 0;
                    const Outcome o = ex.sentence(rng, doc_tokens - pos, &len,
                                                  [dst](int32_t s, int64_t i) {
                                                      dst[i] = static_cast<T>(s);
                                                  });
                    local.n_tokens_sampled += len;
                    if (o != Outcome::kAccepted) {
                        if (o == Outcome::kRejectedDepth) ++local.n_rejected_depth;
                        else ++local.n_rejected_length;
                        if (++rejected_in_a_row >= guards.max_consecutive_rejections) {
                            first_error.offer(Status{kInvalidArgument, first_doc + i,
                                                     "every sentence attempt was rejected by the "
                                                     "depth/length guards"});
                            return;
                        }
                        continue;  // rewrite from pos: the discarded tokens are overwritten
                    }
                    rejected_in_a_row = 0;
                    ++local.n_sentences;
                    pos += len;
                    if (pos < doc_tokens) doc[pos++] = static_cast<T>(separator);
                }
            }
            add_counts(counts, local, counts_mu);
        });
    } catch (const std::bad_alloc&) {
        return Status{kOutOfMemory, -1, "out of memory allocating sampler stacks"};
    } catch (...) {
        return Status{kBackendError, -1, "failed to start sampler threads"};
    }
    return first_error.status;
}

}  // namespace

Status sample_docs_i32(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, int32_t* out, SampleCounts* counts) noexcept {
    return sample_docs_impl<int32_t>(g, guards, seed, first_doc, n_docs, doc_tokens, separator,
                                     n_threads, out, counts);
}

Status sample_docs_u16(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, uint16_t* out, SampleCounts* counts) noexcept {
    return sample_docs_impl<uint16_t>(g, guards, seed, first_doc, n_docs, doc_tokens, separator,
                                      n_threads, out, counts);
}

Status sample_sentences(const CompiledGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_sentence, int64_t n_sentences, int n_threads,
                        std::vector<int32_t>* tokens, std::vector<int64_t>* lengths,
                        SampleCounts* counts) noexcept {
    Status st = check_args(g, guards);
    if (st.code != 0) return st;
    FirstError first_error;
    std::mutex counts_mu;
    try {
        const int64_t n_chunks = (n_sentences + kSentencesPerChunk - 1) / kSentencesPerChunk;
        std::vector<std::vector<int32_t>> chunk_tokens(static_cast<size_t>(n_chunks));
        lengths->assign(static_cast<size_t>(n_sentences), 0);
        run_items(n_sentences, n_threads, kSentencesPerChunk, [&](int64_t begin, int64_t end, int) {
            Expander ex(g, guards);
            SampleCounts local;
            std::vector<int32_t>& buf = chunk_tokens[static_cast<size_t>(begin / kSentencesPerChunk)];
            for (int64_t i = begin; i < end; ++i) {
                SplitMix64 rng(stream_state(seed, static_cast<uint64_t>(first_sentence + i)));
                const size_t mark = buf.size();
                int64_t rejected_in_a_row = 0;
                for (;;) {
                    int64_t len = 0;
                    const Outcome o = ex.sentence(rng, std::numeric_limits<int64_t>::max(), &len,
                                                  [&buf](int32_t s, int64_t) { buf.push_back(s); });
                    local.n_tokens_sampled += len;
                    if (o == Outcome::kAccepted) {
                        (*lengths)[static_cast<size_t>(i)] = len;
                        ++local.n_sentences;
                        break;
                    }
                    if (o == Outcome::kRejectedDepth) ++local.n_rejected_depth;
                    else ++local.n_rejected_length;
                    buf.resize(mark);
                    if (++rejected_in_a_row >= guards.max_consecutive_rejections) {
                        first_error.offer(Status{kInvalidArgument, first_sentence + i,
                                                 "every sentence attempt was rejected by the "
                                                 "depth/length guards"});
                        return;
                    }
                }
            }
            add_counts(counts, local, counts_mu);
        });
        if (first_error.status.code != 0) return first_error.status;
        size_t total = 0;
        for (const auto& c : chunk_tokens) total += c.size();
        tokens->clear();
        tokens->reserve(total);
        for (const auto& c : chunk_tokens) tokens->insert(tokens->end(), c.begin(), c.end());
    } catch (const std::bad_alloc&) {
        return Status{kOutOfMemory, -1, "out of memory storing sampled sentences"};
    } catch (...) {
        return Status{kBackendError, -1, "failed to start sampler threads"};
    }
    return Status{};
}

}  // namespace pgz
