#include "sampler/sample_docs.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>

#include "common/parallel.h"
#include "common/rng.h"

namespace pgz {
namespace {

enum class Outcome { kAccepted, kRejectedDepth, kRejectedLength };

// Resume point of a block whose pending nonterminal is being expanded.
struct Frame {
    const Segment* next;
    int32_t root;  // depth of the block's root nonterminal
};

// Documents per work item: large enough to amortise the atomic hand-out, small
// enough that 2 threads stay balanced on a few hundred documents.
constexpr int64_t kDocsPerChunk = 64;
constexpr int64_t kSentencesPerChunk = 256;
constexpr const char* kAllRejected =
    "every sentence attempt was rejected by the depth/length guards";

// Writes runs into one document. Runs are copied in 32-byte chunks (two
// vector moves) while the chunk stays inside the document, since most runs
// are short and a variable-length memcpy costs more than the copy itself.
template <class T>
struct DocEmit {
    static constexpr int64_t kChunk = 32 / static_cast<int64_t>(sizeof(T));
    static_assert(kChunk <= kTokenPad, "token tables must be padded by one chunk");
    T* dst;
    int64_t room;
    inline void operator()(const T* src, int64_t n, int64_t at) const noexcept {
        T* d = dst + at;
        if (at + n + kChunk <= room) {
            for (int64_t i = 0; i < n; i += kChunk) std::memcpy(d + i, src + i, sizeof(T) * kChunk);
        } else {
            std::memcpy(d, src, sizeof(T) * static_cast<size_t>(n));
        }
    }
};

// Expands sentences top-down, left to right, one block per draw, with an
// explicit stack of resume points. One per worker: the stack (max_depth
// frames) and the per-nonterminal fast-table depth limits are set up once.
class Expander {
  public:
    Expander(const BlockGrammar& g, const SamplerGuards& guards)
        : g_(g), guards_(guards), stack_(static_cast<size_t>(guards.max_depth) + 1),
          fast_limit_(static_cast<size_t>(g.n_nonterminals)) {
        for (int32_t nt = 0; nt < g.n_nonterminals; ++nt)
            fast_limit_[static_cast<size_t>(nt)] = guards.max_depth - g.height[nt];
    }

    // Where a sentence's walk stands: the segment to do next, the first free
    // frame of the stack of resume points, the depth of the current block's root.
    struct Walk {
        const Segment* seg;
        Frame* top;
        int32_t root;
    };
    enum class Step { kContinue, kDone, kTooDeep };

    // After segment s's run: expand its pending nonterminal (one draw), or
    // resume the block below, or end the sentence.
    inline Step advance(const Segment& s, Walk& w, SplitMix64& rng) const noexcept {
        if (s.nt >= 0) {
            const int32_t d = w.root + s.depth;
            if (d > guards_.max_depth) return Step::kTooDeep;
            if (!s.last) *w.top++ = Frame{w.seg + 1, w.root};  // a tail call leaves nothing
            w.seg = choose_block(s.nt, d, rng);
            w.root = d;
            return Step::kContinue;
        }
        if (w.top == stack_.data()) return Step::kDone;
        --w.top;
        w.seg = w.top->next;
        w.root = w.top->root;
        return Step::kContinue;
    }

    // First segment of one block of nonterminal nt at depth d: from the fast
    // table when every nonterminal it expands inside stays within max_depth,
    // else from the plain one. Alias draw: one 64-bit draw r, column
    // j = (r * m) >> 64, kept when the low 64 bits of r * m are below its
    // threshold. One-block tables draw nothing.
    inline const Segment* choose_block(int32_t nt, int32_t d, SplitMix64& rng) const noexcept {
        const int64_t* off =
            g_.table_ranges +
            2 * (d <= fast_limit_[static_cast<size_t>(nt)] ? nt : g_.n_nonterminals + nt);
        const int64_t lo = off[0];
        const uint64_t m = static_cast<uint64_t>(off[1] - lo);
        if (m == 1) return g_.segments + g_.alias[lo].keep;
        const unsigned __int128 x = static_cast<unsigned __int128>(rng.next()) * m;
        const AliasEntry& a = g_.alias[lo + static_cast<int64_t>(x >> 64)];
        // Branch-free select: the coin is random, a branch would mispredict often.
        const int32_t take_keep = -static_cast<int32_t>(static_cast<uint64_t>(x) < a.threshold);
        return g_.segments + (a.other ^ ((a.keep ^ a.other) & take_keep));
    }

