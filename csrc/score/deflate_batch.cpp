// See deflate_batch.h. One DeflateWorker per thread: deflateInit2 allocates ~268 KB
// and costs more than deflating a 1 KB document at level 1, so it runs once per worker
// per call and items only pay deflateReset (which clears the 64 KB hash head).
#include "score/deflate_batch.h"

#include <zlib.h>

#include <climits>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/parallel.h"

namespace pgz {
namespace {

// Items per work chunk: small enough to balance two threads on a few hundred items,
// large enough that the atomic counter is noise (a 1 KB item takes ~10-40 us).
constexpr int64_t kChunkItems = 16;
// Output buffer cap per worker: deflate output is discarded (only its length counts),
// so longer items just loop over this buffer.
constexpr int64_t kMaxOutBufBytes = int64_t{1} << 20;

class DeflateWorker {
  public:
    DeflateWorker() { std::memset(&zs_, 0, sizeof(zs_)); }
    ~DeflateWorker() {
        if (ready_) deflateEnd(&zs_);
    }
    DeflateWorker(const DeflateWorker&) = delete;
    DeflateWorker& operator=(const DeflateWorker&) = delete;

    int init(const DeflateParams& p) noexcept {
        int rc = deflateInit2(&zs_, p.level, Z_DEFLATED, -p.window_bits, p.mem_level,
                              p.strategy);
        if (rc != Z_OK) return rc;
        ready_ = true;
        return Z_OK;
    }

    bool ready() const noexcept { return ready_; }

    // Raw deflate size of p[0:n] in bytes, or -1 on a zlib error.
    int64_t deflated_bytes(const uint8_t* p, int64_t n) noexcept {
        if (deflateReset(&zs_) != Z_OK) return -1;
        if (out_.empty()) {
            try {
                out_.resize(static_cast<size_t>(kMaxOutBufBytes));
            } catch (...) {
                return -1;
            }
        }
        int64_t total = 0;
        int64_t left = n;
        zs_.next_in = const_cast<Bytef*>(p);
        for (;;) {
            // zlib counts input in uInt: feed > 4 GB items in pieces, as Python's
            // zlib module does, and finish with the last piece.
            const uInt piece = left > static_cast<int64_t>(UINT_MAX)
                                   ? UINT_MAX
                                   : static_cast<uInt>(left);
            zs_.avail_in = piece;
            left -= piece;
            const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
            int rc;
            do {
                zs_.next_out = out_.data();
                zs_.avail_out = static_cast<uInt>(out_.size());
                rc = deflate(&zs_, flush);
                if (rc == Z_STREAM_ERROR) return -1;
                total += static_cast<int64_t>(out_.size()) - zs_.avail_out;
            } while (flush == Z_FINISH ? rc != Z_STREAM_END : zs_.avail_out == 0);
            if (flush == Z_FINISH) return total;
        }
    }

    // Per-worker serialization buffer, grown to the largest item seen.
    uint8_t* scratch(int64_t n_bytes) noexcept {
        if (static_cast<int64_t>(scratch_.size()) < n_bytes) {
            try {
                scratch_.resize(static_cast<size_t>(n_bytes));
            } catch (...) {
                return nullptr;
            }
        }
        return scratch_.data();
    }

