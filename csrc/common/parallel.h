// run_items(n_items, n_threads, fn): split work by item, not by thread.
//
// Items are handed out in contiguous chunks through an atomic counter so a slow
// item does not stall a whole thread's static share. fn(begin, end, worker) must
// write only to its items' outputs; results therefore do not depend on n_threads.
// An exception thrown by fn on any thread (std::bad_alloc, say) stops the other
// workers taking new chunks and is rethrown to the caller after all have joined,
// instead of terminating the process from a worker thread.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pgz {

inline int resolve_threads(int n_threads) noexcept {
    if (n_threads > 0) return n_threads;
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

template <class Fn>
void run_items(int64_t n_items, int n_threads, int64_t chunk, Fn&& fn) {
    if (n_items <= 0) return;
    n_threads = resolve_threads(n_threads);
    if (chunk < 1) chunk = 1;
    const int64_t n_chunks = (n_items + chunk - 1) / chunk;
    if (n_threads <= 1 || n_chunks <= 1) {
        fn(int64_t{0}, n_items, 0);
        return;
    }
    n_threads = static_cast<int>(std::min<int64_t>(n_threads, n_chunks));
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::mutex error_mu;
    auto worker = [&](int w) {
        try {
            for (;;) {
                const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
                if (c >= n_chunks) break;
                const int64_t b = c * chunk;
                fn(b, std::min(n_items, b + chunk), w);
            }
        } catch (...) {
            next.store(n_chunks, std::memory_order_relaxed);  // others stop at their next chunk
            std::lock_guard<std::mutex> lock(error_mu);
            if (!error) error = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(n_threads - 1);
    try {
        for (int w = 1; w < n_threads; ++w) pool.emplace_back(worker, w);
    } catch (...) {  // could not start a thread: run with the ones we have
    }
    worker(0);
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace pgz
