// ember/impl/worker.ipp — the worker loop, process switching and exit
// (compiled once, in src/ember.cpp).
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
#pragma once

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <exception>

#include "ember/detail/call.hpp"
#include "ember/detail/deliver.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/heap.hpp"
#include "ember/scheduler/worker.hpp"

namespace ember::detail {

namespace {
__attribute__((tls_model("initial-exec"))) thread_local worker* tl_worker = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local process* tl_process = nullptr;

// The C++ runtime keeps "exceptions being handled" per thread.  A process
// may switch out inside a catch block and resume on another thread, so each
// fiber carries its own copy, swapped in and out around every slice.
struct eh_globals {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};
}  // namespace
}  // namespace ember::detail

extern "C" ember::detail::eh_globals* __cxa_get_globals() noexcept;

namespace ember::detail {

EMBER_NOINLINE worker* this_worker() noexcept { return tl_worker; }
EMBER_NOINLINE process* this_process() noexcept { return tl_process; }

// ---- stack overflow report --------------------------------------------------

namespace {
struct sigaction previous_segv;
std::atomic<bool> segv_installed{false};

std::size_t put_dec(char* out, std::uint64_t v) {
  char tmp[24];
  std::size_t n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}
std::size_t put_str(char* out, const char* s) {
  std::size_t n = std::strlen(s);
  std::memcpy(out, s, n);
  return n;
}

void on_segv(int sig, siginfo_t* si, void* uc) {
  process* p = tl_process;
  char* addr = static_cast<char*>(si->si_addr);
  if (p && p->stk.base && addr >= p->stk.base - stack_pool::page_size() &&
      addr < p->stk.usable_bottom()) {
    char msg[256];
    std::size_t n = put_str(msg, "ember: stack overflow in process <0.");
    n += put_dec(msg + n, p->serial.load(std::memory_order_relaxed));
    n += put_str(msg + n, ".0> (stack size ");
    n += put_dec(msg + n, p->stk.usable_size());
    n += put_str(msg + n, " bytes); give it a larger spawn_options::stack_size\n");
    ssize_t ignored = ::write(2, msg, n);
    (void)ignored;
    ::signal(SIGABRT, SIG_DFL);
    ::abort();
  }
  // Not an overflow of a process stack: hand the fault to whoever had it.
  ::sigaction(SIGSEGV, &previous_segv, nullptr);
  (void)sig;
  (void)uc;
}

void install_overflow_handler() {
#if !EMBER_ASAN && !EMBER_TSAN
  bool expected = false;
  if (!segv_installed.compare_exchange_strong(expected, true)) return;
  struct sigaction sa {};
  sa.sa_sigaction = &on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGSEGV, &sa, &previous_segv);
#endif
}
}  // namespace

// ---- fiber entry ------------------------------------------------------------

namespace {
/// Run the entry; false when it returned asking to hibernate (the process
/// lives on without a stack), true when the process has ended.
EMBER_NOINLINE bool run_process_body(process* p) noexcept {
  exit_reason r;
  bool crashed = false;
  try {
    // A process killed before it started does not start.  (An entry
    // called again after hibernation runs, and notices the kill itself.)
    if (!p->entry_started && p->kill_pending.load(std::memory_order_acquire)) throw exit_exception{p->reason};
    p->entry_started = true;
    p->invoke(p);
    // An exit signal the body caught and swallowed still ends it, with
    // that reason (ordering: acquire pairs with the release in kill_locked,
    // which wrote `reason` first).
    if (EMBER_UNLIKELY(p->kill_pending.load(std::memory_order_acquire))) {
      p->hibernate_on_return = false;
      p->w->exit_on_return.reset();
      throw exit_exception{p->reason};
    }
    if (p->hibernate_on_return) {
      p->hibernate_on_return = false;
      return false;
    }
    if (std::optional<exit_reason>& x = p->w->exit_on_return) {
      r = std::move(*x);
      x.reset();
    }
  } catch (exit_exception& e) {
    r = std::move(e.reason);
  } catch (...) {
    r = reason_of_current_exception();  // the text, and the thrown value kept
    crashed = true;
  }
  p->destroy_entry();
  if (crashed) p->rt->crash_report(p->self_pid(), r);
  // Close to signals and set the final reason in one step: a kill that
  // arrives after the body ended no longer counts.
  std::lock_guard lk(p->hooks_lock);
  p->hooks_closed = true;
  p->reason = std::move(r);
  return true;
}

void process_entry(transfer t) {
  on_context_entry();
  auto* p = static_cast<process*>(t.data);
  p->return_ctx = t.fctx;
  const switch_request req = run_process_body(p) ? switch_request::exit : switch_request::hibernate;
  worker* w = p->w;
  switch_to(p->return_ctx, reinterpret_cast<void*>(req), p->side, w->side, true);
  __builtin_unreachable();
}
}  // namespace

/// Switch from the running process back to its worker.  Process context.
void switch_out(process* p, switch_request req) {
  worker* w = p->w;
  transfer t = switch_to(p->return_ctx, reinterpret_cast<void*>(req), p->side, w->side);
  p->return_ctx = t.fctx;  // resumed, possibly by another worker
}

// ---- worker -----------------------------------------------------------------

