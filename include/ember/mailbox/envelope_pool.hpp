// ember/mailbox/envelope_pool.hpp — recycles message envelopes.
//
// Small envelopes (up to 256 bytes) come from per-thread free lists in
// three size classes, so a steady message flow allocates nothing.  A thread
// keeps at most `envelope_cache_max` envelopes per class and hands the rest
// back to the system allocator; its lists are freed when the thread ends.
// Under AddressSanitizer the pool is off so use-after-free stays detectable.
//
// The common case — a block on the list to take, room on the list to give
// one back — is inline: the thread's cache is found afresh at each call (a
// process may move to another thread between two calls, so no caller may
// keep a thread-local address across a switch; thread_slots.hpp says how),
// and the cache is plain data (no thread-local guard on the way).  The rest
// is out of line: the first use on a thread (which arranges for the lists
// to be freed at its end), an empty list, a full one.
//
// Threads: any thread; each uses its own lists (no sharing, no locks).
// Ownership: a block belongs to the caller between alloc and free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ember/base/config.hpp"
#include "ember/base/thread_slots.hpp"

namespace ember::detail {

inline constexpr std::size_t envelope_pool_max_size = 256;
inline constexpr std::uint32_t envelope_cache_max = 4096;
inline constexpr std::size_t envelope_pool_classes = 3;  // 64, 128, 256 bytes

/// A thread's lists.  Zero until the thread's first slow call: `limit` 0
/// keeps the inline free from caching before the lists are set to be
/// freed at the thread's end.
struct envelope_cache {
  void* head[envelope_pool_classes];
  std::uint32_t count[envelope_pool_classes];
  std::uint32_t limit;
  bool ended;  // the thread is ending: no caching from here
};

/// The slow paths (impl/envelope_pool.ipp).
void* envelope_alloc_slow(std::size_t bytes);
void envelope_free_slow(void* p, std::size_t bytes) noexcept;

inline std::size_t envelope_pool_class(std::size_t bytes) noexcept { return bytes <= 64 ? 0 : bytes <= 128 ? 1 : 2; }

#if EMBER_INLINE_THREAD_SLOTS && !EMBER_ASAN
#define EMBER_INLINE_ENVELOPE_POOL 1
/// The calling thread's cache (its address computed at this call).
inline envelope_cache* this_envelope_cache() noexcept {
  envelope_cache* c;
  __asm__ volatile("movq ember_tl_envelopes@gottpoff(%%rip), %0\n\taddq %%fs:0, %0" : "=r"(c) : : "memory");
  return c;
}

inline void* envelope_alloc(std::size_t bytes) {
  if (EMBER_LIKELY(bytes <= envelope_pool_max_size)) {
    const std::size_t k = envelope_pool_class(bytes);
    envelope_cache* c = this_envelope_cache();
    if (void* b = c->head[k]; EMBER_LIKELY(b != nullptr)) {
      c->head[k] = *static_cast<void**>(b);
      --c->count[k];
      return b;
    }
  }
  return envelope_alloc_slow(bytes);
}

inline void envelope_free(void* p, std::size_t bytes) noexcept {
  if (EMBER_LIKELY(bytes <= envelope_pool_max_size)) {
    const std::size_t k = envelope_pool_class(bytes);
    envelope_cache* c = this_envelope_cache();
    if (EMBER_LIKELY(c->count[k] < c->limit)) {
      *static_cast<void**>(p) = c->head[k];
      c->head[k] = p;
      ++c->count[k];
      return;
    }
  }
  envelope_free_slow(p, bytes);
}
#else
#define EMBER_INLINE_ENVELOPE_POOL 0
inline void* envelope_alloc(std::size_t bytes) { return envelope_alloc_slow(bytes); }
inline void envelope_free(void* p, std::size_t bytes) noexcept { envelope_free_slow(p, bytes); }
#endif

}  // namespace ember::detail
