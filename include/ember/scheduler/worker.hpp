// ember/scheduler/worker.hpp — the state of one scheduler: what a carrier
// thread (carrier.hpp) runs.
//
// A worker runs processes, one slice at a time.  Where it looks for work, in
// order (steps of find_work):
//  1. when the monitor's clock tick moved since it last looked (sysmon.hpp),
//     and every 61st scheduling tick: due timers; every 61st tick, and after
//     a process yielded its slice: the inject queue (so neither starves);
//  2. the LIFO slot — the process just woken by a message sent from this
//     worker — which runs on the rest of the current slice's budget, so two
//     processes ping-ponging cannot keep the queue waiting longer than a slice;
//  3. its local run queue (FIFO);
//  4. due timers, then the inject queue (taking a batch into the local queue);
//  5. as one of at most half the awake workers, steal half of a random
//     victim's queue;
//  6. search a little longer (about 40 us, as a searcher, so publishers need
//     not wake anyone), then park (idle.hpp has the protocol), with a
//     timeout for its next timer.  With a manual clock, this is where a
//     pending advance() steps time to the next due timer (clock.hpp).
// With an event source (runtime_options::events, event_source.hpp), its
// ready completions run at step 1 (when the clock tick moved) and before
// step 4 (what they wake goes to the LIFO slot first); and one idle worker
// at a time parks *in* it, without the search, so a completion that comes
// while all is idle runs at once.  A worker that ran completions within the
// last millisecond first polls the source for up to 50 us before it parks
// (one such worker at a time):
// in a request/response exchange the next completion is usually that close,
// nearer than a parked thread's wake-up (tens of microseconds on a virtual
// CPU that has halted).  An idle runtime, or one with timers only, never
// spins.
// A process that yields its slice goes to the back of the local queue after
// the timers due by then have fired, so what they wake runs first.
//
// Timers (send_after, start_timer, receive timeouts) live in the wheel of
// the worker whose process started them (timer/wheel.hpp).  Cancelling on
// that worker unlinks at once; from elsewhere the node comes back through
// the remote-cancel stack, which the worker empties before it looks at its
// wheel.  A worker's wheel moves with the worker: when a held worker is
// handed to another carrier, its timers go on firing there.
//
// Threads: everything here is for the carrier that runs the worker, inside
// its lease (carrier.hpp), except the stealer view of `local` and
// `parker.unpark()`, which any thread may use, and push_remote_cancel.
// Ownership: a worker owns its run queue's entries while they are queued,
// its timers and its stack cache; the runtime owns the worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "ember/base/thread_slots.hpp"
#include "ember/process/process.hpp"
#include "ember/process/stack_pool.hpp"
#include "ember/scheduler/park.hpp"
#include "ember/scheduler/run_queue.hpp"
#include "ember/timer/wheel.hpp"

namespace ember {
class event_source;
}  // namespace ember

namespace ember::detail {

class runtime_core;
class carrier;

class worker {
public:
  worker(runtime_core& rt, std::uint32_t index);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker();

  // -- any thread -----------------------------------------------------------
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] runtime_core& runtime() const noexcept { return rt_; }
  run_queue<process>& queue() noexcept { return local_; }
  parker& park_handle() noexcept { return parker_; }
  /// Wake this worker if it is parked — on its futex, or waiting in the
  /// runtime's event source — or make its next park return at once.
  void unpark();

