// ember/scheduler/carrier_pool.hpp — the runtime's threads: one carrier per
// worker, spare carriers, and the carriers that run a process off the
// schedulers (carrier.hpp says what a carrier is).
//
// A carrier is *detached* while it runs a process without a worker: a
// process that held its worker too long and had it handed to a spare
// (until its next runtime call), or one inside ember::blocking.  At most
// runtime_options::blocking_threads carriers are detached at once, so the
// runtime runs at most workers + blocking_threads threads that run
// processes (plus the monitor thread).  Past the bound:
//  - ember::blocking waits, as a process that holds no worker, for a
//    detached carrier to retire (first come, first served);
//  - a held worker is not handed off (sysmon counts and reports it).
//
// Hand-off (give_away), in order, under the pool's mutex:
//  1. find a spare carrier, or start a thread (within the bound);
//  2. the worker's owner becomes the spare, the old carrier owns nothing
//     and counts as detached;
//  3. the spare is woken and runs the worker's loop.
// Retire (a detached carrier whose process switched out): it is no longer
// detached, a blocking section waiting for a thread may go, and it is a
// spare — or ends, when `workers` spares already wait — before the process
// it ran goes back to the schedulers (so whoever sees that process run
// again sees the counts settled).  A spare parks until it is given a
// worker; one not used for spare_keepalive ends.  Ended threads are joined
// by the monitor (or at stop).
//
// Threads: any thread; every member takes the mutex.
// Ownership: owns every carrier; a carrier's memory lives until stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"
#include "ember/scheduler/carrier.hpp"

namespace ember::detail {

class worker;
class runtime_core;

enum class retake_result { handed, busy, refused };

/// What a blocking section that waited is sent when a thread is free for it.
struct blocking_grant {};
template <>
inline constexpr bool system_message_v<blocking_grant> = true;

/// What a carrier_pool holds, for runtime::scheduler_stats.
struct pool_counts {
  std::size_t threads = 0;   // carriers whose thread is alive
  std::size_t spare = 0;     // of them, parked with nothing to run
  std::size_t detached = 0;  // of them, running a process off the schedulers
  std::uint64_t handoffs = 0;        // workers given to another carrier (both kinds)
  std::uint64_t blocking_waits = 0;  // blocking sections that waited for a thread
};

class carrier_pool {
public:
  /// Waiting in ember::blocking for a detached carrier to retire.  Lives on
  /// the waiting process's stack.
  struct waiter {
    ember::pid who;
    bool granted = false;
  };

  carrier_pool(runtime_core& rt, std::uint32_t bound) : rt_(rt), bound_(bound) {}
  carrier_pool(const carrier_pool&) = delete;
  carrier_pool& operator=(const carrier_pool&) = delete;

  /// Start one carrier per worker.
  void start(const std::vector<worker*>& workers);
  /// Wake every parked spare (shutdown), then join every thread.  With a
  /// grace >= 0 (runtime::stop gave up on survivors), a thread that has not
  /// left its loop within the grace is detached instead.
  void stop(std::chrono::milliseconds grace);

  /// Monitor: take c's worker (c outside a lease: see carrier.hpp) and give
  /// it to a spare.  busy: c is in a lease, or has moved on from the slice
  /// the monitor judged (`slices`), or owns nothing; refused: the bound.
  retake_result retake(carrier& c, std::uint64_t slices);
  /// A process on c (in a lease, owning w) gives its worker away before
  /// blocking work, using a slot it already has (try_reserve or a grant).
  void give_away(carrier& c);
  /// A blocking section asks for a slot: true when it may go now (a slot
  /// is reserved); false when it must wait (w was queued; it is granted
  /// a slot, first come first served, and sent a blocking_grant message).
  bool try_reserve(waiter& w);
  /// A waiter that stops waiting (it is exiting): unqueue it, or pass its
  /// grant on when it had one.
  void cancel(waiter& w) noexcept;
  /// A detached carrier's process switched out: c is a spare (or ends).
  void retire(carrier& c) noexcept;
  /// A spare: wait for a worker; nullptr means end the thread.
  worker* wait_for_work(carrier& c);

  /// Call f(carrier&) for every live carrier, under the mutex (monitor).
  template <class F>
  void for_each(F&& f) {
    std::lock_guard lk(mu_);
    for (auto& c : all_)
      if (!c->exited) f(*c);
  }
  /// Join the threads that ended (monitor).
  void reap();
  [[nodiscard]] pool_counts counts() const;
  [[nodiscard]] std::uint32_t bound() const noexcept { return bound_; }

  /// How long an unused spare lives.
  static constexpr std::chrono::seconds spare_keepalive{10};

private:
  carrier* spare_locked();  // a spare (made if need be), or null
  void hand_locked(carrier& from, carrier& to, worker* w);
  /// Give freed slots to waiters; returns whom to notify.
  void grant_locked(std::vector<ember::pid>& out);
  void notify(const std::vector<ember::pid>& granted) noexcept;

  runtime_core& rt_;
  const std::uint32_t bound_;
  mutable std::mutex mu_;  // guards everything below and the carriers' pool fields
  std::vector<std::unique_ptr<carrier>> all_;
  std::vector<carrier*> spares_;
  std::deque<waiter*> waiting_;
  // Slots in use: detached carriers, plus slots reserved by blocking
  // sections about to detach.  At most bound_.
  std::size_t used_ = 0;
  bool stopping_ = false;
  std::uint64_t handoffs_ = 0, waits_ = 0;
};

}  // namespace ember::detail