  private:
    z_stream zs_;
    bool ready_ = false;
    std::vector<uint8_t> out_;
    std::vector<uint8_t> scratch_;
};

// Range of a W-byte serialized value, as int64 (signed) or uint64 bounds.
template <int W, bool SGN>
struct FormatRange {
    static constexpr int kBits = 8 * W;
    static constexpr int64_t kMinSigned =
        SGN ? (W == 8 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (kBits - 1))) : 0;
    static constexpr uint64_t kMaxUnsigned =
        SGN ? (W == 8 ? uint64_t{INT64_MAX} : (uint64_t{1} << (kBits - 1)) - 1)
            : (W == 8 ? UINT64_MAX : (uint64_t{1} << kBits) - 1);
};

template <int W, bool BE>
inline void store_word(uint64_t bits, uint8_t* dst) noexcept {
    if constexpr (W == 1) {
        dst[0] = static_cast<uint8_t>(bits);
    } else if constexpr (W == 2) {
        uint16_t x = static_cast<uint16_t>(bits);
        if constexpr (BE) x = __builtin_bswap16(x);
        std::memcpy(dst, &x, 2);
    } else if constexpr (W == 4) {
        uint32_t x = static_cast<uint32_t>(bits);
        if constexpr (BE) x = __builtin_bswap32(x);
        std::memcpy(dst, &x, 4);
    } else {
        uint64_t x = bits;
        if constexpr (BE) x = __builtin_bswap64(x);
        std::memcpy(dst, &x, 8);
    }
}

// Serialize n tokens; false if any token is outside the format's range. The check is
// accumulated branch-free so the loop stays vectorisable (~0.1 us per 1 KB).
// Assumes a little-endian host for the native layout (x86-64, aarch64).
template <class T, int W, bool BE, bool SGN>
bool serialize_typed(const T* src, int64_t n, uint8_t* dst) noexcept {
    using R = FormatRange<W, SGN>;
    bool bad = false;
    for (int64_t i = 0; i < n; ++i) {
        T v = src[i];
        if constexpr (std::is_signed_v<T>) {
            const int64_t s = static_cast<int64_t>(v);
            if constexpr (sizeof(T) > W || !SGN) {
                constexpr int64_t kHi = R::kMaxUnsigned > uint64_t{INT64_MAX}
                                            ? INT64_MAX
                                            : static_cast<int64_t>(R::kMaxUnsigned);
                bad |= (s < R::kMinSigned) | (s > kHi);
            }
        } else {
            const uint64_t u = static_cast<uint64_t>(v);
            if constexpr (sizeof(T) >= W) bad |= u > R::kMaxUnsigned;
        }
        store_word<W, BE>(static_cast<uint64_t>(static_cast<int64_t>(v)), dst + i * W);
    }
    return !bad;
}

using SerializeFn = bool (*)(const void*, int64_t, uint8_t*);

template <class T, int W, bool BE, bool SGN>
bool serialize_erased(const void* src, int64_t n, uint8_t* dst) noexcept {
    return serialize_typed<T, W, BE, SGN>(static_cast<const T*>(src), n, dst);
}

template <class T, int W>
SerializeFn pick_order(bool be, bool sgn) noexcept {
    if (be) return sgn ? &serialize_erased<T, W, true, true> : &serialize_erased<T, W, true, false>;
    return sgn ? &serialize_erased<T, W, false, true> : &serialize_erased<T, W, false, false>;
}

template <class T>
SerializeFn pick_width(const TokenFormat& f) noexcept {
    switch (f.width_bytes) {
        case 1: return pick_order<T, 1>(f.big_endian, f.is_signed);
        case 2: return pick_order<T, 2>(f.big_endian, f.is_signed);
        case 4: return pick_order<T, 4>(f.big_endian, f.is_signed);
        case 8: return pick_order<T, 8>(f.big_endian, f.is_signed);
        default: return nullptr;
    }
}

SerializeFn pick_serializer(int dtype, const TokenFormat& f) noexcept {
    switch (dtype) {
        case kInt8: return pick_width<int8_t>(f);
        case kUInt8: return pick_width<uint8_t>(f);
        case kInt16: return pick_width<int16_t>(f);
        case kUInt16: return pick_width<uint16_t>(f);
        case kInt32: return pick_width<int32_t>(f);
        case kUInt32: return pick_width<uint32_t>(f);
        case kInt64: return pick_width<int64_t>(f);
        case kUInt64: return pick_width<uint64_t>(f);
        default: return nullptr;
    }
}

int dtype_bytes(int dtype) noexcept { return 1 << (dtype / 2); }

Status check_params(const DeflateParams& p) noexcept {
    Status st;
    if (p.level < 0 || p.level > 9) return {kInvalidArgument, -1, "level must be in 0..9"};
    if (p.window_bits < 9 || p.window_bits > 15)
        return {kInvalidArgument, -1, "window_bits must be in 9..15"};
    if (p.mem_level < 1 || p.mem_level > 9)
        return {kInvalidArgument, -1, "mem_level must be in 1..9"};
    if (p.strategy < 0 || p.strategy > 4)
        return {kInvalidArgument, -1, "strategy must be in 0..4"};
    return st;
}

// Shared driver: `item_bytes(i, worker, &ptr, &len)` yields item i's bytes.
template <class ItemBytes>
Status run_batch(int64_t n_seqs, const DeflateParams& params, int n_threads,
                 int64_t* out_bytes, ItemBytes&& item_bytes) noexcept {
    Status st = check_params(params);
    if (st.code != kOk || n_seqs <= 0) return st;
    const int n_workers = resolve_threads(n_threads);
    std::unique_ptr<DeflateWorker[]> workers;
    try {
        workers.reset(new DeflateWorker[static_cast<size_t>(n_workers)]);
    } catch (...) {
        return {kOutOfMemory, -1, "out of memory allocating deflate workers"};
    }
    // Each worker records its first failure; the smallest failing item wins, so the
    // reported item does not depend on scheduling.
    std::vector<Status> errors(static_cast<size_t>(n_workers));
    try {
        run_items(n_seqs, n_workers, kChunkItems, [&](int64_t begin, int64_t end, int w) {
            DeflateWorker& dw = workers[w];
            Status& err = errors[static_cast<size_t>(w)];
            if (!dw.ready()) {
                int rc = dw.init(params);
                if (rc != Z_OK) {
                    if (err.code == kOk)
                        err = {rc == Z_MEM_ERROR ? kOutOfMemory : kBackendError, begin,
                               "deflateInit2 failed"};
                    return;
                }
            }
            for (int64_t i = begin; i < end; ++i) {
                const uint8_t* p = nullptr;
                int64_t n = 0;
                Status s = item_bytes(i, dw, &p, &n);
                if (s.code != kOk) {
                    if (err.code == kOk || i < err.item) err = s;
                    out_bytes[i] = -1;
                    continue;
                }
                const int64_t d = dw.deflated_bytes(p, n);
                if (d < 0) {
                    if (err.code == kOk || i < err.item)
                        err = {kBackendError, i, "zlib deflate failed"};
                    out_bytes[i] = -1;
                    continue;
                }
                out_bytes[i] = d + kGzipOverheadBytes;
            }
        });
    } catch (...) {
        return {kOutOfMemory, -1, "could not start worker threads"};
    }
    for (const Status& e : errors) {
        if (e.code != kOk && (st.code == kOk || e.item < st.item)) st = e;
    }
    return st;
}

}  // namespace

