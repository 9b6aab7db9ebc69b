// ember/scheduler/impl/worker.ipp — the worker loop, a slice of a process, and process
// exit (compiled once, in src/ember.cpp, after carrier.ipp).
//
// Process exit (worker::finish), in order:
//  1. the fiber has unwound and stored its exit reason, then switched back;
//  2. the mailbox is closed: queued messages are destroyed, later sends drop;
//     the serial is cleared: the pid no longer names a live process;
//     (Before switching back, the body closed the process to signals under
//     its hook lock and stored its reason: no link, monitor, name or kill
//     can be added from then on.)
//  3. deliver_exit: the name is released, watchers get `down`, linked
//     processes get exit signals, exit waiters are released;
//  4. the stack goes back to the cache, the block goes to the free list,
//     the live count drops.
// A process whose carrier lost its worker during its last slice finishes
// the same way, with the runtime's pools in place of the worker's caches.
#pragma once

#include <cstring>
#include <exception>
#include <thread>

#include "ember/detail/call.hpp"
#include "ember/detail/deliver.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/heap.hpp"
#include "ember/scheduler/carrier.hpp"
#include "ember/scheduler/event_source.hpp"
#include "ember/scheduler/worker.hpp"

namespace ember::detail {

// ---- worker -----------------------------------------------------------------

worker::worker(runtime_core& rt, std::uint32_t index)
    : rt_(rt), index_(index), stacks_(rt.stacks(), rt.default_stack_class()),
      rng_(index * 7919u + 1u) {}

worker::~worker() {
  drop_timers();  // and whatever was cancelled from outside since
}

bool worker::run_on(carrier& c) {
  while (!rt_.shutting_down()) {
    if (process* p = find_work()) {
      if (!run(c, p)) return false;
    } else {
      park_idle();
    }
  }
  return true;
}

void worker::unpark() {
  parker_.unpark();
  // ordering: seq_cst; pairs with park_idle's store of in_events_ and its
  // look at the parker afterwards: one of the two sees the other.
  if (in_events_.load(std::memory_order_seq_cst)) rt_.events()->wake();
}

bool worker::poll_events() {
  event_source* ev = rt_.events();
  if (!ev || ev->poll() == 0) return false;
  last_io_ns_ = fast_clock::now_ns();
  return true;
}

bool worker::spin_for_events(event_source* ev) {
  const std::int64_t t0 = fast_clock::now_ns();
  if (t0 - last_io_ns_ > std::chrono::nanoseconds(io_spin_window).count()) return false;
  // One spinner at a time: a second would only take a CPU from whoever
  // makes the I/O (a client on the same machine, the other processes).
  if (!rt_.claim_event_spin()) return false;
  const std::int64_t until = t0 + std::chrono::nanoseconds(io_spin).count();
  bool found = false;
  for (;;) {
    if (ev->poll() != 0) {
      last_io_ns_ = fast_clock::now_ns();
      found = true;
      break;
    }
    if (work_visible() || rt_.shutting_down()) {
      found = true;
      break;
    }
    // Yield rather than pause: a thread that is runnable on this CPU (the
    // client making the I/O, on a machine it shares) gets the CPU at once,
    // and the spin goes on when it is done.  With `ember_io_bench ember`
    // on 2 CPUs, client included: C = 1000 183 k req/s, against 152 k with
    // pause and 165 k with no spin; C = 1 keeps its 26 µs round trip.
    std::this_thread::yield();
    if (fast_clock::now_ns() >= until) break;
  }
  rt_.release_event_spin();
  return found;
}

void worker::push_back(process* p) {
  local_.push(p, [this](process** items, std::size_t n) { rt_.injector().push_batch(items, n); });
  rt_.notify_one();
}

process* worker::take_inject() {
  process* first = nullptr;
  std::size_t n = rt_.injector().pop_batch(local_.capacity / 2, [&](process* p) {
    if (!first) first = p;
    else local_.push(p, [this](process** items, std::size_t k) { rt_.injector().push_batch(items, k); });
  });
  if (n > 1) rt_.notify_one();
  return first;
}

process* worker::steal() {
  std::uint32_t n = rt_.worker_count();
  if (n <= 1) return nullptr;
  std::uint32_t start = rng_() % n;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t v = (start + i) % n;
    if (v == index_) continue;
    if (process* p = rt_.worker_at(v).queue().steal_into(local_)) return p;
  }
  return take_inject();
}

