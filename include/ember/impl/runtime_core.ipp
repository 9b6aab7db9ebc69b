// ember/impl/runtime_core.ipp — runtime state, spawn, wait and stop
// (compiled once, in src/ember.cpp).  The stop protocol is described at the
// top of detail/runtime_core.hpp.
#pragma once

#include <algorithm>
#include <iterator>
#include <thread>

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/errors.hpp"
#include "ember/process_info.hpp"

namespace ember::detail {

namespace {
// Runtimes not yet stopping, in the order they started (ember::now()
// outside a process reads the last).
std::mutex live_runtimes_mu;
std::vector<runtime_core*> live_runtimes;

void forget_runtime(runtime_core* rt) noexcept {
  std::lock_guard lk(live_runtimes_mu);
  live_runtimes.erase(std::remove(live_runtimes.begin(), live_runtimes.end(), rt), live_runtimes.end());
}

runtime_options validated(runtime_options o) {
  if (o.clock) {
    if (o.workers > 1)
      throw invalid_option(fmt::format(
          "runtime_options::workers = {}: a runtime with a manual clock runs one worker (use 0 or 1)", o.workers));
    o.workers = 1;
  }
  if (o.workers == 0) o.workers = std::max(1u, std::thread::hardware_concurrency());
  if (o.workers > 1024)
    throw invalid_option(fmt::format("runtime_options::workers = {}: at most 1024 workers", o.workers));
  if (o.reductions < 1 || o.reductions > 1000000000)
    throw invalid_option(fmt::format(
        "runtime_options::reductions = {}: must be between 1 and 1000000000", o.reductions));
  if (o.stack_size < min_stack_size || o.stack_size > max_stack_size)
    throw invalid_option(fmt::format(
        "runtime_options::stack_size = {} bytes: must be between {} and {} bytes", o.stack_size,
        min_stack_size, max_stack_size));
  if (o.stop_timeout.count() < 1 || o.stop_timeout > std::chrono::hours(24))
    throw invalid_option(fmt::format("runtime_options::stop_timeout = {} ms: must be between 1 ms and 24 h",
                                     o.stop_timeout.count()));
  if (o.max_heap_size == unlimited) o.max_heap_size = 0;
  using std::chrono::microseconds;
  if (o.time_slice != microseconds::zero() && (o.time_slice < microseconds(50) || o.time_slice > std::chrono::seconds(1)))
    throw invalid_option(fmt::format("runtime_options::time_slice = {} us: must be 0 (off) or between 50 us and 1 s",
                                     o.time_slice.count()));
  if (o.handoff_after != microseconds::zero() &&
      (o.handoff_after < microseconds(100) || o.handoff_after > std::chrono::seconds(10)))
    throw invalid_option(fmt::format(
        "runtime_options::handoff_after = {} us: must be 0 (never) or between 100 us and 10 s", o.handoff_after.count()));
  if (o.long_schedule < std::chrono::milliseconds::zero() || o.long_schedule > std::chrono::hours(1))
    throw invalid_option(fmt::format("runtime_options::long_schedule = {} ms: must be between 0 (off) and 1 hour",
                                     o.long_schedule.count()));
  if (o.blocking_threads < 1 || o.blocking_threads > 4096)
    throw invalid_option(fmt::format("runtime_options::blocking_threads = {}: must be between 1 and 4096",
                                     o.blocking_threads));
  const long_message_queue& lq = o.long_message_queue;
  if (lq.enable > 65535)
    throw invalid_option(fmt::format(
        "runtime_options::long_message_queue.enable = {}: at most 65535 (0 turns the report off)", lq.enable));
  if (lq.enable != 0 && lq.disable >= lq.enable)
    throw invalid_option(fmt::format(
        "runtime_options::long_message_queue.disable = {}: must be below enable ({}); 0 means enable / 2",
        lq.disable, lq.enable));
  return o;
}
}  // namespace

runtime_core::runtime_core(runtime_options opts)
    : opts_(validated(std::move(opts))),
      logger_(opts_.logger ? opts_.logger : spdlog::default_logger()),
      default_class_(stack_pool::size_class(opts_.stack_size)),
      idle_(opts_.workers),
      carriers_(*this, opts_.blocking_threads) {
  if (opts_.clock) {
    runtime_core* none = nullptr;
    if (!opts_.clock->rt_.compare_exchange_strong(none, this))
      throw invalid_option("runtime_options::clock: this manual_clock already drives another runtime");
    manual_ = opts_.clock.get();
  }
  lease_fence::init();
  events_ = opts_.events.get();
  time_slice_ns_ = opts_.clock ? 0 : std::chrono::nanoseconds(opts_.time_slice).count();
  workers_.reserve(opts_.workers);
  for (std::uint32_t i = 0; i < opts_.workers; ++i)
    workers_.push_back(std::make_unique<worker>(*this, i));
  std::vector<worker*> ws;
  for (auto& w : workers_) ws.push_back(w.get());
  carriers_.start(ws);
  monitor_.start();
  std::lock_guard lk(live_runtimes_mu);
  live_runtimes.push_back(this);
}

bool runtime_core::latest_now_ns(std::int64_t& out) noexcept {
  // Under the lock: a runtime leaves the list (stop) before it is destroyed.
  std::lock_guard lk(live_runtimes_mu);
  if (live_runtimes.empty()) return false;
  out = live_runtimes.back()->now_ns();
  return true;
}

scheduler_stats runtime_core::scheduler() const {
  const pool_counts c = carriers_.counts();
  scheduler_stats s;
  s.workers = worker_count();
  s.threads = c.threads;
  s.spare_threads = c.spare;
  s.off_scheduler = c.detached;
  s.handoffs = c.handoffs;
  s.handoffs_refused = monitor_.handoffs_refused();
  s.blocking_waits = c.blocking_waits;
  s.preemptions = monitor_.preemptions();
  s.long_schedules = monitor_.long_schedules();
  return s;
}

runtime_core::~runtime_core() {
  stop();
  if (manual_) manual_->rt_.store(nullptr);
  // Every process has exited; free blocks hold closed, empty mailboxes.
}

process* runtime_core::prepare_spawn(const spawn_options& o, const char* what) {
  if (o.mailbox.capacity > max_mailbox_capacity)
    throw invalid_option(fmt::format("spawn_options::mailbox.capacity = {}: at most {} (0: unbounded)",
                                     o.mailbox.capacity, max_mailbox_capacity));
  if (unsigned(o.mailbox.policy) > unsigned(overflow::kill))
    throw invalid_option(fmt::format("spawn_options::mailbox.policy = {}: not an ember::overflow",
                                     unsigned(o.mailbox.policy)));
  std::size_t cls = default_class_;
  if (o.stack_size != 0) {
    if (o.stack_size < min_stack_size || o.stack_size > max_stack_size)
      throw invalid_option(fmt::format(
          "spawn_options::stack_size = {} bytes: must be 0 (the runtime's default) or between "
          "{} and {} bytes",
          o.stack_size, min_stack_size, max_stack_size));
    cls = stack_pool::size_class(o.stack_size);
  }
  // Count the process as live before looking at stopping_, so stop() either
  // sees it or it sees stop().
  live_.fetch_add(1, std::memory_order_seq_cst);
  if (stopping_.load(std::memory_order_seq_cst)) {
    on_process_exit();
    throw runtime_stopped(what);
  }
  process* p;
  try {
    p = alloc_block();
  } catch (...) {
    on_process_exit();
    throw;
  }
  p->stack_class = cls;
  p->bound = o.mailbox;
  p->heap_limit = o.max_heap_size == 0 ? opts_.max_heap_size : o.max_heap_size == unlimited ? 0 : o.max_heap_size;
  return p;
}

void runtime_core::abandon_spawn(process* p) {
  worker_lease w;
  release_block(w && &w->runtime() == this ? w.get() : nullptr, p);
  on_process_exit();
}

ember::pid runtime_core::assign_serial(process* p) {
  std::uint64_t s = next_serial();
  p->mbox.open(p->bound, opts_.long_message_queue);
  p->kill_pending.store(false, std::memory_order_relaxed);
  p->reductions.store(0, std::memory_order_relaxed);
  p->status.store(process_status::runnable, std::memory_order_relaxed);
  std::memset(p->eh_state, 0, sizeof p->eh_state);
  {
    std::lock_guard lk(p->hooks_lock);
    p->hooks_closed = false;
    p->trap_exit = false;
    // ordering: release publishes the fresh block to senders holding the pid.
    p->serial.store(s, std::memory_order_release);
  }
  return {p, s};
}

void runtime_core::start(process* p) {
  worker_lease w;
  if (w && &w->runtime() == this) w->push_back(p);
  else inject(p);
}

process* runtime_core::alloc_block() {
  worker_lease w;
  if (w && &w->runtime() == this) {
    if (w->free_blocks.empty()) {
      std::lock_guard lk(table_mu_);
      for (int i = 0; i < 64 && !free_.empty(); ++i) {
        w->free_blocks.push_back(free_.back());
        free_.pop_back();
      }
      if (w->free_blocks.empty()) {
        auto chunk = std::make_unique<process[]>(chunk_size);
        for (std::size_t i = 0; i < chunk_size; ++i) chunk[i].rt = this;
        for (std::size_t i = chunk_size; i-- > 1;) free_.push_back(&chunk[i]);
        w->free_blocks.push_back(&chunk[0]);
        chunks_.push_back(std::move(chunk));
      }
    }
    process* p = w->free_blocks.back();
    w->free_blocks.pop_back();
    return p;
  }
  std::lock_guard lk(table_mu_);
  if (free_.empty()) {
    auto chunk = std::make_unique<process[]>(chunk_size);
    for (std::size_t i = 0; i < chunk_size; ++i) chunk[i].rt = this;
    for (std::size_t i = chunk_size; i-- > 0;) free_.push_back(&chunk[i]);
    chunks_.push_back(std::move(chunk));
  }
  process* p = free_.back();
  free_.pop_back();
  return p;
}

void runtime_core::release_block(worker* w, process* p) {
  if (!w) {
    std::lock_guard lk(table_mu_);
    free_.push_back(p);
    return;
  }
  w->free_blocks.push_back(p);
  if (w->free_blocks.size() >= 256) {
    std::lock_guard lk(table_mu_);
    while (w->free_blocks.size() > 128) {
      free_.push_back(w->free_blocks.back());
      w->free_blocks.pop_back();
    }
  }
}

std::uint64_t runtime_core::next_serial() {
  worker_lease w;
  if (w && &w->runtime() == this) {
    if (w->serial_next == w->serial_end) {
      w->serial_next = serial_.fetch_add(1024, std::memory_order_relaxed);
      w->serial_end = w->serial_next + 1024;
    }
    return w->serial_next++;
  }
  return serial_.fetch_add(1, std::memory_order_relaxed);
}

void runtime_core::on_process_exit() {
  if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1 && stopping()) {
    std::lock_guard lk(stop_mu_);
    stop_cv_.notify_all();
  }
}

