// Counter-based per-item random streams.
//
// Item i (a document, a window) gets the stream seeded from (seed, i) alone, so
// the output never depends on thread count or on how a range is split into
// calls. Within a stream the generator is SplitMix64 (Steele et al. 2014): one
// add and a 3-step finaliser per 64-bit draw, ~1 ns. pygzlaw/sampler/reference.py
// implements the very same arithmetic in Python.
#pragma once
#include <cstdint>

namespace pgz {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix64(uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// State of item `index`'s stream under `seed`: two rounds of mixing so that
// neighbouring seeds and neighbouring indices give unrelated streams.
inline uint64_t stream_state(uint64_t seed, uint64_t index) noexcept {
    return mix64(mix64(seed ^ 0x5851F42D4C957F2DULL) + index * kGolden);
}

struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t s) noexcept : state(s) {}
    inline uint64_t next() noexcept {
        state += kGolden;
        return mix64(state);
    }
};

}  // namespace pgz
