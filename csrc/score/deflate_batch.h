// Batched gzip-compressed sizes: one z_stream per worker thread, reset per item.
//
// The exact mode reproduces Python's gzip.GzipFile(compresslevel=9) byte for byte:
// the same system zlib (linked with -lz, the library Python's zlib module loads),
// raw deflate with window 15, memLevel 8, default strategy, plus the gzip member's
// 10-byte header and 8-byte trailer. No Python objects, no exceptions cross this API.
#pragma once
#include <cstdint>

#include "common/status.h"

namespace pgz {

// Bytes a gzip member adds around the raw deflate stream: 10-byte header (no file
// name, no extra fields) + 8-byte trailer (CRC-32, ISIZE).
constexpr int64_t kGzipOverheadBytes = 18;

// zlib parameters of one deflate stream. The defaults are gzip.GzipFile's.
struct DeflateParams {
    int level = 9;        // 0..9
    int window_bits = 15; // 9..15 (raw deflate: passed to zlib negated)
    int mem_level = 8;    // 1..9: hash table 2^(mem_level+7) entries, block buffer 2^(mem_level+6) symbols
    int strategy = 0;     // Z_DEFAULT_STRATEGY=0, FILTERED=1, HUFFMAN_ONLY=2, RLE=3, FIXED=4
};

// How token ids become bytes before compression. The paper: 4 bytes, big-endian, signed.
struct TokenFormat {
    int width_bytes = 4;   // 1, 2, 4 or 8
    bool big_endian = true;
    bool is_signed = true; // range check: signed two's complement vs unsigned
};

// Element type of a token array (numpy dtype kind+itemsize).
enum TokenDType : int {
    kInt8 = 0, kUInt8 = 1, kInt16 = 2, kUInt16 = 3,
    kInt32 = 4, kUInt32 = 5, kInt64 = 6, kUInt64 = 7,
};

// Gzip member size, in bytes, of each byte sequence data[offsets[i] : offsets[i+1]]
// (offsets has n_seqs + 1 non-decreasing entries, in bytes). Writes n_seqs values to
// out_bytes. Each item is compressed alone with the same parameters, so the result
// does not depend on n_threads (1 = serial, <= 0 = all cores). An empty item gets the
// size of an empty gzip member (20 bytes). Allocates once per worker per call.
Status deflate_sizes(const uint8_t* data, const int64_t* offsets, int64_t n_seqs,
                     DeflateParams params, int n_threads, int64_t* out_bytes) noexcept;

// As deflate_sizes, for token ids: sequence i is tokens[offsets[i] : offsets[i+1]]
// (offsets in tokens), each token serialized per `format` into a per-worker scratch
// buffer (no batch-sized intermediate). `tokens` points at elements of `dtype`.
// Returns kInvalidArgument naming the item when a token does not fit the format.
Status token_deflate_sizes(const void* tokens, int dtype, const int64_t* offsets,
                           int64_t n_seqs, TokenFormat format, DeflateParams params,
                           int n_threads, int64_t* out_bytes) noexcept;

// Serialize tokens[0:n_tokens] per `format` into out (n_tokens * width bytes).
// Returns false if a token does not fit. Exposed for tests and the reference.
bool serialize_tokens(const void* tokens, int dtype, int64_t n_tokens, TokenFormat format,
                      uint8_t* out) noexcept;

}  // namespace pgz
