// ember/detail/runtime_core.hpp — the runtime's shared state: workers and
// the carrier threads that run them, the monitor thread, the process table
// (type-stable control blocks), the inject queue, the idle set, the stack
// pool, and the stop protocol.
//
// Stop protocol (runtime_core::stop):
//  1. set `stopping_`: spawn now throws runtime_stopped;
//  2. send every live process an untrappable kill (reason killed); a
//     process ends at its next runtime call (receive, send, checkpoint,
//     ...), unwinding its stack so destructors run;
//  3. wait until no process is live, repeating step 2 for processes that
//     were being spawned while it ran — at most runtime_options::
//     stop_timeout: then report the survivors (pid, name, initial call,
//     status) and abandon them (they are never resumed);
//  4. set `shutdown_`, wake every worker and spare carrier, join every
//     carrier thread, stop the monitor — after step 3 gave up, a carrier
//     still held by a survivor (plain C++ code) after a short grace is
//     detached instead, and the runtime is marked `abandoned_`;
//  5. the destructor frees every block, stack and queued message — except
//     for an abandoned runtime, which runtime::~runtime keeps for ever
//     (keep_forever): a detached thread may still use it.
//
// Threads: any thread, except where a member says worker only.
// Ownership: owns workers, blocks (in chunks) and the stack pool.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "ember/clock.hpp"
#include "ember/base/fast_clock.hpp"
#include "ember/detail/name_table.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"
#include "ember/process/process.hpp"
#include "ember/process/stack_pool.hpp"
#include "ember/scheduler/carrier_pool.hpp"
#include "ember/scheduler/idle.hpp"
#include "ember/scheduler/inject_queue.hpp"
#include "ember/scheduler/sysmon.hpp"
#include "ember/scheduler/worker.hpp"
#include "ember/scheduler_stats.hpp"

namespace spdlog {
class logger;
}

namespace ember::detail {

class runtime_core {
public:
  explicit runtime_core(runtime_options opts);
  ~runtime_core();
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;

  // -- spawn: allocate, fill in the entry, publish ------------------------
  /// A fresh block for a new process (validates options; throws
  /// runtime_stopped / invalid_option).
  process* prepare_spawn(const spawn_options& o, const char* what);
  /// Give the block its serial and make it runnable.
  ember::pid publish_spawn(process* p) {
    ember::pid child = assign_serial(p);
    start(p);
    return child;
  }
  /// publish_spawn, calling before_start(pid) after the serial is assigned
  /// and before the process can run (to link or monitor it).  before_start
  /// must not throw.
  template <class F>
  ember::pid publish_spawn(process* p, F&& before_start) {
    ember::pid child = assign_serial(p);
    before_start(child);
    start(p);
    return child;
  }
  /// Give back a block from prepare_spawn when filling it in failed.
  void abandon_spawn(process* p);
  /// prepare_spawn plus the entry function: a block ready to publish.
  template <class F>
  process* make_process(F&& fn, const spawn_options& o, const char* what) {
    process* p = prepare_spawn(o, what);
    try {
      p->set_entry(std::forward<F>(fn));
    } catch (...) {
      abandon_spawn(p);
      throw;
    }
    return p;
  }

  /// Make p runnable from a thread that is not one of this runtime's
  /// workers (or from a worker when it must not take the LIFO slot).
  void inject(process* p);
  /// Wake one parked worker if nobody is searching for work.
  void notify_one();
  /// Wake p, which was blocked in receive (its mailbox marker was taken).
  void wake(process* p);

  /// Block the calling (non-process) thread until the process exits.
  exit_reason wait(ember::pid p);
  /// Block the calling (non-process) thread until the latch is released.
  exit_reason wait_latch(const std::shared_ptr<exit_latch>& latch);
  void stop();
  [[nodiscard]] bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  /// stop gave up on some process (step 3): this runtime must never be
  /// destroyed.
  [[nodiscard]] bool abandoned() const noexcept { return abandoned_.load(std::memory_order_acquire); }
  [[nodiscard]] bool shutting_down() const noexcept { return shutdown_.load(std::memory_order_acquire); }

