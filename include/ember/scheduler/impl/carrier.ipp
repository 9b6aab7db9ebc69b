// ember/scheduler/impl/carrier.ipp — carrier threads, the lease's slow path and
// fences, the fiber entry of every process and its switch back (compiled
// once, in src/ember.cpp, before worker.ipp).
//
// A carrier's life (carrier::main):
//  1. set up the thread: its carrier pointer, C++ exception state, stack
//     bounds for the sanitizers, an alternate signal stack;
//  2. run the worker it was given (worker::run_on) until the runtime shuts
//     down, or until the worker is taken from it while one of its processes
//     runs — then, once that process has switched back, the carrier retires
//     (carrier_pool::retire: a spare from now on) and only then sends the
//     process back to the schedulers (the inject queue), so that whoever
//     sees the process run again sees the carrier no longer off them;
//  3. as a spare, wait to be given a worker, and go to 2; or end.
#pragma once

#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <exception>

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/heap.hpp"
#include "ember/process_info.hpp"
#include "ember/scheduler/carrier.hpp"
#include "ember/scheduler/carrier_pool.hpp"
#include "ember/scheduler/worker.hpp"

namespace ember::detail {

// The thread slots (base/thread_slots.hpp reads them by these assembler
// names, from any translation unit).
__attribute__((tls_model("initial-exec"))) thread_local carrier* tl_carrier asm("ember_tl_carrier") = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local process* tl_process asm("ember_tl_process") = nullptr;

namespace {

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

#if !EMBER_INLINE_THREAD_SLOTS
EMBER_NOINLINE carrier* this_carrier() noexcept { return tl_carrier; }
EMBER_NOINLINE process* this_process() noexcept { return tl_process; }
#endif

void set_exit_on_return(exit_reason r) { tl_carrier->exit_on_return = std::move(r); }

// ---- the lease's fences -------------------------------------------------------

namespace lease_fence {
void init() noexcept {
  static const bool ok = [] {
#if EMBER_TSAN
    // ThreadSanitizer does not model membarrier: keep full fences on both
    // sides there, so it sees the handshake it checks.
    return false;
#else
    const long cmds = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
  }();
  if (ok) asymmetric.store(true, std::memory_order_relaxed);
}

void heavy() noexcept {
  if (asymmetric.load(std::memory_order_relaxed) &&
      ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
}  // namespace lease_fence

worker* carrier::enter_contended() noexcept {
  // The monitor is deciding whether to take the worker (revoke 1), or has
  // taken it (2).  It decides within microseconds; wait for it.
  for (unsigned spins = 0;; ++spins) {
    // ordering: acquire pairs with the monitor's release of its decision.
    const std::uint32_t r = revoke_.load(std::memory_order_acquire);
    if (r == 0) return w_;  // it gave up: the lease is ours
    if (r == 2) {
      // The worker is gone; this thread runs only the process it holds.
      // (No monitor writes revoke_ again until the pool gives this carrier
      // a worker, after it retired.)
      revoke_.store(0, std::memory_order_relaxed);
      drop_worker();
      return nullptr;
    }
    if (spins < 64) __builtin_ia32_pause();
    else std::this_thread::yield();
  }
}

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
      this_carrier()->exit_on_return.reset();
      throw exit_exception{p->reason};
    }
    if (p->hibernate_on_return) {
      p->hibernate_on_return = false;
      return false;
    }
    // The entry returned on this thread: its carrier holds what it asked.
    if (std::optional<exit_reason>& x = this_carrier()->exit_on_return) {
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
  switch_to(p->return_ctx, reinterpret_cast<void*>(req), p->side, this_carrier()->side, true);
  __builtin_unreachable();
}
}  // namespace

/// Switch from the running process back to the carrier running it.
/// Process context; never inside a lease.
void switch_out(process* p, switch_request req) {
  carrier* c = this_carrier();
  transfer t = switch_to(p->return_ctx, reinterpret_cast<void*>(req), p->side, c->side);
  p->return_ctx = t.fctx;  // resumed, possibly by another carrier
}

// ---- carrier ----------------------------------------------------------------

void carrier::report_long_schedule(process* p) noexcept {
  const std::int64_t since = long_since_ns_.load(std::memory_order_relaxed);
  const std::int64_t handed = handed_at_ns_.load(std::memory_order_relaxed);
  long_slice_.store(0, std::memory_order_relaxed);
  rt_.monitor().count_long_schedule();
  try {
    const std::int64_t now = fast_clock::steady_ns();
    const ember::pid who = p->self_pid();
    std::string name, call;
    if (auto info = ember::process_info(who)) {
      name = std::move(info->registered_name);
      call = std::move(info->initial_call);
    }
    std::string handoff;
    if (handed >= since)
      handoff = fmt::format("; its worker was handed to another thread after {:.1f} ms", double(handed - since) / 1e6);
    rt_.logger().warn("long_schedule: process {}{}{} ({}) ran {:.1f} ms without yielding its worker{}", who,
                      name.empty() ? "" : " ", name, call.empty() ? "initial call unknown" : call,
                      double(now - since) / 1e6, handoff);
  } catch (...) {
    // A failing log sink must not take the carrier down.
  }
}

void carrier::start(worker* first) {
  install_overflow_handler();
  thread_ = std::thread([this, first] { main(first); });
}

void carrier::main(worker* first) {
  tl_carrier = this;
  tid = pid_t(::syscall(SYS_gettid));
  if (pthread_getcpuclockid(pthread_self(), &cpu_clock) != 0) cpu_clock = CLOCK_THREAD_CPUTIME_ID;
  eh_globals = __cxa_get_globals();  // per thread, fixed for its life
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
  // The carrier owns it: a carrier that runtime::stop detached may still be
  // running a process's fiber when the program exits.
  alt_stack_.resize(64 * 1024);
  stack_t ss{};
  ss.ss_sp = alt_stack_.data();
  ss.ss_size = alt_stack_.size();
  ::sigaltstack(&ss, nullptr);

  carrier_pool& pool = rt_.carriers();
  worker* w = first ? first : pool.wait_for_work(*this);
  while (w) {
    // The scheduler's own lease, held except while a process runs.
    w_ = w;
    depth_ = 1;
    busy_.store(1, std::memory_order_relaxed);
    if (w->run_on(*this)) break;  // shutdown
    // Its worker went on elsewhere: no longer off the schedulers, then the
    // process it ran goes back to the schedulers.
    pool.retire(*this);
    worker::after_slice(rt_, nullptr, left_behind, left_behind_req);
    left_behind = nullptr;
    w = pool.wait_for_work(*this);
  }
  w_ = nullptr;
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  tl_carrier = nullptr;
  done_.store(true, std::memory_order_release);
}

}  // namespace ember::detail
