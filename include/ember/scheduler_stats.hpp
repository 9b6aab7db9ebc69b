// ember/scheduler_stats.hpp — what the scheduler's threads are doing, and
// its counters (runtime::scheduler()).  docs/guide.md, "Scheduling", says
// what each means.
//
// Threads: a plain value, taken from any thread.  Ownership: n/a.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ember {

struct scheduler_stats {
  /// Workers (runtime_options::workers).
  unsigned workers = 0;
  /// Threads that run processes, alive now: one per worker, the ones that
  /// run a process off the schedulers, and spares (not counting the
  /// runtime's monitor thread).  At most workers + blocking_threads.
  std::size_t threads = 0;
  /// Of them, parked with nothing to run (kept for the next hand-off; one
  /// unused for 10 s ends).
  std::size_t spare_threads = 0;
  /// Of them, running a process off the schedulers now: inside
  /// ember::blocking, or holding a thread whose worker was handed off.
  std::size_t off_scheduler = 0;
  /// Workers handed to another thread so far (held ones, and before
  /// blocking work).
  std::uint64_t handoffs = 0;
  /// Held-worker episodes that could not be handed off: blocking_threads
  /// processes were off the schedulers already.
  std::uint64_t handoffs_refused = 0;
  /// ember::blocking sections that waited for a thread.
  std::uint64_t blocking_waits = 0;
  /// Slices ended by runtime_options::time_slice (the process was asked to
  /// yield at its next runtime call).
  std::uint64_t preemptions = 0;
  /// Processes that ran runtime_options::long_schedule or longer without
  /// yielding their worker (each reported once).
  std::uint64_t long_schedules = 0;
};

}  // namespace ember
