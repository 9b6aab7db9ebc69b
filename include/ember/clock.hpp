// ember/clock.hpp — the runtime's clock, and a manual clock for tests.
//
// ember::now() reads the runtime's clock: a monotonic count of nanoseconds
// since the runtime started, as an ember::time_point (a
// std::chrono::time_point of ember::runtime_clock).  Timers, receive
// timeouts and gen_server timeouts all run on it, and each takes an
// absolute time_point as well as a duration:
//
//   const auto due = ember::now() + 1ms;         // a fixed schedule
//   for (;;) {
//     ember::receive([](tick) {}, ember::after(due, [] {}));
//     due += 1ms;                                // no drift
//   }
//
// With the system clock, now() is std::chrono::steady_clock::now() minus
// the steady_clock time the runtime started at (runtime::epoch()),
// extrapolated between steady_clock readings with the CPU's time-stamp
// counter (nanoseconds of error, never going backwards on one thread).
// With a manual clock it is the manual clock's time.  Each runtime has its
// own epoch: time_points of two runtimes do not compare.
//
// By default a runtime reads the monotonic system clock.  Give it a
// manual_clock instead (runtime_options::clock) and time stands still until
// a test moves it:
//
//   auto clock = std::make_shared<ember::manual_clock>();
//   ember::runtime rt({.clock = clock});          // one worker: deterministic
//   ... spawn processes that start 55 s timers ...
//   clock->advance(55s);                          // returns in microseconds
//
// advance(d) steps time forward to each due timer in turn: at each step
// every timer due fires (in due order; timers due in the same millisecond
// in the order they were started) and the runtime then runs every process
// that can run until none can, before time moves on.  When advance returns,
// the runtime is idle at now() + d.  So a test sees exactly the states a
// real run would pass through, in order, without waiting and without
// depending on wall time.  settle() runs the runtime until idle without
// moving time.
//
// A runtime with a manual clock runs one worker (the deterministic
// single-worker mode); asking for more is invalid_option.  One manual clock
// drives one runtime at a time.
//
// Threads: now() (both) from any thread; advance()/settle() from a thread
// that is not one of the runtime's processes (they wait for the runtime),
// and not from two threads at once.  Ownership: shared by the test and the
// runtime.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ember {

namespace detail {
class runtime_core;
}

/// The runtime's clock (see above).  A Clock in std::chrono's sense.
struct runtime_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<runtime_clock>;
  static constexpr bool is_steady = true;
  /// ember::now().
  static time_point now();
};
using time_point = runtime_clock::time_point;

/// Now on the runtime's clock: the calling process's runtime; outside a
/// process, the runtime started most recently of those still running
/// (ember::error when there is none).  Use runtime::now() to name one.
[[nodiscard]] time_point now();

class manual_clock {
public:
  manual_clock() = default;
  manual_clock(const manual_clock&) = delete;
  manual_clock& operator=(const manual_clock&) = delete;

  /// Time since the clock was made (starts at zero).
  [[nodiscard]] std::chrono::nanoseconds now() const noexcept {
    return std::chrono::nanoseconds(now_.load(std::memory_order_acquire));
  }
  /// Move time forward by d (d >= 0), firing timers and running the runtime
  /// as described above.  Throws ember::error when no runtime uses the
  /// clock or when called from inside one of its processes, bad_argument
  /// for d < 0, NaN, or a d that would take the clock past 2^62 ns (about
  /// 146 years).
  void advance(std::chrono::nanoseconds d);
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    // Checked before the cast, so no unit's max() overflows: at most 2^62 ns.
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (!(ns >= 0 && ns <= static_cast<long double>(std::int64_t{1} << 62))) throw_bad_advance();
    advance(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }
  /// Run the runtime until no process can run, without moving time.
  void settle() { advance(std::chrono::nanoseconds(0)); }

private:
  [[noreturn]] static void throw_bad_advance();
  friend class detail::runtime_core;
  std::atomic<std::int64_t> now_{0};
  std::atomic<detail::runtime_core*> rt_{nullptr};
};

}  // namespace ember