void runtime_core::inject(process* p) {
  inject_.push(p);
  notify_one();
}

void runtime_core::notify_one() {
  int w = idle_.pick_sleeper();
  if (w >= 0) workers_[std::size_t(w)]->unpark();
}

namespace {
// wake's rare cases, out of line: its common case then calls nothing and
// saves no registers.
[[gnu::noinline]] void wake_contended(carrier* c, process* p) {
  // The lease was taken while the monitor was deciding (see enter()).
  if (worker* w = c->enter_contended()) {
    w->push_lifo(p);
    c->leave();
  } else {
    c->runtime().inject(p);
  }
}
[[gnu::noinline]] void wake_displacing(carrier* c, worker* w, process* p) {
  w->push_lifo(p);  // the LIFO slot was taken: its process goes to the queue
  c->leave();
}
}  // namespace

void runtime_core::wake(process* p) {
  p->status.store(process_status::runnable, std::memory_order_relaxed);
  // A worker_lease written out: this is the hottest of them (every message
  // to a waiting process).
  carrier* const c = this_carrier();
  if (EMBER_UNLIKELY(!c || &c->runtime() != this)) return inject(p);
  worker* const w = c->enter_fast();
  if (EMBER_UNLIKELY(w == nullptr)) return inject(p);
  if (EMBER_UNLIKELY(carrier::is_contended(w))) return wake_contended(c, p);
  if (EMBER_UNLIKELY(w->lifo_taken())) return wake_displacing(c, w, p);
  w->push_lifo(p);
  c->leave();
}