    // One entry of the document stream's table.
    inline const StreamEntry& choose_entry(SplitMix64& rng) const noexcept {
        const uint64_t m = static_cast<uint64_t>(g_.n_stream);
        if (m == 1) return g_.stream_columns[0].entry[0];
        const unsigned __int128 x = static_cast<unsigned __int128>(rng.next()) * m;
        const StreamColumn& c = g_.stream_columns[static_cast<int64_t>(x >> 64)];
        return c.entry[static_cast<uint64_t>(x) >= c.threshold];  // branch-free select
    }

    // Samples one sentence, calling emit(src, n, offset_in_sentence) for its
    // runs within the first `room` tokens. Past `room` the rest is only
    // counted: the sentence is still finished so the guards judge all of it,
    // as in rule-by-rule sampling. A sentence that would nest deeper than
    // max_depth or grow past max_sentence_tokens is abandoned at that point
    // (the caller discards what was emitted). *n_tokens gets its length (up to
    // the rejection point).
    template <class T, class Emit>
    inline Outcome sentence(SplitMix64& rng, const T* tokens, int64_t room, int64_t* n_tokens,
                            Emit&& emit) noexcept {
        return sentence_from(choose_block(g_.start, 1, rng), rng, tokens, room, n_tokens, emit);
    }

    // The same, for a sentence whose first block (of the start symbol, at
    // depth 1) is already chosen: it begins at segment `seg`.
    template <class T, class Emit>
    inline Outcome sentence_from(const Segment* seg, SplitMix64& rng, const T* tokens,
                                 int64_t room, int64_t* n_tokens, Emit&& emit) noexcept {
        const int64_t max_len = guards_.max_sentence_tokens;
        const int64_t stop = room < max_len ? room : max_len;
        Walk w{seg, stack_.data(), 1};
        int64_t len = 0;
        // Phase 1: emit.
        for (;;) {
            const Segment s = *w.seg;
            if (len + s.length > stop) {
                if (stop == max_len) {
                    *n_tokens = max_len;
                    return Outcome::kRejectedLength;
                }
                emit(tokens + s.token, room - len, len);  // the document is full:
                break;                                    // phase 2 counts this segment
            }
            emit(tokens + s.token, static_cast<int64_t>(s.length), len);
            len += s.length;
            const Step step = advance(s, w, rng);
            if (step != Step::kContinue) {
                *n_tokens = len;
                return step == Step::kDone ? Outcome::kAccepted : Outcome::kRejectedDepth;
            }
        }
        // Phase 2: count, same walk without writing.
        for (;;) {
            const Segment s = *w.seg;
            len += s.length;
            if (len > max_len) {
                *n_tokens = max_len;
                return Outcome::kRejectedLength;
            }
            const Step step = advance(s, w, rng);
            if (step != Step::kContinue) {
                *n_tokens = len;
                return step == Step::kDone ? Outcome::kAccepted : Outcome::kRejectedDepth;
            }
        }
    }

  private:
    const BlockGrammar& g_;
    SamplerGuards guards_;
    std::vector<Frame> stack_;
    std::vector<int32_t> fast_limit_;  // use nt's fast table at depths <= this
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

void add_counts(SampleCounts* total, const SampleCounts& part) {
    total->n_sentences += part.n_sentences;
    total->n_rejected_depth += part.n_rejected_depth;
    total->n_rejected_length += part.n_rejected_length;
    total->n_tokens_sampled += part.n_tokens_sampled;
}

// One expander and one set of counters per worker, made once per call (not
// per chunk: 64 documents take only ~20 us on small grammars).
struct WorkerState {
    const BlockGrammar& g;
    const SamplerGuards& guards;
    std::vector<std::unique_ptr<Expander>> expanders;
    std::vector<SampleCounts> counts;
    WorkerState(const BlockGrammar& g_, const SamplerGuards& guards_, int n_threads)
        : g(g_), guards(guards_), expanders(static_cast<size_t>(resolve_threads(n_threads))),
          counts(expanders.size()) {}
    Expander& expander(int worker) {
        auto& slot = expanders[static_cast<size_t>(worker)];
        if (!slot) slot.reset(new Expander(g, guards));
        return *slot;
    }
    void add_to(SampleCounts* total) const {
        for (const SampleCounts& c : counts) add_counts(total, c);
    }
};

Status check_args(const BlockGrammar& g, const SamplerGuards& guards) {
    if (g.n_nonterminals <= 0 || g.start < 0 || g.start >= g.n_nonterminals)
        return Status{kInvalidArgument, -1, "compiled grammar has no valid start nonterminal"};
    if (guards.max_depth > std::numeric_limits<int32_t>::max() - 64)
        return Status{kInvalidArgument, -1, "max_depth is too large"};
    if (guards.max_depth < 1) return Status{kInvalidArgument, -1, "max_depth must be >= 1"};
    if (guards.max_sentence_tokens < 1)
        return Status{kInvalidArgument, -1, "max_sentence_tokens must be >= 1"};
    return Status{};
}

template <class T>
const T* tokens_of(const BlockGrammar& g) noexcept;
template <>
const int32_t* tokens_of<int32_t>(const BlockGrammar& g) noexcept { return g.tokens_i32; }
template <>
const uint16_t* tokens_of<uint16_t>(const BlockGrammar& g) noexcept { return g.tokens_u16; }

// Per-document state shared by the two ways of filling a document.
template <class T>
struct DocWriter {
    T* doc;
    int64_t doc_tokens;
    T separator;
    SampleCounts* counts;
    int64_t pos = 0;
    int64_t rejected_in_a_row = 0;

