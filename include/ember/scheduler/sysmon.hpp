// ember/scheduler/sysmon.hpp — the runtime's monitor thread: time slices,
// hand-off of held workers, long_schedule reports, and the clock tick that
// busy workers check their timers by.
//
// Every tick (interval(): half the shorter of time_slice and handoff_after,
// between 50 us and 10 ms) the monitor looks at every carrier.  While no
// slice spans a tick (every process yields or waits within a tick), the
// pause doubles every few ticks, up to 1 ms: each tick takes a CPU from a
// worker when every CPU runs one (pingpong with its worker and the monitor
// on one CPU: 16 % behind a scheduler with no monitor at 250 us ticks, 8 %
// with the back-off).  The first slice seen at two ticks brings the
// interval back.  At each tick:
//  1. publishes the tick (runtime_core::tick()); a worker that sees it
//     change between two slices moves its timer wheel, so a busy worker's
//     timers fire within a tick of their time;
//  2. a carrier whose slice counter has not moved since the last tick has
//     run one process for at least that long.  From time_slice on, that
//     process's budget is set to 0: it yields at its next runtime call
//     (checkpoint, send, receive, ...), reductions left or not;
//  3. from handoff_after on, when the carrier is outside a lease (the
//     process runs its own code and has made no runtime call), its worker
//     is handed to a spare carrier (carrier_pool::retake) — provided its
//     thread used at least a quarter of the time since half of
//     handoff_after in CPU, or sleeps in the kernel (a blocking call): a
//     thread the system did not give a CPU keeps its worker (another thread
//     would wait for a CPU as well);
//  4. from long_schedule on, the episode is marked on the carrier, which
//     reports it once when the slice ends (before the process runs again):
//     pid, name, initial call, how long it ran, and after how long its
//     worker was handed off (the counter counts reports);
//  5. ended spare threads are joined.
// The monitor parks (no tick) while every worker is parked and no carrier
// runs a process; a worker that leaves its park wakes it (wake_if_asleep).
// A runtime with a manual clock gets no time slices and no hand-off (its
// single worker stays deterministic): only steps 1, 4 and 5.
//
// Threads: the monitor's own thread; wake_if_asleep and the counters from
// any thread.  Ownership: owned by the runtime; holds no process.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "ember/base/config.hpp"

namespace ember::detail {

class runtime_core;
class carrier;

class sysmon {
public:
  explicit sysmon(runtime_core& rt);
  sysmon(const sysmon&) = delete;
  sysmon& operator=(const sysmon&) = delete;
  ~sysmon() { stop(); }

  void start();
  void stop();
  /// A worker left its park: wake the monitor if it sleeps with no tick
  /// (any thread; one relaxed load when it is awake).
  void wake_if_asleep() noexcept {
    // ordering: seq_cst, after the worker's seq_cst update of the idle set
    // (see main() for the other side).
    if (EMBER_UNLIKELY(asleep_.load(std::memory_order_seq_cst))) wake();
  }
  [[nodiscard]] std::chrono::nanoseconds interval() const noexcept { return interval_; }
  [[nodiscard]] std::uint64_t long_schedules() const noexcept {
    return long_schedules_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t preemptions() const noexcept { return preemptions_.load(std::memory_order_relaxed); }
  /// A carrier reported a long schedule (carrier::report_long_schedule).
  void count_long_schedule() noexcept { long_schedules_.fetch_add(1, std::memory_order_relaxed); }
  /// Episodes in which a held worker could not be handed off (the bound).
  [[nodiscard]] std::uint64_t handoffs_refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

private:
  void main();
  void wake() noexcept;
  /// One tick over every carrier; true when some carrier runs a process.
  struct scan_result {
    bool active = false;  // some carrier runs a process
    bool held = false;    // some carrier with a worker runs the slice it ran at the last tick
  };
  scan_result scan(std::int64_t now);
  void look_at(carrier& c, std::int64_t now, scan_result& seen);
  /// The CPU time c's thread has used (-1 if it cannot be read).
  static std::int64_t thread_cpu_ns(const carrier& c) noexcept;
  /// Whether c's thread sleeps in the kernel now (not running, not waiting
  /// for a CPU).
  static bool thread_blocked(const carrier& c) noexcept;

  runtime_core& rt_;
  const std::chrono::nanoseconds interval_;
  // The pause between ticks (monitor only): interval_, doubled after
  // quiet_ticks_to_back_off ticks in which no slice spanned a tick, up to
  // backoff_max_ (1 ms, or interval_ if that is longer).
  const std::chrono::nanoseconds backoff_max_;
  std::chrono::nanoseconds sleep_;
  unsigned quiet_ticks_ = 0;
  static constexpr unsigned quiet_ticks_to_back_off = 4;
  const std::int64_t slice_ns_, handoff_ns_, long_ns_;  // 0: off
  std::atomic<bool> asleep_{false};
  std::atomic<std::uint64_t> long_schedules_{0}, preemptions_{0}, refused_{0};
  std::mutex mu_;  // pairs with cv_; guards stop_ and the sleep
  std::condition_variable cv_;
  bool stop_ = false;
  bool refused_logged_ = false;
  std::thread thread_;
};

}  // namespace ember::detail
