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
//     timeout for its next timer.
//
// Threads: everything here is worker only (the owning thread), except the
// stealer view of `local` and `parker.unpark()`, which any thread may use.
// Ownership: a worker owns its run queue's entries while they are queued,
// its timers and its stack cache; the runtime owns the worker.
#pragma once

#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "ember/process/process.hpp"
#include "ember/process/stack_pool.hpp"
#include "ember/scheduler/park.hpp"
#include "ember/scheduler/run_queue.hpp"
#include "ember/timer/timer_queue.hpp"

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

  // -- any thread -----------------------------------------------------------
  [[nodiscard]] std::uint32_t index() const noexcept { return index_; }
  [[nodiscard]] runtime_core& runtime() const noexcept { return rt_; }
  run_queue<process>& queue() noexcept { return local_; }
  parker& park_handle() noexcept { return parker_; }

  // -- worker only ----------------------------------------------------------
  /// Make p runnable here: into the LIFO slot (message wake-ups) or the back
  /// of the local queue (new and preempted processes).
  void push_lifo(process* p);
  void push_back(process* p);
  /// Arm a receive timeout for p's current wait.
  void add_timeout(const timeout_entry& e) { timers_.add(e); }
  /// Reductions left in the current slice.
  long budget = 0;
  /// Block caches (owner only), refilled from / flushed to the runtime.
  std::vector<process*> free_blocks;
  std::uint64_t serial_next = 0, serial_end = 0;
  stack_cache& stacks() noexcept { return stacks_; }
  /// This worker's sanitizer side of every switch.
  switch_side side;

private:
  void main();
  process* find_work();
  process* take_inject();
  process* steal();
  void fire_timers();
  void park_idle();
  void run(process* p);
  void finish(process* p);
  [[nodiscard]] bool work_visible() const;

  runtime_core& rt_;
  const std::uint32_t index_;
  run_queue<process> local_;
  process* lifo_ = nullptr;
  timer_queue timers_;
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
