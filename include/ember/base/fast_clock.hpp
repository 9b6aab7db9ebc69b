// ember/base/fast_clock.hpp — the runtime's reading of the system clock:
// std::chrono::steady_clock, extrapolated between readings with the CPU's
// time-stamp counter.
//
// Starting, cancelling and reading a timer all need "now".  A steady_clock
// reading costs ~25 ns and orders the instruction stream (the kernel's
// reader fences the counter read), so a cancel that misses the cache on its
// timer waits for that miss to the end instead of overlapping it.  Here each
// thread keeps an anchor, a (counter, steady_clock) pair, and answers
// anchor + counter ticks × ns-per-tick until 1 ms of ticks have passed since
// the anchor, then reads steady_clock again.  The error is bounded by the
// ns-per-tick error over at most 1 ms (nanoseconds), and values never go
// backwards on one thread.
//
// The counter is used only where the CPU says it is invariant (constant
// rate, running in every power state: CPUID 0x80000007 EDX bit 8) and once
// its rate has been measured against steady_clock over at least 2 ms, from
// pairs whose counter readings bracket the steady_clock reading tightly (a
// thread preempted mid-pair would skew the rate);
// until then, elsewhere, and off x86-64, every call reads steady_clock.  A
// counter that jumps (a thread moved to a core whose counter differs) is
// caught by the 1 ms bound: a jump backwards reads as a huge distance and
// forces a fresh anchor.
//
// Threads: any thread; the anchor is per thread, the measured rate global.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace ember::detail::fast_clock {

/// steady_clock in nanoseconds since its epoch.
inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#if defined(__x86_64__)

struct rate {
  /// ns per tick, 32.32 fixed point; 0 until measured (or never: no invariant counter).
  std::atomic<std::uint64_t> ns_per_tick_q32{0};
  /// Ticks in 1 ms: the longest extrapolation from one anchor.
  std::atomic<std::uint64_t> max_ticks{0};
};
inline rate global_rate;

struct anchor {
  std::uint64_t tsc = 0;
  std::int64_t ns = 0;
  std::int64_t last = 0;  // the last value returned: never go back
};
inline thread_local anchor this_thread_anchor;

/// Read steady_clock, re-anchor this thread, measure the rate if due.
std::int64_t reanchor() noexcept;

inline std::int64_t now_ns() noexcept {
  anchor& a = this_thread_anchor;
  const std::uint64_t m = global_rate.ns_per_tick_q32.load(std::memory_order_relaxed);
  const std::uint64_t d = __rdtsc() - a.tsc;
  // ordering: relaxed; max_ticks is written before ns_per_tick_q32 and both
  // are constants once set, a stale 0 only sends us to reanchor().
  if (m != 0 && d < global_rate.max_ticks.load(std::memory_order_relaxed)) {
    std::int64_t v = a.ns + std::int64_t((d * m) >> 32);  // d·m < 2^63: d is under 1 ms of ticks
    if (v < a.last) v = a.last;
    a.last = v;
    return v;
  }
  return reanchor();
}

#else

inline std::int64_t now_ns() noexcept { return steady_ns(); }

#endif

}  // namespace ember::detail::fast_clock