  // -- the carrier running it, in its lease -----------------------------------
  /// Run processes until the runtime shuts down (true) or the worker is
  /// taken from c while one of its processes runs (false: c holds no lease
  /// and must not touch the worker again; the process is c.left_behind).
  bool run_on(carrier& c);
  /// Make p runnable here: into the LIFO slot (message wake-ups) or the back
  /// of the local queue (new and preempted processes).
  [[nodiscard]] bool lifo_taken() const noexcept { return lifo_ != nullptr; }
  void push_lifo(process* p) {
    if (EMBER_UNLIKELY(lifo_ != nullptr)) push_back(lifo_);
    lifo_ = p;
  }
  void push_back(process* p);
  timer_wheel& wheel() noexcept { return wheel_; }
  timer_pool& timer_nodes() noexcept { return timer_pool_; }
  std::uint64_t next_timer_id() {
    if (timer_id_next_ == timer_id_end_) {
      timer_id_next_ = rt_timer_id_block();
      timer_id_end_ = timer_id_next_ + 1024;
    }
    return timer_id_next_++;
  }
  /// Unlink a cancelled node and recycle it (and its message).
  void release_timer(timer_node* n) noexcept;
  /// Take back a node cancelled in this worker's lease.  It is unlinked,
  /// and its message destroyed, in a batch (cancel_batch at a time, or
  /// before the wheel next moves or the worker parks): the batch overlaps
  /// the cache misses that one unlink at a time would wait for.
  void push_local_cancel(timer_node* n) noexcept {
    local_cancels_[local_cancel_count_++] = n;
    if (local_cancel_count_ == cancel_batch) drain_local_cancels();
  }
  /// Take back a node cancelled anywhere else (any thread).
  void push_remote_cancel(timer_node* n) noexcept {
    timer_node* h = remote_cancels_.load(std::memory_order_relaxed);
    do n->remote_next = h;
    while (!remote_cancels_.compare_exchange_weak(h, n, std::memory_order_release, std::memory_order_relaxed));
  }
  /// Block caches, refilled from / flushed to the runtime.
  std::vector<process*> free_blocks;
  std::uint64_t serial_next = 0, serial_end = 0;
  stack_cache& stacks() noexcept { return stacks_; }
  /// The carrier running it (guarded by the carrier_pool's mutex).
  carrier* owner = nullptr;

  /// What a process that switched out asked for, done on the thread it
  /// switched back to.  w is that thread's worker in its lease, or nullptr
  /// when the thread has none (the process then goes to the inject queue,
  /// its stack and block to the runtime's pools).
  static void after_slice(runtime_core& rt, worker* w, process* p, switch_request req);

private:
  process* find_work();
  process* take_inject();
  process* steal();
  void fire_timers();
  void fire(timer_node* n);
  void drain_remote_cancels() noexcept;
  void drain_local_cancels() noexcept;
  /// Recycle every node cancelled since the last call (local and remote).
  void reclaim_cancelled() noexcept {
    if (local_cancel_count_) drain_local_cancels();
    drain_remote_cancels();
  }
  bool manual_step();
  /// Run the event source's ready completions (runtime_options::events);
  /// false when there is none or nothing ran.
  bool poll_events();
  void drop_timers() noexcept;
  std::uint64_t rt_timer_id_block();
  void park_idle();
  /// Run p (and what takes over the rest of its slice); false when the
  /// worker was taken from c meanwhile.
  bool run(carrier& c, process* p);
  static void finish(runtime_core& rt, worker* w, process* p);
  static void release_stack(runtime_core& rt, worker* w, process* p) noexcept;
  [[nodiscard]] bool work_visible() const;

  runtime_core& rt_;
  const std::uint32_t index_;
  run_queue<process> local_;
  process* lifo_ = nullptr;
  timer_wheel wheel_;
  timer_pool timer_pool_{this};
  std::atomic<timer_node*> remote_cancels_{nullptr};
  static constexpr std::size_t cancel_batch = 128;
  std::size_t local_cancel_count_ = 0;
  timer_node* local_cancels_[cancel_batch];
  std::uint64_t timer_id_next_ = 0, timer_id_end_ = 0;
  parker parker_;
  std::atomic<bool> in_events_{false};  // parked in the event source's wait
  static constexpr std::chrono::milliseconds event_wait_slice{10};
  // I/O traffic: a worker whose event source ran completions within
  // io_spin_window polls it for up to io_spin before it parks (the next
  // completion of a request/response exchange is usually that close),
  // yielding its CPU between polls.
  std::int64_t last_io_ns_ = std::numeric_limits<std::int64_t>::min() / 2;  // fast_clock::now_ns()
  static constexpr std::chrono::microseconds io_spin{50};
  static constexpr std::chrono::milliseconds io_spin_window{1};
  /// Poll the event source while I/O is recent (see io_spin); true when
  /// the worker has work again.
  bool spin_for_events(event_source* ev);
  stack_cache stacks_;
  long budget_ = 0;             // reductions left in the current slice
  std::uint32_t ticks_left_ = 61;  // scheduling ticks to the next look outside the local queue
  std::uint64_t seen_clock_ = 0;  // the monitor's clock tick at the last timer check
  bool preempted_ = false;      // the last process run yielded its slice
  std::minstd_rand rng_;
};

}  // namespace ember::detail