namespace {
void check_not_in_process(const runtime_core* rt) {
  if (this_process() && this_process()->rt == rt)
    throw error("ember::runtime::wait blocks its thread and must not be called from inside a "
                "process of the same runtime; use a monitor instead");
}
}  // namespace

exit_reason runtime_core::wait_latch(const std::shared_ptr<exit_latch>& latch) {
  check_not_in_process(this);
  while (!latch->done.load(std::memory_order_acquire)) latch->done.wait(false, std::memory_order_acquire);
  return latch->reason;
}

exit_reason runtime_core::wait(ember::pid target) {
  check_not_in_process(this);
  process* p = target.block();
  if (!p) return exit_reason::noproc();
  auto latch = std::make_shared<exit_latch>();
  {
    std::lock_guard lk(p->hooks_lock);
    if (p->serial.load(std::memory_order_acquire) != target.serial() || p->hooks_closed)
      return exit_reason::noproc();
    p->signals().waiters.push_back(latch);
  }
  return wait_latch(latch);
}

void runtime_core::kill_all() {
  // Kill each live process once (one already killed is on its way out and
  // is skipped without its lock), allocating nothing per waiting process:
  // kill_locked_deferred unblocks it without a message, and the processes
  // it unblocks go to the inject queue in batches.
  process* woken[256];
  std::size_t n = 0;
  auto flush = [&] {
    if (n == 0) return;
    inject_.push_batch(woken, n);
    notify_one();
    n = 0;
  };
  std::lock_guard lk(table_mu_);
  for (auto& chunk : chunks_) {
    for (std::size_t i = 0; i < chunk_size; ++i) {
      process* p = &chunk[i];
      if (p->serial.load(std::memory_order_acquire) == 0 || p->kill_pending.load(std::memory_order_relaxed)) continue;
      bool wake_it = false;
      {
        std::lock_guard hk(p->hooks_lock);
        if (!p->hooks_closed) wake_it = kill_locked_deferred(p, exit_reason::killed());
      }
      if (!wake_it) continue;
      p->status.store(process_status::runnable, std::memory_order_relaxed);
      woken[n++] = p;
      if (n == std::size(woken)) flush();
    }
  }
  flush();
}

