// ember/scheduler/carrier.hpp — an OS thread that runs a worker, as Go's M
// runs a P.
//
// A worker (worker.hpp) is the state of one scheduler: its run queue, LIFO
// slot, timer wheel and caches.  A carrier is a thread that runs one.
// Normally each worker keeps its first carrier for the runtime's life; the
// two come apart in two cases (carrier_pool.hpp has the pool of threads):
//  - the process running on a carrier holds it past
//    runtime_options::handoff_after without a runtime call (a plain loop,
//    a blocking system call): the monitor (sysmon.hpp) gives the worker to
//    a spare carrier, which goes on with every other process and timer of
//    that worker.  The holding process keeps the old carrier until its next
//    runtime call, where it becomes an ordinary runnable process again and
//    the old carrier retires to the spare pool;
//  - the process gives the worker away itself, before blocking work
//    (ember::blocking).
//
// The lease protocol.  Whatever touches a worker's state — the scheduler
// loop between slices, and the few runtime calls of a process that use its
// worker (making a process runnable, starting a timer, spawning) — does so
// inside a lease of the carrier running it:
//
//   enter:  busy = 1; light fence; if (revoke != 0) slow path
//   leave:  busy = 0 (release)
//
// and the monitor takes a worker away only from a carrier outside a lease:
//
//   revoke = 1; heavy fence; if (busy) { revoke = 0; try later }
//                            else      { revoke = 2; the worker is given away }
//
// This is Dekker's handshake with an asymmetric pair of fences: the light
// one is a compiler barrier, the heavy one a process-wide memory barrier
// (membarrier(2)), so the hot path pays no locked instruction.  Where the
// kernel lacks membarrier both sides use full fences.  Either the carrier
// sees revoke != 0, or the monitor sees busy == 1: never neither.  An enter
// that sees 1 waits for the monitor's decision (a few microseconds); one
// that sees 2 learns that its worker is gone: from then on its thread runs
// the one process it holds, with no worker (tl_worker-free paths: what it
// makes runnable goes to the inject queue), until that process switches
// out.  Leases nest (a depth count, apart from busy: folding the two into
// one word made ring 12 % slower on two workers); a process never switches
// out inside one.
//
// Threads: enter/leave/current and the fields marked owner are for the
// carrier's own thread; the fields marked monitor are read by the monitor
// thread; the rest as each says.
// Ownership: the carrier_pool owns every carrier; a carrier runs a worker it
// does not own (the runtime owns workers).
#pragma once

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "ember/base/config.hpp"
#include "ember/base/thread_slots.hpp"
#include "ember/exit_reason.hpp"
#include "ember/process/fiber.hpp"
#include "ember/process/process.hpp"
#include "ember/scheduler/park.hpp"

namespace ember::detail {

class worker;
class runtime_core;
struct process;

/// The asymmetric fences of the lease protocol (carrier.ipp).
namespace lease_fence {
/// Whether membarrier(2) serves as the heavy fence (set once, at the first
/// runtime's start; false until then, so both sides fence fully).
inline std::atomic<bool> asymmetric{false};
inline void light() noexcept {
  if (EMBER_LIKELY(asymmetric.load(std::memory_order_relaxed))) std::atomic_signal_fence(std::memory_order_seq_cst);
  else std::atomic_thread_fence(std::memory_order_seq_cst);
}
/// Every other thread of this program has passed a full memory barrier
/// (heavy side; monitor only).
void heavy() noexcept;
/// Turn on membarrier where the kernel has it (any thread, idempotent).
void init() noexcept;
}  // namespace lease_fence

class carrier {
public:
  explicit carrier(runtime_core& rt) : rt_(rt) {}
  carrier(const carrier&) = delete;
  carrier& operator=(const carrier&) = delete;
  ~carrier() { join(); }

  /// Start the thread, running `first` (null: start as a spare).
  void start(worker* first);
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  /// Whether the thread has left its loop (after shutdown): join() will
  /// not wait.
  [[nodiscard]] bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  /// Let the thread go without joining it (runtime::stop's last resort,
  /// runtime_options::stop_timeout; the runtime's memory is then kept).
  void detach() {
    if (thread_.joinable()) thread_.detach();
  }