  // -- worker only ----------------------------------------------------------
  /// Recycle an exited process's block: into w's cache (w leased by the
  /// caller), or the shared free list when w is null.
  void release_block(worker* w, process* p);
  void on_process_exit();
  void crash_report(ember::pid p, const exit_reason& r);
  /// The runtime's logger (runtime_options::logger, or spdlog's default).
  [[nodiscard]] spdlog::logger& logger() const noexcept { return *logger_; }

  const runtime_options& options() const noexcept { return opts_; }
  /// runtime_options::time_slice in ns; 0: no time slices (also with a
  /// manual clock).
  [[nodiscard]] std::int64_t time_slice_ns() const noexcept { return time_slice_ns_; }
  std::uint32_t worker_count() const noexcept { return std::uint32_t(workers_.size()); }
  worker& worker_at(std::uint32_t i) noexcept { return *workers_[i]; }
  carrier_pool& carriers() noexcept { return carriers_; }
  sysmon& monitor() noexcept { return monitor_; }
  /// The monitor's clock tick: it moves every sysmon::interval() while any
  /// worker is busy (workers check their timers when it has moved).
  [[nodiscard]] std::uint64_t clock_tick() const noexcept { return clock_tick_.load(std::memory_order_relaxed); }
  void advance_clock_tick() noexcept { clock_tick_.fetch_add(1, std::memory_order_relaxed); }
  inject_queue<process>& injector() noexcept { return inject_; }
  /// runtime_options::events, or null (scheduler/event_source.hpp).
  [[nodiscard]] event_source* events() const noexcept { return events_; }
  /// Become the one idle worker that waits in the event source; false when
  /// another does (then park as usual).
  bool claim_event_wait() noexcept {
    bool expect = false;
    return !event_waiter_.load(std::memory_order_relaxed) &&
           event_waiter_.compare_exchange_strong(expect, true, std::memory_order_acquire);
  }
  void release_event_wait() noexcept { event_waiter_.store(false, std::memory_order_release); }
  /// One idle worker at a time may spin on the event source (worker.hpp).
  bool claim_event_spin() noexcept {
    bool expect = false;
    return !event_spinner_.load(std::memory_order_relaxed) &&
           event_spinner_.compare_exchange_strong(expect, true, std::memory_order_relaxed);
  }
  void release_event_spin() noexcept { event_spinner_.store(false, std::memory_order_relaxed); }
  idle_set& idle() noexcept { return idle_; }
  stack_pool& stacks() noexcept { return stacks_; }
  std::size_t default_stack_class() const noexcept { return default_class_; }
  std::size_t live() const noexcept { return std::size_t(live_.load(std::memory_order_acquire)); }

  // -- memory -----------------------------------------------------------------
  /// Process heaps: opened, closed (with the bytes they held), grown or
  /// shrunk.  Any thread (relaxed counters).
  void heap_opened() noexcept { heaps_.fetch_add(1, std::memory_order_relaxed); }
  void heap_closed(std::size_t bytes) noexcept {
    heaps_.fetch_sub(1, std::memory_order_relaxed);
    heap_bytes_.fetch_sub(std::int64_t(bytes), std::memory_order_relaxed);
  }
  void heap_grew(std::int64_t d) noexcept { heap_bytes_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] std::size_t heaps() const noexcept { return std::size_t(heaps_.load(std::memory_order_relaxed)); }
  [[nodiscard]] std::size_t heap_bytes() const noexcept {
    return std::size_t(heap_bytes_.load(std::memory_order_relaxed));
  }
  /// Log that p's mailbox reached `len` messages (threshold `enable`).
  void long_queue_report(process* p, std::size_t len, std::size_t enable) noexcept;

  /// A fresh monitor id, unique within this runtime.
  std::uint64_t next_monitor_id() noexcept { return monitor_ids_.fetch_add(1, std::memory_order_relaxed); }