bool serialize_tokens(const void* tokens, int dtype, int64_t n_tokens, TokenFormat format,
                      uint8_t* out) noexcept {
    SerializeFn fn = pick_serializer(dtype, format);
    if (fn == nullptr) return false;
    return fn(tokens, n_tokens, out);
}

Status deflate_sizes(const uint8_t* data, const int64_t* offsets, int64_t n_seqs,
                     DeflateParams params, int n_threads, int64_t* out_bytes) noexcept {
    return run_batch(n_seqs, params, n_threads, out_bytes,
                     [&](int64_t i, DeflateWorker&, const uint8_t** p, int64_t* n) -> Status {
                         const int64_t b = offsets[i], e = offsets[i + 1];
                         if (b < 0 || e < b)
                             return {kInvalidArgument, i, "offsets are not non-decreasing"};
                         *p = data + b;
                         *n = e - b;
                         return {};
                     });
}

Status token_deflate_sizes(const void* tokens, int dtype, const int64_t* offsets,
                           int64_t n_seqs, TokenFormat format, DeflateParams params,
                           int n_threads, int64_t* out_bytes) noexcept {
    SerializeFn fn = pick_serializer(dtype, format);
    if (fn == nullptr) return {kInvalidArgument, -1, "unsupported token dtype or width"};
    const int64_t in_bytes = dtype_bytes(dtype);
    const int64_t width = format.width_bytes;
    const uint8_t* base = static_cast<const uint8_t*>(tokens);
    return run_batch(
        n_seqs, params, n_threads, out_bytes,
        [&](int64_t i, DeflateWorker& dw, const uint8_t** p, int64_t* n) -> Status {
            const int64_t b = offsets[i], e = offsets[i + 1];
            if (b < 0 || e < b) return {kInvalidArgument, i, "offsets are not non-decreasing"};
            const int64_t n_tok = e - b;
            uint8_t* buf = dw.scratch(n_tok * width);
            if (buf == nullptr && n_tok > 0)
                return {kOutOfMemory, i, "out of memory for the serialization buffer"};
            if (!fn(base + b * in_bytes, n_tok, buf))
                return {kInvalidArgument, i, "token id does not fit the serialization format"};
            *p = buf;
            *n = n_tok * width;
            return {};
        });
}

}  // namespace pgz
