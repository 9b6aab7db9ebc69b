// ember/scheduler/worker.hpp — one scheduler thread.
//
// A worker runs processes, one slice at a time.  Where it looks for work, in
// order (steps of find_work):
//  1. every 61st tick: due timers, then the inject queue (so neither starves);
//     after a process yielded its slice: the inject queue;
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
//
// Timers (send_after, start_timer, receive timeouts) live in the wheel of
// the worker whose process started them (timer/wheel.hpp).  Cancelling on
// that worker unlinks at once; from elsewhere the node comes back through
// the remote-cancel stack, which the worker empties before it looks at its
// wheel.
//
// Threads: everything here is worker only (the owning thread), except the
// stealer view of `local` and `parker.unpark()`, which any thread may use.
// Ownership: a worker owns its run queue's entries while they are queued,
// its timers and its stack cache; the runtime owns the worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "ember/process/process.hpp"
#include "ember/process/stack_pool.hpp"
#include "ember/scheduler/park.hpp"
#include "ember/scheduler/run_queue.hpp"
#include "ember/timer/wheel.hpp"

namespace ember::detail {

class runtime_core;

class worker {
public:
  worker(runtime_core& rt, std::uint32_t index);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker();

  void start();
  void join();
  /// Whether the thread has left its loop (after shutdown): join() will
  /// not block.  Any thread.
  [[nodiscard]] bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  /// Let the thread go without joining it (runtime::stop's last resort,
  /// for a thread held by a process that never returns to the runtime).
  void detach() { if (thread_.joinable()) thread_.detach(); }

  // -- any thread -----------------------------------------------------------
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] runtime_core& runtime() const noexcept { return rt_; }
  run_queue<process>& queue() noexcept { return local_; }
  parker& park_handle() noexcept { return parker_; }

  // -- worker only ----------------------------------------------------------
  /// Set by a process entry just before it returns to end its process with
  /// this reason instead of `normal` (cheaper than throwing an
  /// exit_exception through it).  Read and cleared by the worker right
  /// after the entry returns, on the same thread.
  std::optional<exit_reason> exit_on_return;
  /// Make p runnable here: into the LIFO slot (message wake-ups) or the back
  /// of the local queue (new and preempted processes).
  void push_lifo(process* p);
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
  /// Take back a node cancelled on this worker's own thread.  It is
  /// unlinked, and its message destroyed, in a batch (cancel_batch at a
  /// time, or before the wheel next moves or the worker parks): the batch
  /// overlaps the cache misses that one unlink at a time would wait for.
  void push_local_cancel(timer_node* n) noexcept {
    local_cancels_[local_cancel_count_++] = n;
    if (local_cancel_count_ == cancel_batch) drain_local_cancels();
  }
  /// Take back a node cancelled on another thread (any thread).
  void push_remote_cancel(timer_node* n) noexcept {
    timer_node* h = remote_cancels_.load(std::memory_order_relaxed);
    do n->remote_next = h;
    while (!remote_cancels_.compare_exchange_weak(h, n, std::memory_order_release, std::memory_order_relaxed));
  }
  /// Reductions left in the current slice.
  long budget = 0;
  /// Block caches (owner only), refilled from / flushed to the runtime.
  std::vector<process*> free_blocks;
  std::uint64_t serial_next = 0, serial_end = 0;
  stack_cache& stacks() noexcept { return stacks_; }
  /// This worker's sanitizer side of every switch.
  switch_side side;

private:
  std::atomic<bool> done_{false};  // set by the thread as it leaves main()
  void main();
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
  void drop_timers() noexcept;
  std::uint64_t rt_timer_id_block();
  void park_idle();
  void run(process* p);
  void finish(process* p);
  void release_stack(process* p) noexcept;
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
  stack_cache stacks_;
  std::uint64_t tick_ = 0;
  bool preempted_ = false;
  void* eh_globals_ = nullptr;  // this thread's C++ exception state  // the last process run yielded its slice
  std::minstd_rand rng_;
  std::thread thread_;
};

/// The worker running on this thread, or nullptr (any thread).
worker* this_worker() noexcept;
/// The process running on this thread, or nullptr (any thread).
process* this_process() noexcept;

}  // namespace ember::detail