  /// Every live pid (any thread; a snapshot).
  std::vector<ember::pid> processes() const;

  name_table& names() noexcept { return names_; }

  // -- time -------------------------------------------------------------------
  /// Nanoseconds since the runtime started (or the manual clock's time).
  [[nodiscard]] std::int64_t now_ns() const noexcept {
    if (manual_) return manual_->now_.load(std::memory_order_acquire);
    return fast_clock::now_ns() - epoch_ns_;
  }
  [[nodiscard]] bool manual() const noexcept { return manual_ != nullptr; }
  /// steady_clock's reading at this runtime's time 0, in ns.
  [[nodiscard]] std::int64_t epoch_ns() const noexcept { return epoch_ns_; }
  /// The clock of the runtime started most recently of those not stopping
  /// (any thread; ember::now() outside a process); false when none.
  static bool latest_now_ns(std::int64_t& out) noexcept;
  /// runtime::scheduler().
  [[nodiscard]] scheduler_stats scheduler() const;
  /// manual_clock::advance: step to now + d (see clock.hpp).  Not from a process.
  void advance(std::int64_t d_ns);
  /// Worker only, manual mode: the pending advance's target, or -1.
  [[nodiscard]] std::int64_t advance_target() const noexcept { return adv_target_.load(std::memory_order_acquire); }
  void set_manual_now(std::int64_t t) noexcept { manual_->now_.store(t, std::memory_order_release); }
  /// Worker only: the pending advance reached its target with nothing to run.
  void advance_done();
  /// A block of n fresh timer ids (any thread).
  std::uint64_t timer_id_block(std::uint64_t n = 1024) noexcept {
    return timer_ids_.fetch_add(n, std::memory_order_relaxed);
  }

private:
  ember::pid assign_serial(process* p);
  void start(process* p);
  process* alloc_block();
  std::uint64_t next_serial();
  void kill_all();
  void report_survivors() noexcept;

  runtime_options opts_;
  std::int64_t time_slice_ns_ = 0;
  std::shared_ptr<spdlog::logger> logger_;
  std::size_t default_class_;
  stack_pool stacks_;
  inject_queue<process> inject_;
  idle_set idle_;
  std::vector<std::unique_ptr<worker>> workers_;
  event_source* events_ = nullptr;           // opts_.events
  std::atomic<bool> event_waiter_{false};    // an idle worker waits in events_
  std::atomic<bool> event_spinner_{false};   // an idle worker polls events_ before it parks

  mutable std::mutex table_mu_;  // guards chunks_ and free_
  std::vector<std::unique_ptr<process[]>> chunks_;
  std::vector<process*> free_;
  static constexpr std::size_t chunk_size = 1024;

  carrier_pool carriers_;
  std::atomic<std::uint64_t> clock_tick_{0};

  name_table names_;
  manual_clock* manual_ = nullptr;  // opts_.clock, when set
  std::int64_t epoch_ns_ = fast_clock::steady_ns();
  std::atomic<std::int64_t> adv_target_{-1};
  std::mutex adv_mu_;  // pairs with adv_cv_; guards adv_done_
  std::condition_variable adv_cv_;
  bool adv_done_ = true;
  std::atomic<std::uint64_t> timer_ids_{1};
  std::atomic<std::uint64_t> serial_{1};
  std::atomic<std::int64_t> live_{0};
  std::atomic<std::uint64_t> monitor_ids_{1};
  std::atomic<std::int64_t> heaps_{0};
  std::atomic<std::int64_t> heap_bytes_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> abandoned_{false};
  std::mutex stop_call_mu_;  // held through stop(); guards stopped_
  std::mutex stop_mu_;       // pairs with stop_cv_
  std::condition_variable stop_cv_;
  bool stopped_ = false;
  sysmon monitor_{*this};  // last: it looks at everything above
};

/// Keep an abandoned runtime alive until the program exits.
void keep_forever(std::unique_ptr<runtime_core> core) noexcept;

}  // namespace ember::detail