void runtime_core::stop() {
  if (this_process() && this_process()->rt == this)
    throw error("ember::runtime::stop must not be called from inside a process of the same "
                "runtime; return from (or exit) the root process instead");
  std::lock_guard call(stop_call_mu_);
  if (stopped_) return;
  forget_runtime(this);
  stopping_.store(true, std::memory_order_seq_cst);
  const auto give_up_at = std::chrono::steady_clock::now() + opts_.stop_timeout;
  bool gave_up = false;
  // Kill everything once; kill again only when no process has exited for a
  // while (one spawned during the pass may have been missed), so the stop
  // stays linear in the number of processes.
  std::int64_t before = 0;
  bool killed = false;
  for (;;) {
    const std::int64_t live = live_.load(std::memory_order_seq_cst);
    if (live == 0) break;
    if (!killed || live == before) kill_all();
    killed = true;
    before = live;
    std::unique_lock lk(stop_mu_);
    if (stop_cv_.wait_for(lk, std::chrono::milliseconds(20),
                          [this] { return live_.load(std::memory_order_seq_cst) == 0; }))
      break;
    if (std::chrono::steady_clock::now() >= give_up_at) {
      gave_up = true;
      break;
    }
  }
  if (gave_up) report_survivors();
  shutdown_.store(true, std::memory_order_seq_cst);
  for (auto& w : workers_) w->unpark();
  if (gave_up) {
    // A carrier whose thread a survivor holds (plain C++ code that never
    // returns to the runtime) is let go; the others leave their loop at
    // once.  The runtime's memory then stays (runtime::~runtime).
    abandoned_.store(true, std::memory_order_release);
  }
  carriers_.stop(gave_up ? std::chrono::milliseconds(100) : std::chrono::milliseconds(-1));
  monitor_.stop();
  if (gave_up) {
    // A survivor no thread runs is never resumed: what its mailbox holds
    // is freed now (later sends to it are dropped).  One that a detached
    // thread runs closes its own when it ends; it will never receive what
    // is queued (its kill is pending: every runtime call throws it), so
    // that is freed now — a wake signal that the kill queued would
    // otherwise be held until the program exits, where it could only be
    // reported as a leak.
    std::lock_guard lk(table_mu_);
    for (auto& chunk : chunks_)
      for (std::size_t i = 0; i < chunk_size; ++i) {
        process* p = &chunk[i];
        if (p->serial.load(std::memory_order_acquire) == 0) continue;
        if (p->status.load(std::memory_order_relaxed) != process_status::running) p->mbox.close();
        else p->mbox.discard_inbox();
      }
  }
  advance_done();  // a test waiting in advance() is released
  stopped_ = true;
}

