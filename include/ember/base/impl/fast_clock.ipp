// ember/base/impl/fast_clock.ipp — re-anchoring and measuring the counter rate
// for detail::fast_clock (compiled once, in src/ember.cpp).
#pragma once

#include <cpuid.h>

#include "ember/base/fast_clock.hpp"

namespace ember::detail::fast_clock {

#if defined(__x86_64__)

namespace {

bool invariant_counter() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return false;
  if (!__get_cpuid(0x80000007u, &a, &b, &c, &d)) return false;
  return (d >> 8) & 1u;
}

/// A (counter, steady_clock) pair.  `tight`: the counter was read just
/// before and just after steady_clock, at most tight_ticks apart (the
/// thread was not preempted in between), and `tsc` is their midpoint.
struct sample {
  std::uint64_t tsc;
  std::int64_t ns;
  bool tight;
};
constexpr std::uint64_t tight_ticks = 20'000;  // ~5-20 µs at 1-4 GHz

sample take_sample() noexcept {
  sample s{};
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::uint64_t t0 = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t t1 = __rdtsc();
    s = sample{t0 + (t1 - t0) / 2, ns, t1 >= t0 && t1 - t0 <= tight_ticks};
    if (s.tight) break;
  }
  return s;
}

/// The first tight pair of the process, the base of the rate measurement;
/// ns == -1 when the counter is not to be used.
const sample& first() noexcept {
  static const sample s = [] {
    if (!invariant_counter()) return sample{0, -1, false};
    sample f = take_sample();
    return f.tight ? f : sample{0, -1, false};
  }();
  return s;
}

constexpr std::int64_t measure_after_ns = 2'000'000;
constexpr std::uint64_t extrapolate_ns = 1'000'000;

}  // namespace

std::int64_t reanchor() noexcept {
  anchor& a = this_thread_anchor;
  const sample now = take_sample();
  const std::uint64_t t = now.tsc;
  std::int64_t ns = now.ns;
  a.tsc = t;
  a.ns = ns;
  if (global_rate.ns_per_tick_q32.load(std::memory_order_relaxed) == 0 && now.tight) {
    const sample& f = first();
    if (f.ns >= 0 && ns - f.ns >= measure_after_ns && t > f.tsc) {
      const unsigned __int128 q = (static_cast<unsigned __int128>(ns - f.ns) << 32) / (t - f.tsc);
      // A rate outside 1 tick per 100 ns .. 100 ticks per ns is not a clock.
      if (q > 0 && q < (static_cast<unsigned __int128>(100) << 32)) {
        const auto m = static_cast<std::uint64_t>(q);
        global_rate.max_ticks.store((extrapolate_ns << 32) / m, std::memory_order_relaxed);
        std::uint64_t zero = 0;
        global_rate.ns_per_tick_q32.compare_exchange_strong(zero, m, std::memory_order_relaxed);
      }
    }
  }
  if (ns < a.last) ns = a.last;
  a.last = ns;
  return ns;
}

#endif

}  // namespace ember::detail::fast_clock