  // -- owner (the carrier's thread) -------------------------------------------
  /// Lease the worker this thread runs: it may touch the worker's state
  /// until leave().  nullptr when it runs none (it never did, or its worker
  /// was given away); then nothing is held and leave() must not be called.
  worker* enter() noexcept {
    worker* const w = enter_fast();
    return EMBER_LIKELY(!is_contended(w)) ? w : enter_contended();
  }
  /// enter() without its slow path, for callers that keep that out of
  /// line: is_contended(result) when the monitor may be taking the worker
  /// — the lease is then half taken, and enter_contended() finishes it.
  static bool is_contended(worker* w) noexcept { return reinterpret_cast<std::uintptr_t>(w) == 1; }
  worker* enter_fast() noexcept {
    worker* const w = w_;
    if (!w) return nullptr;
    if (depth_++ == 0) {
      busy_.store(1, std::memory_order_relaxed);
      lease_fence::light();
      if (EMBER_UNLIKELY(revoke_.load(std::memory_order_relaxed) != 0)) return reinterpret_cast<worker*>(std::uintptr_t{1});
    }
    return w;
  }
  /// What enter() returns, after enter_fast() said `contended`.
  worker* enter_contended() noexcept;
  void leave() noexcept {
    // ordering: release, so a monitor that reads 0 sees every write made
    // to the worker inside the lease before it gives the worker away.
    if (--depth_ == 0) busy_.store(0, std::memory_order_release);
  }
  /// The runtime whose workers this carrier runs.
  [[nodiscard]] runtime_core& runtime() const noexcept { return rt_; }
  /// The worker this thread runs (no lease), or nullptr.
  [[nodiscard]] worker* current() const noexcept { return w_; }
  /// Give up the worker this thread runs without a monitor's decision (the
  /// caller holds exactly one lease, which this ends).  carrier_pool only.
  void drop_worker() noexcept {
    w_ = nullptr;
    depth_ = 0;
    busy_.store(0, std::memory_order_release);
  }

  /// Set by a process entry just before it returns, to end its process with
  /// this reason instead of `normal` (cheaper than throwing through it);
  /// read and cleared by this carrier right after the entry returns.
  std::optional<exit_reason> exit_on_return;
  /// This thread's side of every switch, for the sanitizers.
  switch_side side;
  /// This thread's C++ exception state (see worker.ipp).
  void* eh_globals = nullptr;

  // -- the scheduler loop (owner) ---------------------------------------------
  /// A process is about to run on this carrier: end the scheduler's lease
  /// (its only one: depth 1) and tell the monitor.  Returns the slice's
  /// number (odd), for slice_end.
  std::uint64_t slice_begin(process* p) noexcept {
    // ordering: release (both), so a monitor that acquires p, or the slice
    // count after it, may write p's budget (the block was made before this
    // carrier got it) and knows p is that slice's process.
    running_.store(p, std::memory_order_release);
    const std::uint64_t s = slices_.load(std::memory_order_relaxed) + 1;
    slices_.store(s, std::memory_order_release);
    depth_ = 0;
    // ordering: release, as leave().
    busy_.store(0, std::memory_order_release);
    return s;
  }
  /// The process of slice s switched back: take the scheduler's lease
  /// again.  False when the worker was taken away meanwhile (then no lease
  /// is held).
  bool slice_end(std::uint64_t s) noexcept {
    slices_.store(s + 1, std::memory_order_relaxed);
    if (!w_) return false;  // the process gave the worker away (ember::blocking) or saw it revoked
    depth_ = 1;
    busy_.store(1, std::memory_order_relaxed);
    lease_fence::light();
    if (EMBER_UNLIKELY(revoke_.load(std::memory_order_relaxed) != 0)) return enter_contended() != nullptr;
    return true;
  }
  /// Slice s, which just ended, was marked by the monitor as a long
  /// schedule (runtime_options::long_schedule).
  [[nodiscard]] bool long_schedule_due(std::uint64_t s) const noexcept {
    // ordering: acquire pairs with mark_long_schedule's release.
    return long_slice_.load(std::memory_order_acquire) == s + 1;
  }
  /// Log it (pid, name, initial call, how long), once, and count it.
  void report_long_schedule(process* p) noexcept;
  /// Monitor: the slice `slices` (odd) has run since since_ns (steady_clock).
  void mark_long_schedule(std::uint64_t slices, std::int64_t since_ns) noexcept {
    long_since_ns_.store(since_ns, std::memory_order_relaxed);
    // ordering: release publishes long_since_ns_ (and handed_at_ns_, when
    // the hand-off came first) to long_schedule_due's acquire.
    long_slice_.store(slices + 1, std::memory_order_release);
  }
  /// Monitor, in the hand-off: when it took the worker (steady_clock ns).
  std::atomic<std::int64_t> handed_at_ns_{-1};