// ---- timers -------------------------------------------------------------------

std::uint64_t worker::rt_timer_id_block() { return rt_.timer_id_block(); }

void worker::release_timer(timer_node* n) noexcept {
  if (n->linked) wheel_.remove(n);
  n->drop_message();
  timer_pool_.put(n);
}

void worker::drain_local_cancels() noexcept {
  // Each unlink writes two neighbours that are anywhere in the pool: touch
  // them ahead, so a batch waits for memory about once instead of per node.
  constexpr std::size_t ahead = 8;
  const std::size_t n = local_cancel_count_;
  for (std::size_t i = 0; i < n && i < ahead; ++i) {
    timer_node* t = local_cancels_[i];
    if (t->prev) __builtin_prefetch(t->prev, 1);
    if (t->next) __builtin_prefetch(t->next, 1);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (i + ahead < n) {
      timer_node* t = local_cancels_[i + ahead];
      if (t->prev) __builtin_prefetch(t->prev, 1);
      if (t->next) __builtin_prefetch(t->next, 1);
    }
    release_timer(local_cancels_[i]);
  }
  local_cancel_count_ = 0;
}

void worker::drain_remote_cancels() noexcept {
  if (!remote_cancels_.load(std::memory_order_relaxed)) return;
  timer_node* n = remote_cancels_.exchange(nullptr, std::memory_order_acquire);
  while (n) {
    timer_node* nx = n->remote_next;
    release_timer(n);
    n = nx;
  }
}

void worker::fire(timer_node* n) {
  std::atomic<std::uint64_t>& word = n->head().word;
  std::uint64_t w = word.load(std::memory_order_relaxed);
  // ordering: acq_rel; the CAS against cancel_timer's decides the timer.
  if ((w & 3) != timer_pending ||
      !word.compare_exchange_strong(w, (w & ~std::uint64_t{3}) | timer_fired, std::memory_order_acq_rel)) {
    return;  // cancelled: freed when its canceller's batch or stack is drained
  }
  if (n->kind != timer_kind::receive) {
    process* p = n->dest;
    std::uint64_t serial = n->dest_serial;
    if (n->kind == timer_kind::named) {  // a name is looked up when the timer is due
      std::optional<ember::pid> to = rt_.names().whereis(*n->dest_name);
      p = to ? to->block() : nullptr;
      serial = to ? to->serial() : 0;
    }
    if (p && p->serial.load(std::memory_order_acquire) == serial) {
      envelope* e;
      if (n->ops) {
        e = n->ops->deliver(n->storage, serial);
        n->ops = nullptr;
      } else {
        e = n->msg;
        n->msg = nullptr;
        e->serial = serial;
      }
      delivery refused;
      const bool watched = p->mbox.watched();
      // A bounded mailbox's bound applies as for a send.
      if (!(EMBER_UNLIKELY(watched) && bound_refuses(p, e, refused))) {
        if (p->mbox.push(e) == mailbox::push_result::woke_owner) {
          // Woken here, into this worker's queue (not the LIFO slot, which
          // the timer pass does not run).
          p->status.store(process_status::runnable, std::memory_order_relaxed);
          push_back(p);
        }
        if (EMBER_UNLIKELY(watched)) watch_length(p);
      }
    }
    n->drop_message();  // whatever is left: the process has exited
  } else if (process* p = n->dest; p->serial.load(std::memory_order_acquire) == n->dest_serial &&
                                    p->wait_seq.load(std::memory_order_relaxed) == n->wait_seq) {
    // A receive timeout: wake the process if it waits in that receive.  If
    // it is awake (a message it did not take woke it) it may be on its way
    // back to block: leave it a wake signal, so that block fails and it
    // looks at the clock again instead of waiting with no timer left.
    if (p->mbox.unblock() ||
        p->mbox.push(make_envelope<wake_signal>(n->dest_serial)) == mailbox::push_result::woke_owner) {
      p->status.store(process_status::runnable, std::memory_order_relaxed);
      push_back(p);
    }
  }
  timer_pool_.put(n);
}

