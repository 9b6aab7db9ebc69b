// ember/scheduler/event_source.hpp — an event loop that the workers drive,
// as BEAM's schedulers check their pollset and Go's scheduler its netpoller.
//
// The io layer implements it over Asio's io_context (io/context.hpp); the
// core knows only this interface.  A runtime given one
// (runtime_options::events):
//  - runs its ready completions when a busy worker's clock tick moves (at
//    most one tick, sysmon.hpp, between two looks) and whenever a worker
//    runs out of local work, before it steals or parks;
//  - lets one idle worker at a time wait *in* it (wait(), with the
//    worker's next timer as the deadline, at most 10 ms at a time) instead
//    of on its futex, so a completion that arrives while everything is idle
//    runs at once on a worker; new work for that worker interrupts the wait
//    (wake()).  A wake may be taken by another worker's poll() instead
//    (wake() posts to the loop, and any thread running it may run the
//    post); that worker is awake and takes the new work, and the waiting
//    one comes back within its 10 ms (what a shutdown waits for).
// Completions run on a worker, in the scheduler's lease: one that wakes a
// process makes it runnable on that worker, with no thread hop.
//
// Threads: poll() from any worker (several at once); wait() from one
// worker at a time; wake() from any thread.  Ownership: shared by the
// runtime (runtime_options) and whoever made it.
#pragma once

#include <chrono>
#include <cstddef>

namespace ember {

class event_source {
public:
  virtual ~event_source() = default;
  /// Run the completions that are ready, without blocking; how many ran.
  virtual std::size_t poll() = 0;
  /// Wait until a completion is ready, `timeout` passes (negative: no
  /// timeout) or wake() is called, then run what is ready; how many ran.
  virtual std::size_t wait(std::chrono::nanoseconds timeout) = 0;
  /// Make a wait() in progress, or the next one, return soon.
  virtual void wake() = 0;
};

}  // namespace ember