  /// What a carrier that lost its worker still has to deal with: the
  /// process it ran, and what that process asked for (owner only).
  process* left_behind = nullptr;
  switch_request left_behind_req = switch_request::yield;

  // -- monitor view (any thread reads; see carrier_pool / sysmon) -------------
  std::atomic<std::uint32_t> busy_{1};     // owner writes: inside a lease (or scheduler code)
  std::atomic<std::uint32_t> revoke_{0};   // monitor writes: 0 none, 1 deciding, 2 given away
  std::atomic<std::uint64_t> slices_{0};   // owner writes: odd while a process runs here
  std::atomic<process*> running_{nullptr}; // owner writes: the process of the current slice
  std::atomic<bool> blocking_{false};      // owner writes: it runs an ember::blocking section

  // Guarded by carrier_pool's mutex:
  worker* owned = nullptr;    // the worker it runs, as the pool sees it
  worker* next = nullptr;     // a spare's next worker, set before it is woken
  bool spare = false;         // parked in the spare list
  bool exited = false;        // its thread has ended (to be joined)
  // Monitor only (sysmon.ipp): what the last ticks saw of this carrier.
  std::uint64_t sm_slices = 0;
  std::int64_t sm_since_ns = 0;
  std::uint8_t sm_flags = 0;
  std::int64_t sm_handed_after_ns = -1;
  std::int64_t sm_cpu_ns = 0, sm_cpu_at = -1;  // a sample of the thread's CPU time, and when
  // Set by the carrier's thread before its first slice (read by the
  // monitor only for a carrier in a slice, after the slice count's
  // acquire): its CPU clock and kernel thread id.
  clockid_t cpu_clock{};
  pid_t tid = 0;

  parker& park_handle() noexcept { return parker_; }

private:
  void main(worker* first);

  runtime_core& rt_;
  std::atomic<std::uint64_t> long_slice_{0};     // monitor writes: long-schedule slice + 1 (0: none)
  std::atomic<std::int64_t> long_since_ns_{0};   // monitor writes: when it began
  worker* w_ = nullptr;  // owner: the worker it runs
  unsigned depth_ = 0;   // owner: lease nesting
  parker parker_;        // a spare parks here
  std::atomic<bool> done_{false};  // set by the thread as it leaves main()
  std::vector<char> alt_stack_;    // owner: its alternate signal stack
  std::thread thread_;
};

/// The lease of a scope: the calling thread's worker, if it runs one.
class worker_lease {
public:
  worker_lease() noexcept : c_(this_carrier()), w_(c_ ? c_->enter() : nullptr) {}
  ~worker_lease() {
    if (w_) c_->leave();
  }
  worker_lease(const worker_lease&) = delete;
  worker_lease& operator=(const worker_lease&) = delete;
  [[nodiscard]] worker* get() const noexcept { return w_; }
  worker* operator->() const noexcept { return w_; }
  explicit operator bool() const noexcept { return w_ != nullptr; }

private:
  carrier* c_;
  worker* w_;
};

}  // namespace ember::detail