void worker::fire_timers() {
  reclaim_cancelled();
  if (wheel_.empty()) return;
  std::int64_t now = rt_.now_ns();
  if (now < 0) return;
  wheel_.advance(std::uint64_t(now) / 1000000u, [this](timer_node* n) { fire(n); });
}

bool worker::manual_step() {
  const std::int64_t target = rt_.advance_target();
  if (target < 0) return false;
  reclaim_cancelled();
  const std::int64_t now = rt_.now_ns();
  std::uint64_t t;
  if (wheel_.next_tick(t) && std::int64_t(t) * 1000000 <= target) {
    rt_.set_manual_now(std::max(now, std::int64_t(t) * 1000000));
    fire_timers();
    return true;  // run what the timers woke, then step again
  }
  if (now < target) rt_.set_manual_now(target);
  fire_timers();
  if (lifo_ || !local_.empty() || work_visible()) return true;
  rt_.advance_done();
  return false;
}

void worker::drop_timers() noexcept {
  reclaim_cancelled();
  // Pending message timers own their envelopes.
  timer_pool_.for_each([](timer_node* n) {
    if ((n->head().word.load(std::memory_order_relaxed) & 3) != timer_fired) n->drop_message();
  });
}

process* worker::find_work() {
  const long full = rt_.options().reductions;
  // Timers by time: when the monitor's clock has ticked since the last look
  // (a busy worker), and every 61st tick.
  const std::uint64_t clock = rt_.clock_tick();
  if (EMBER_UNLIKELY(clock != seen_clock_)) {
    seen_clock_ = clock;
    fire_timers();
    poll_events();
  }
  // Every 61st tick, and after a process used up its slice, look outside
  // the local queue first, so that nothing waits there longer than a slice.
  const bool sixty_first = --ticks_left_ == 0;
  if (EMBER_UNLIKELY(sixty_first || preempted_)) {
    preempted_ = false;
    if (sixty_first) {
      ticks_left_ = 61;
      fire_timers();
    }
    if (process* p = take_inject()) {
      if (lifo_) push_back(lifo_), lifo_ = nullptr;
      budget_ = full;
      return p;
    }
  }
  if (lifo_) {
    process* p = lifo_;
    lifo_ = nullptr;
    if (budget_ > 0) return p;  // runs on what is left of the slice
    push_back(p);
  }
  if (process* p = local_.pop()) {
    budget_ = full;
    return p;
  }
  fire_timers();
  if (poll_events() && lifo_) {
    process* q = lifo_;
    lifo_ = nullptr;
    budget_ = full;
    return q;
  }
  process* p = local_.pop();
  if (!p) p = take_inject();
  if (!p && rt_.idle().begin_search()) {
    p = steal();
    bool last = rt_.idle().end_search();
    if (p && last) rt_.notify_one();
  }
  if (p) budget_ = full;
  return p;
}

bool worker::work_visible() const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!rt_.injector().empty()) return true;
  for (std::uint32_t i = 0; i < rt_.worker_count(); ++i)
    if (!rt_.worker_at(i).queue().empty()) return true;
  return false;
}

