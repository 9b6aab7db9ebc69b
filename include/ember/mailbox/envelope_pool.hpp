// ember/mailbox/envelope_pool.hpp — recycles message envelopes.
//
// Small envelopes (up to 256 bytes) come from per-thread free lists in
// three size classes, so a steady message flow allocates nothing.  A thread
// keeps at most `max_cached` envelopes per class and hands the rest back to
// the system allocator; its lists are freed when the thread ends.  Under
// AddressSanitizer the pool is off so use-after-free stays detectable.
//
// Threads: any thread; each uses its own lists (no sharing, no locks).  The
// functions are compiled out of line on purpose: a process may move to
// another thread between two calls, so no caller may keep a thread-local
// address across a switch.
// Ownership: a block belongs to the caller between alloc and free.
#pragma once

#include <cstddef>

namespace ember::detail {

inline constexpr std::size_t envelope_pool_max_size = 256;

void* envelope_alloc(std::size_t bytes);
void envelope_free(void* p, std::size_t bytes) noexcept;

}  // namespace ember::detail
