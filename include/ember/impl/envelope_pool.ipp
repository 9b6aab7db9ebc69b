// ember/impl/envelope_pool.ipp — per-thread envelope free lists (compiled once).
#pragma once

#include <new>

#include "ember/base/config.hpp"
#include "ember/mailbox/envelope_pool.hpp"

namespace ember::detail {

namespace {
constexpr std::size_t pool_classes = 3;  // 64, 128, 256 bytes
constexpr std::size_t max_cached = 4096;

inline std::size_t pool_class(std::size_t bytes) noexcept {
  return bytes <= 64 ? 0 : bytes <= 128 ? 1 : 2;
}

struct free_block {
  free_block* next;
};

struct thread_envelope_cache {
  free_block* head[pool_classes] = {};
  std::size_t count[pool_classes] = {};
  ~thread_envelope_cache() {
    for (std::size_t c = 0; c < pool_classes; ++c)
      while (free_block* b = head[c]) {
        head[c] = b->next;
        ::operator delete(b);
      }
  }
};
__attribute__((tls_model("initial-exec"))) thread_local thread_envelope_cache tl_envelopes;
}  // namespace

EMBER_NOINLINE void* envelope_alloc(std::size_t bytes) {
#if !EMBER_ASAN
  if (bytes <= envelope_pool_max_size) {
    std::size_t c = pool_class(bytes);
    auto& cache = tl_envelopes;
    if (free_block* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
    return ::operator new(std::size_t{64} << c);
  }
#endif
  return ::operator new(bytes);
}

EMBER_NOINLINE void envelope_free(void* p, std::size_t bytes) noexcept {
#if !EMBER_ASAN
  if (bytes <= envelope_pool_max_size) {
    std::size_t c = pool_class(bytes);
    auto& cache = tl_envelopes;
    if (cache.count[c] < max_cached) {
      auto* b = static_cast<free_block*>(p);
      b->next = cache.head[c];
      cache.head[c] = b;
      ++cache.count[c];
      return;
    }
  }
#endif
  ::operator delete(p);
}

}  // namespace ember::detail