void worker::park_idle() {
  if (rt_.manual() && manual_step()) return;
  event_source* const ev = rt_.events();
  // Requests and responses in flight: their next completion is likely a
  // few microseconds away, closer than a parked thread's wake-up.
  if (ev && !rt_.manual() && spin_for_events(ev)) return;
  // Then, with an event source, one idle worker waits in it (without the
  // searcher's spin below: a completion wakes it as fast as a futex would,
  // and that spin would only delay the wait).
  const bool event_waiter = ev && rt_.claim_event_wait();
  // Spin briefly as a searcher first: work that shows up within a few tens
  // of microseconds is taken without a futex round trip, and while we count
  // as searching, whoever publishes work need not wake anyone.
  if (!ev && rt_.idle().begin_search()) {
    bool found = false;
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(40);
    for (int i = 0; !found && !rt_.shutting_down(); ++i) {
      __builtin_ia32_pause();
      if ((i & 63) == 63) {
        found = work_visible();
        if (!found && std::chrono::steady_clock::now() >= until) break;
      }
    }
    bool last = rt_.idle().end_search();
    if (found) {
      if (last) rt_.notify_one();
      return;
    }
  }
  rt_.idle().to_parked(index_);
  if (work_visible() || rt_.shutting_down()) {
    rt_.idle().cancel_park(index_);
    if (event_waiter) rt_.release_event_wait();
    return;
  }
  std::chrono::nanoseconds timeout{-1};
  reclaim_cancelled();
  std::uint64_t t;
  if (!rt_.manual() && wheel_.next_tick(t)) {  // manual time moves only in advance()
    std::int64_t left = std::int64_t(t) * 1000000 - rt_.now_ns();
    timeout = std::chrono::nanoseconds(left > 0 ? left : 0);
  }
  if (event_waiter) {
    // ordering: seq_cst; then the parker's state: a notifier that came
    // before this store left its mark there (unpark() saw no waiter).
    in_events_.store(true, std::memory_order_seq_cst);
    // In slices of at most event_wait_slice: wake() posts to the event
    // source, and another worker's poll() may run that post instead of
    // this wait; the worker that did so is awake and takes the new work,
    // but a shutdown needs this one back.
    if (timeout.count() < 0 || timeout > event_wait_slice) timeout = event_wait_slice;
    if (!parker_.take_notification() && ev->wait(timeout) != 0) last_io_ns_ = fast_clock::now_ns();
    in_events_.store(false, std::memory_order_relaxed);
    rt_.release_event_wait();
  } else {
    parker_.park(timeout);
  }
  rt_.idle().cancel_park(index_);
  rt_.monitor().wake_if_asleep();
}

bool worker::run(carrier& c, process* p) {
  auto* g = static_cast<eh_globals*>(c.eh_globals);
  for (;;) {
    if (!p->stk) {
      p->stk = p->stack_class == stacks_.size_class() ? stacks_.acquire()
                                                      : rt_.stacks().acquire(p->stack_class);
      p->side.stack_bottom = p->stk.usable_bottom();
      p->side.stack_size = p->stk.usable_size();
      p->has_stack.store(true, std::memory_order_relaxed);
#if EMBER_TSAN
      p->side.tsan_fiber = __tsan_create_fiber(0);
#endif
      p->ctx = make_context(p->stk.usable_bottom(), p->stk.usable_size(), &process_entry);
    }
    p->status.store(process_status::running, std::memory_order_relaxed);
    {
      const long give = budget_ < slice_chunk ? budget_ : slice_chunk;
      p->budget.store(give, std::memory_order_relaxed);
      p->budget_reserve = budget_ - give;
      p->slice_t0 = 0;
    }
    tl_process = p;
    eh_globals mine = *g;
    std::memcpy(g, p->eh_state, sizeof(eh_globals));
    const long before = budget_;
    const std::uint64_t slice = c.slice_begin(p);
    transfer t = switch_to(p->ctx, p, c.side, p->side);
    const bool kept = c.slice_end(slice);
    if (EMBER_UNLIKELY(c.long_schedule_due(slice))) c.report_long_schedule(p);
    // From here, while !kept, nothing of this worker may be touched: it
    // runs on another carrier now.
    const long spent_to = p->budget.load(std::memory_order_relaxed);  // budget_revoked: the monitor ended it
    const long left = spent_to <= 0 ? 0 : spent_to + p->budget_reserve;
    p->reductions.store(p->reductions.load(std::memory_order_relaxed) + std::uint64_t(before - std::min(before, left)),
                        std::memory_order_relaxed);
    std::memcpy(p->eh_state, g, sizeof(eh_globals));
    *g = mine;
    tl_process = nullptr;
    p->ctx = t.fctx;
    const auto req = static_cast<switch_request>(reinterpret_cast<std::uintptr_t>(t.data));
    if (!kept) {
      c.left_behind = p;  // the carrier retires first, then deals with it
      c.left_behind_req = req;
      return false;
    }
    budget_ = left;
    switch (req) {
      case switch_request::yield:
        p->status.store(process_status::runnable, std::memory_order_relaxed);
        preempted_ = true;
        // What came due meanwhile goes ahead of it in the queue (out of
        // the LIFO slot too, which the slice's spent budget would send
        // behind it).
        fire_timers();
        if (lifo_) {
          push_back(lifo_);
          lifo_ = nullptr;
        }
        push_back(p);
        return true;
      case switch_request::wait:
      case switch_request::hibernate:
        if (req == switch_request::hibernate) release_stack(rt_, this, p);
        p->status.store(process_status::waiting, std::memory_order_relaxed);
        if (p->mbox.block()) return true;  // a sender or a timer will wake it
        // Something arrived while it was switching out: go on with it.
        if (budget_ > 0) continue;
        push_back(p);
        return true;
      case switch_request::exit:
        finish(rt_, this, p);
        return true;
    }
    return true;
  }
}

