// ember/impl/envelope_pool.ipp — per-thread envelope free lists: the slow
// paths and the thread's end (compiled once).
#pragma once

#include <new>

#include "ember/base/config.hpp"
#include "ember/mailbox/envelope_pool.hpp"

namespace ember::detail {

// Plain data: no guard on access, nothing run at the thread's end by
// itself (the reaper below does that).
__attribute__((tls_model("initial-exec"))) thread_local envelope_cache tl_envelopes asm("ember_tl_envelopes") = {};

namespace {

/// Frees the thread's lists when it ends; made by the thread's first slow
/// call, which then lets the inline free cache blocks (limit).
struct envelope_reaper {
  envelope_reaper() noexcept { tl_envelopes.limit = envelope_cache_max; }
  ~envelope_reaper() {
    envelope_cache& c = tl_envelopes;
    c.limit = 0;
    c.ended = true;
    for (std::size_t k = 0; k < envelope_pool_classes; ++k)
      while (void* b = c.head[k]) {
        c.head[k] = *static_cast<void**>(b);
        ::operator delete(b);
      }
  }
};

/// Out of line, so that the reaper's guard is paid on slow paths only.
EMBER_NOINLINE void arm_reaper() noexcept {
  if (tl_envelopes.ended) return;
  thread_local envelope_reaper reaper;
  (void)reaper;
}

}  // namespace

#if EMBER_INLINE_ENVELOPE_POOL
void* envelope_alloc_slow(std::size_t bytes) {
  if (bytes <= envelope_pool_max_size) {
    if (tl_envelopes.limit == 0) arm_reaper();
    return ::operator new(std::size_t{64} << envelope_pool_class(bytes));
  }
  return ::operator new(bytes);
}

void envelope_free_slow(void* p, std::size_t bytes) noexcept {
  if (bytes <= envelope_pool_max_size) {
    envelope_cache& c = tl_envelopes;
    if (c.limit == 0 && !c.ended) {
      arm_reaper();
      const std::size_t k = envelope_pool_class(bytes);
      if (c.count[k] < c.limit) {
        *static_cast<void**>(p) = c.head[k];
        c.head[k] = p;
        ++c.count[k];
        return;
      }
    }
  }
  ::operator delete(p);
}
#elif !EMBER_ASAN
// No inline thread slots: the same lists, every call out of line.
void* envelope_alloc_slow(std::size_t bytes) {
  if (bytes <= envelope_pool_max_size) {
    envelope_cache& c = tl_envelopes;
    const std::size_t k = envelope_pool_class(bytes);
    if (void* b = c.head[k]) {
      c.head[k] = *static_cast<void**>(b);
      --c.count[k];
      return b;
    }
    if (c.limit == 0) arm_reaper();
    return ::operator new(std::size_t{64} << k);
  }
  return ::operator new(bytes);
}

void envelope_free_slow(void* p, std::size_t bytes) noexcept {
  if (bytes <= envelope_pool_max_size) {
    envelope_cache& c = tl_envelopes;
    if (c.limit == 0) arm_reaper();
    const std::size_t k = envelope_pool_class(bytes);
    if (c.count[k] < c.limit) {
      *static_cast<void**>(p) = c.head[k];
      c.head[k] = p;
      ++c.count[k];
      return;
    }
  }
  ::operator delete(p);
}
#else
// AddressSanitizer: no pool.
void* envelope_alloc_slow(std::size_t bytes) { return ::operator new(bytes); }
void envelope_free_slow(void* p, std::size_t bytes) noexcept {
  (void)bytes;
  ::operator delete(p);
}
#endif

}  // namespace ember::detail