    // Outcome of one sentence attempt that began at pos and has `len` tokens.
    inline void finish(Outcome o, int64_t len) noexcept {
        counts->n_tokens_sampled += len;
        if (o == Outcome::kAccepted) {
            rejected_in_a_row = 0;
            ++counts->n_sentences;
            pos += len;
            if (pos < doc_tokens) doc[pos++] = separator;
        } else {
            ++rejected_in_a_row;  // rewrite from pos: the discarded tokens are overwritten
            if (o == Outcome::kRejectedDepth) ++counts->n_rejected_depth;
            else ++counts->n_rejected_length;
        }
    }
};

// Sentence by sentence from the start symbol's table. Returns false when
// max_consecutive_rejections attempts in a row were rejected.
template <class T>
bool fill_by_sentence(Expander& ex, SplitMix64& rng, const T* tokens, DocWriter<T>& w,
                      int64_t max_rejections) noexcept {
    while (w.pos < w.doc_tokens) {
        const int64_t room = w.doc_tokens - w.pos;
        int64_t len = 0;
        const Outcome o = ex.sentence(rng, tokens, room, &len, DocEmit<T>{w.doc + w.pos, room});
        w.finish(o, len);
        if (w.rejected_in_a_row >= max_rejections) return false;
    }
    return true;
}

// From the document stream's table: one draw gives an entry's complete
// sentences (copied as one run, separators included) and possibly the start
// of one more, finished by the expander. Used only when the entries' complete
// sentences pass the guards (checked once per call), so only partial
// sentences can be rejected; a rejection discards the rest of the entry and
// the stream goes on with a fresh draw, which is how the stream D -> S sep D
// continues after a discarded sentence.
template <class T>
bool fill_by_stream(const BlockGrammar& g, Expander& ex, SplitMix64& rng, const T* tokens,
                    DocWriter<T>& w, int64_t max_rejections) noexcept {
    constexpr int64_t kChunk = DocEmit<T>::kChunk;
    while (w.pos < w.doc_tokens) {
        const StreamEntry& e = ex.choose_entry(rng);
        const T* src = tokens + e.token;
        if (w.pos + e.length + kChunk <= w.doc_tokens) {  // all of it fits: one chunked copy
            DocEmit<T>{w.doc + w.pos, w.doc_tokens - w.pos}(src, e.length, 0);
            w.pos += e.length;
            w.counts->n_sentences += e.n_complete;
            w.counts->n_tokens_sampled += e.n_terminals;
            if (e.n_complete > 0) w.rejected_in_a_row = 0;
        } else {  // near the end: sentence by sentence, the last one cut
            const int32_t* lens = g.stream_sentence_lengths + e.sentences;
            for (int32_t k = 0; k < e.n_complete && w.pos < w.doc_tokens; ++k) {
                const int64_t len = lens[k];
                ++w.counts->n_sentences;
                w.counts->n_tokens_sampled += len;
                w.rejected_in_a_row = 0;
                const int64_t n = std::min(len + 1, w.doc_tokens - w.pos);  // with its separator
                std::memcpy(w.doc + w.pos, src, sizeof(T) * static_cast<size_t>(n));
                w.pos += n;
                src += len + 1;
            }
        }
        if (e.partial >= 0 && w.pos < w.doc_tokens) {
            const int64_t room = w.doc_tokens - w.pos;
            int64_t len = 0;
            const Outcome o = ex.sentence_from(g.segments + e.partial, rng, tokens, room, &len,
                                               DocEmit<T>{w.doc + w.pos, room});
            w.finish(o, len);
            if (w.rejected_in_a_row >= max_rejections) return false;
        }
    }
    return true;
}

template <class T>
Status sample_docs_impl(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                        int n_threads, T* out, SampleCounts* counts) noexcept {
    Status st = check_args(g, guards);
    if (st.code != 0) return st;
    if (doc_tokens < 1) return Status{kInvalidArgument, -1, "doc_tokens must be >= 1"};
    const T* const tokens = tokens_of<T>(g);
    const bool use_stream = g.n_stream > 0 && separator == g.stream_separator &&
                            guards.max_depth >= g.stream_max_depth &&
                            guards.max_sentence_tokens >= g.stream_max_sentence;
    FirstError first_error;
    try {
        WorkerState state(g, guards, n_threads);
        run_items(n_docs, n_threads, kDocsPerChunk, [&](int64_t begin, int64_t end, int worker) {
            Expander& ex = state.expander(worker);
            SampleCounts local;
            for (int64_t i = begin; i < end; ++i) {
                SplitMix64 rng(stream_state(seed, static_cast<uint64_t>(first_doc + i)));
                DocWriter<T> w{out + i * doc_tokens, doc_tokens, static_cast<T>(separator), &local};
                const bool ok =
                    use_stream
                        ? fill_by_stream(g, ex, rng, tokens, w, guards.max_consecutive_rejections)
                        : fill_by_sentence(ex, rng, tokens, w, guards.max_consecutive_rejections);
                if (!ok) {
                    first_error.offer(Status{kInvalidArgument, first_doc + i,
                                             kAllRejected});
                    return;
                }
            }
            add_counts(&state.counts[static_cast<size_t>(worker)], local);
        });
        state.add_to(counts);
    } catch (const std::bad_alloc&) {
        return Status{kOutOfMemory, -1, "out of memory allocating sampler stacks"};
    } catch (...) {
        return Status{kBackendError, -1, "failed to start sampler threads"};
    }
    return first_error.status;
}

}  // namespace

Status sample_docs_i32(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, int32_t* out, SampleCounts* counts) noexcept {
    return sample_docs_impl<int32_t>(g, guards, seed, first_doc, n_docs, doc_tokens, separator,
                                     n_threads, out, counts);
}

Status sample_docs_u16(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                       int64_t first_doc, int64_t n_docs, int64_t doc_tokens, int32_t separator,
                       int n_threads, uint16_t* out, SampleCounts* counts) noexcept {
    return sample_docs_impl<uint16_t>(g, guards, seed, first_doc, n_docs, doc_tokens, separator,
                                      n_threads, out, counts);
}

Status sample_sentences(const BlockGrammar& g, const SamplerGuards& guards, uint64_t seed,
                        int64_t first_sentence, int64_t n_sentences, int n_threads,
                        std::vector<int32_t>* tokens, std::vector<int64_t>* lengths,
                        SampleCounts* counts) noexcept {
    Status st = check_args(g, guards);
    if (st.code != 0) return st;
    FirstError first_error;
    try {
        const int64_t n_chunks = (n_sentences + kSentencesPerChunk - 1) / kSentencesPerChunk;
        std::vector<std::vector<int32_t>> chunk_tokens(static_cast<size_t>(n_chunks));
        lengths->assign(static_cast<size_t>(n_sentences), 0);
        WorkerState state(g, guards, n_threads);
        run_items(n_sentences, n_threads, kSentencesPerChunk, [&](int64_t begin, int64_t end, int worker) {
            Expander& ex = state.expander(worker);
            SampleCounts local;
            std::vector<int32_t>& buf = chunk_tokens[static_cast<size_t>(begin / kSentencesPerChunk)];
            for (int64_t i = begin; i < end; ++i) {
                SplitMix64 rng(stream_state(seed, static_cast<uint64_t>(first_sentence + i)));
                const size_t mark = buf.size();
                int64_t rejected_in_a_row = 0;
                for (;;) {
                    int64_t len = 0;
                    const Outcome o = ex.sentence(
                        rng, g.tokens_i32, std::numeric_limits<int64_t>::max(), &len,
                        [&buf](const int32_t* src, int64_t n, int64_t) {
                            buf.insert(buf.end(), src, src + n);
                        });
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
                                                 kAllRejected});
                        return;
                    }
                }
            }
            add_counts(&state.counts[static_cast<size_t>(worker)], local);
        });
        state.add_to(counts);
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
