// ember/base/config.hpp — compiler and sanitizer switches used by the
// internals.  Threads: n/a (macros).  Ownership: n/a.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define EMBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define EMBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EMBER_TSAN 1
#endif
#endif

#define EMBER_NOINLINE __attribute__((noinline))
#define EMBER_LIKELY(x) __builtin_expect(!!(x), 1)
#define EMBER_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace ember::detail {
/// Size of a cache line, for padding fields that different threads write.
inline constexpr unsigned cache_line = 64;
}  // namespace ember::detail