void worker::after_slice(runtime_core& rt, worker* w, process* p, switch_request req) {
  switch (req) {
    case switch_request::yield:
      p->status.store(process_status::runnable, std::memory_order_relaxed);
      if (w) w->push_back(p);
      else rt.inject(p);
      return;
    case switch_request::wait:
    case switch_request::hibernate:
      if (req == switch_request::hibernate) release_stack(rt, w, p);
      p->status.store(process_status::waiting, std::memory_order_relaxed);
      if (p->mbox.block()) return;
      p->status.store(process_status::runnable, std::memory_order_relaxed);
      if (w) w->push_back(p);
      else rt.inject(p);
      return;
    case switch_request::exit:
      finish(rt, w, p);
      return;
  }
}

void worker::release_stack(runtime_core& rt, worker* w, process* p) noexcept {
  if (w && p->stk.size == w->stacks_.size_class()) w->stacks_.release(p->stk);
  else rt.stacks().release(p->stk);
  p->stk = {};
  p->ctx = nullptr;
  p->has_stack.store(false, std::memory_order_relaxed);
#if EMBER_TSAN
  __tsan_destroy_fiber(p->side.tsan_fiber);
  p->side.tsan_fiber = nullptr;
#endif
}

void worker::finish(runtime_core& rt, worker* w, process* p) {
  p->status.store(process_status::exiting, std::memory_order_relaxed);
  // A call still queued here will never be handled: answer it with the
  // exit reason, so its caller does not wait for nothing.
  p->mbox.close([p](envelope* e) noexcept {
    if (e->tag == request_tag()) {
      const request_head& h = head_of<request_head>(e);
      if (h.kind != request_kind::cast) fail_request(h, reply_status::exited, p->reason);
    }
  });
  // Whatever the process left in its heap goes with it (its entry, and so
  // any state living there, was destroyed when its body ended), before
  // anyone can learn of the exit.  Taken out under the lock, which
  // process_info reads it under.
  if (p->heap.load(std::memory_order_relaxed)) {
    process_heap* h;
    {
      std::lock_guard lk(p->hooks_lock);
      h = p->heap.exchange(nullptr, std::memory_order_relaxed);
    }
    delete h;
  }
  const ember::pid me = p->self_pid();
  {
    // Dead from here: sends drop, process_info/processes/whereis no longer
    // see it — before anyone can learn of the exit.  (Under the lock:
    // process_info reads the block under it after checking the serial.)
    std::lock_guard lk(p->hooks_lock);
    // ordering: release so a reuse of the block is ordered after this exit.
    p->serial.store(0, std::memory_order_release);
  }
  deliver_exit(p, me);
  release_stack(rt, w, p);
  p->reason = exit_reason{};
  p->status.store(process_status::free, std::memory_order_relaxed);
  rt.release_block(w, p);
  rt.on_process_exit();
}

}  // namespace ember::detail