worker::worker(runtime_core& rt, std::uint32_t index)
    : rt_(rt), index_(index), stacks_(rt.stacks(), rt.default_stack_class()),
      rng_(index * 7919u + 1u) {}

worker::~worker() {
  join();
  drop_timers();  // and whatever was cancelled from outside since
}

void worker::start() {
  install_overflow_handler();
  thread_ = std::thread([this] { main(); });
}
void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::main() {
  tl_worker = this;
  eh_globals_ = __cxa_get_globals();  // per thread, fixed for its life
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    side.stack_bottom = addr;
    side.stack_size = size;
    pthread_attr_destroy(&attr);
  }
#if EMBER_TSAN
  side.tsan_fiber = __tsan_get_current_fiber();
#endif
  // An alternate signal stack, so a stack overflow can still be reported.
  std::vector<char> alt(64 * 1024);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  ::sigaltstack(&ss, nullptr);

  while (!rt_.shutting_down()) {
    if (process* p = find_work()) run(p);
    else park_idle();
  }
  drop_timers();
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  tl_worker = nullptr;
  done_.store(true, std::memory_order_release);
}

void worker::push_lifo(process* p) {
  if (lifo_) push_back(lifo_);
  lifo_ = p;
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
  // Every 61st tick, and after a process used up its slice, look outside
  // the local queue first, so that nothing waits there longer than a slice.
  if (++tick_ % 61 == 0 || preempted_) {
    preempted_ = false;
    if (tick_ % 61 == 0) fire_timers();
    if (process* p = take_inject()) {
      if (lifo_) push_back(lifo_), lifo_ = nullptr;
      budget = full;
      return p;
    }
  }
  if (lifo_) {
    process* p = lifo_;
    lifo_ = nullptr;
    if (budget > 0) return p;  // runs on what is left of the slice
    push_back(p);
  }
  if (process* p = local_.pop()) {
    budget = full;
    return p;
  }
  fire_timers();
  process* p = local_.pop();
  if (!p) p = take_inject();
  if (!p && rt_.idle().begin_search()) {
    p = steal();
    bool last = rt_.idle().end_search();
    if (p && last) rt_.notify_one();
  }
  if (p) budget = full;
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
  // Spin briefly as a searcher first: work that shows up within a few tens
  // of microseconds is taken without a futex round trip, and while we count
  // as searching, whoever publishes work need not wake anyone.
  if (rt_.idle().begin_search()) {
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
    return;
  }
  std::chrono::nanoseconds timeout{-1};
  reclaim_cancelled();
  std::uint64_t t;
  if (!rt_.manual() && wheel_.next_tick(t)) {  // manual time moves only in advance()
    std::int64_t left = std::int64_t(t) * 1000000 - rt_.now_ns();
    timeout = std::chrono::nanoseconds(left > 0 ? left : 0);
  }
  parker_.park(timeout);
  rt_.idle().cancel_park(index_);
}

void worker::run(process* p) {
  auto* g = static_cast<eh_globals*>(eh_globals_);
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
    p->w = this;
    p->status.store(process_status::running, std::memory_order_relaxed);
    tl_process = p;
    eh_globals mine = *g;
    std::memcpy(g, p->eh_state, sizeof(eh_globals));
    const long before = budget;
    transfer t = switch_to(p->ctx, p, side, p->side);
    p->reductions.store(p->reductions.load(std::memory_order_relaxed) + std::uint64_t(before - budget),
                        std::memory_order_relaxed);
    std::memcpy(p->eh_state, g, sizeof(eh_globals));
    *g = mine;
    tl_process = nullptr;
    p->ctx = t.fctx;
    switch (static_cast<switch_request>(reinterpret_cast<std::uintptr_t>(t.data))) {
      case switch_request::yield:
        p->status.store(process_status::runnable, std::memory_order_relaxed);
        preempted_ = true;
        push_back(p);
        return;
      case switch_request::wait:
        p->status.store(process_status::waiting, std::memory_order_relaxed);
        if (p->mbox.block()) return;  // a sender or a timer will wake it
        // Something arrived while it was switching out: go on with it.
        if (budget > 0) continue;
        push_back(p);
        return;
      case switch_request::hibernate:
        // Its stack is done with (the entry returned): give it back now,
        // and start the entry again on a fresh one when a message comes.
        release_stack(p);
        p->status.store(process_status::waiting, std::memory_order_relaxed);
        if (p->mbox.block()) return;
        if (budget > 0) continue;
        push_back(p);
        return;
      case switch_request::exit:
        finish(p);
        return;
    }
  }
}

void worker::release_stack(process* p) noexcept {
  if (p->stk.size == stacks_.size_class()) stacks_.release(p->stk);
  else rt_.stacks().release(p->stk);
  p->stk = {};
  p->ctx = nullptr;
  p->has_stack.store(false, std::memory_order_relaxed);
#if EMBER_TSAN
  __tsan_destroy_fiber(p->side.tsan_fiber);
  p->side.tsan_fiber = nullptr;
#endif
}

void worker::finish(process* p) {
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
  release_stack(p);
  p->reason = exit_reason{};
  p->status.store(process_status::free, std::memory_order_relaxed);
  rt_.release_block(*this, p);
  rt_.on_process_exit();
}

}  // namespace ember::detail