void runtime_core::report_survivors() noexcept {
  try {
    for (const ember::pid& p : processes()) {
      std::optional<process_snapshot> s = ember::process_info(p);
      if (!s) continue;
      // The scheduler's view (process_info says "exiting" for any killed process).
      const process_status st = p.block()->status.load(std::memory_order_relaxed);
      const char* status = st == process_status::running    ? "running (in code that does not call the runtime)"
                           : st == process_status::runnable ? "runnable (it catches its kill and goes on)"
                           : st == process_status::waiting  ? "waiting"
                                                            : "exiting";
      logger_->error(
          "runtime::stop: process {}{}{} did not exit within {} ms of being killed (initial call {}, status {}); "
          "abandoned: it is not resumed, its stack is not unwound",
          p, s->registered_name.empty() ? "" : " ", s->registered_name, opts_.stop_timeout.count(), s->initial_call,
          status);
    }
  } catch (...) {
    // A failing log sink must not keep stop from returning.
  }
}

void keep_forever(std::unique_ptr<runtime_core> core) noexcept {
  // Never freed (and never destroyed: its destructor would join threads
  // that an abandoned process holds); reachable, so leak checkers stay quiet.
  static std::mutex mu;
  static auto* kept = new std::vector<std::unique_ptr<runtime_core>>();
  std::lock_guard lk(mu);
  try {
    kept->push_back(std::move(core));
  } catch (...) {
    (void)core.release();
  }
}

std::vector<ember::pid> runtime_core::processes() const {
  std::vector<ember::pid> out;
  std::lock_guard lk(table_mu_);
  for (auto& chunk : chunks_)
    for (std::size_t i = 0; i < chunk_size; ++i)
      if (std::uint64_t s = chunk[i].serial.load(std::memory_order_acquire))
        out.emplace_back(&chunk[i], s);
  return out;
}

void runtime_core::advance(std::int64_t d_ns) {
  if (this_process() && this_process()->rt == this)
    throw error("ember::manual_clock::advance waits for the runtime and must not be called from inside one "
                "of its processes");
  if (d_ns < 0) throw bad_argument("ember::manual_clock::advance: the duration must not be negative");
  std::unique_lock lk(adv_mu_);
  if (shutting_down()) throw runtime_stopped("manual_clock::advance");
  adv_done_ = false;
  adv_target_.store(now_ns() + d_ns, std::memory_order_release);
  workers_[0]->unpark();
  adv_cv_.wait(lk, [this] { return adv_done_; });
}

void runtime_core::advance_done() {
  std::lock_guard lk(adv_mu_);
  adv_target_.store(-1, std::memory_order_release);
  adv_done_ = true;
  adv_cv_.notify_all();
}

void runtime_core::long_queue_report(process* p, std::size_t len, std::size_t enable) noexcept {
  try {
    std::string name;
    const ember::pid who = p->self_pid();
    {
      std::lock_guard lk(p->hooks_lock);
      if (p->sig) name = p->sig->name;
    }
    logger_->warn("long message queue: process {}{}{} has {} messages (threshold {})", who,
                  name.empty() ? "" : " ", name, len, enable);
  } catch (...) {
    // A failing log sink must not fail the send.
  }
}

void runtime_core::crash_report(ember::pid p, const exit_reason& r) {
  try {
    logger_->error("crash report: process {} exited with reason: {}", p, r.to_string());
  } catch (...) {
    // A failing log sink must not take the worker down.
  }
}

}  // namespace ember::detail

namespace ember {

time_point now() {
  if (detail::process* p = detail::this_process()) return time_point(std::chrono::nanoseconds(p->rt->now_ns()));
  std::int64_t ns = 0;
  if (!detail::runtime_core::latest_now_ns(ns))
    throw error("ember::now: no runtime is running (call it from a process, or use runtime::now())");
  return time_point(std::chrono::nanoseconds(ns));
}

runtime_clock::time_point runtime_clock::now() { return ember::now(); }

}  // namespace ember
