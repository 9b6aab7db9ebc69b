// ember/impl/this_process.ipp — process-context operations (compiled once).
#pragma once

#include <exception>
#include <mutex>

#include <spdlog/spdlog.h>

#include "ember/base/config.hpp"
#if EMBER_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "ember/detail/runtime_core.hpp"
#include "ember/receive.hpp"
#include "ember/errors.hpp"
#include "ember/this_process.hpp"
#include "ember/timer.hpp"

namespace ember {
namespace detail {

void switch_out(process* p, switch_request req);
timer_ref arm_receive_timeout(process* self, std::int64_t deadline_ns, std::uint64_t wait_seq);

void throw_nan_timeout() { throw bad_argument("ember::after: timeout = NaN: not a duration"); }

void throw_not_in_process(const char* operation) { throw not_in_process(operation); }

namespace {
/// A pending kill (an exit signal that ends the process; `reason` was
/// published before the flag) ends the process here — unless it is already unwinding
/// (throwing from a destructor would terminate the program).
inline void check_kill(process* p) {
  if (EMBER_UNLIKELY(p->kill_pending.load(std::memory_order_acquire)) &&
      std::uncaught_exceptions() == 0)
    throw exit_exception{p->reason};
}
}  // namespace

void spend_slow(process* p) {
  if (EMBER_UNLIKELY(p->in_blocking)) {
    // Off the schedulers: nothing to yield to, and exit signals wait until
    // the blocking function returns.
    p->budget.store(blocking_budget, std::memory_order_relaxed);
    return;
  }
  long b = p->budget.load(std::memory_order_relaxed);
  if (b <= 0 && b > budget_revoked / 2 && p->budget_reserve > 0) {
    // A chunk is spent: go on with the next one unless the slice has run
    // past time_slice by the clock (the monitor's revocation may come later, or
    // not at all when its thread waits for a CPU).
    bool young = true;
    if (const std::int64_t slice = p->rt->time_slice_ns(); slice > 0) {
      const std::int64_t now = fast_clock::steady_ns();
      if (p->slice_t0 == 0) p->slice_t0 = now;
      else young = now - p->slice_t0 < slice;
    }
    while (young && b <= 0 && p->budget_reserve > 0) {
      const long give = p->budget_reserve < slice_chunk ? p->budget_reserve : slice_chunk;
      p->budget_reserve -= give;
      b += give;
    }
    p->budget.store(b, std::memory_order_relaxed);
  }
  // Yield first when the budget is spent, even with a kill pending: a
  // process that swallows its kill in a loop is still preempted.  Not
  // while the runtime stops: a killed process ends at once then (one that
  // runtime::stop gave up on may be back on a thread whose worker has
  // gone, with no scheduler left to resume it).
  if (b <= 0) {
    if (EMBER_UNLIKELY(p->kill_pending.load(std::memory_order_relaxed)) && p->rt->stopping()) check_kill(p);
    switch_out(p, switch_request::yield);
  }
  check_kill(p);
}


namespace {
/// A wait with no timeout, made while the process unwinds for an exit
/// signal (a destructor): the runtime can neither throw nor let it wait for
/// ever, so the process ends here, with its exit reason.  Its remaining
/// frames are not unwound and its function object is not destroyed (what
/// they own is lost); its stack is cleaned and reused.
[[noreturn]] EMBER_NOINLINE void abandon_in_wait(process* self) {
  try {
    self->rt->logger().error(
        "process {} waited with no timeout while unwinding for its exit (reason: {}); it ends here: the rest of "
        "its stack is not unwound",
        self->self_pid(), self->reason.to_string());
  } catch (...) {
  }
#if EMBER_ASAN
  // Frames left on the stack keep their poisoned redzones: clear them for
  // the next process that takes this stack.
  __asan_unpoison_memory_region(self->stk.usable_bottom(), self->stk.usable_size());
#endif
  self->destroy_fn = nullptr;  // not destroyed: its owner's frame is still live
  self->invoke = nullptr;
  {
    std::lock_guard lk(self->hooks_lock);
    self->hooks_closed = true;  // the reason is the exit signal's, set with kill_pending
  }
  switch_to(self->return_ctx, reinterpret_cast<void*>(switch_request::exit), self->side, this_carrier()->side, true);
  __builtin_unreachable();
}
}  // namespace

void wait_for_message(process* self, std::int64_t deadline_ns, timer_ref& timer) {
  if (EMBER_UNLIKELY(self->in_blocking))
    throw error("ember::receive would wait for a message inside ember::blocking (the process runs off the "
                "schedulers there); receive before or after the blocking section");
  if (EMBER_UNLIKELY(exit_unwinding(self))) {
    if (deadline_ns >= 0) return;  // the caller sees exit_unwinding and times out
    abandon_in_wait(self);
  }
  if (deadline_ns >= 0 && !timer.node) {
    std::uint64_t seq = self->wait_seq.load(std::memory_order_relaxed) + 1;
    self->wait_seq.store(seq, std::memory_order_relaxed);
    timer = arm_receive_timeout(self, deadline_ns, seq);
  }
  switch_out(self, switch_request::wait);
  check_kill(self);
}

bool discard_internal(process* self, envelope* prev, envelope* e, bool raise_kill) {
  // A reply is internal unless it answers the call this process waits in
  // (then that call's wait takes it); any other reply came too late.
  if (e->tag == reply_tag() && e->serial == self->serial.load(std::memory_order_relaxed)) {
    const std::uint64_t ref = head_of<reply_head>(e).ref;
    const std::uint64_t waiting = self->call_ref.load(std::memory_order_relaxed);
    if (waiting != 0 && ref == waiting) return false;
    // A reply to an asynchronous request the process still takes stays,
    // for wait_response / receive_response / check_response.
    if ((ref & async_request_bit) != 0 && async_request_live(self, e->serial, ref)) return false;
  }
  self->mbox.unlink(prev, e);
  // A call sent to an earlier incarnation of this block (its sender checked
  // the pid, then the process exited and the block was reused before the
  // push): its caller waits, so tell it the server is gone (call_noproc).
  if (e->tag == request_tag() && e->serial != self->serial.load(std::memory_order_relaxed) &&
      head_of<request_head>(e).kind == request_kind::call)
    fail_request(head_of<request_head>(e), reply_status::exited, exit_reason::noproc());
  free_envelope(e);
  if (raise_kill) check_kill(self);
  return true;
}

}  // namespace detail

pid self() { return detail::current_or_throw("self")->self_pid(); }

void yield() {
  detail::process* p = detail::current_or_throw("yield");
  if (p->in_blocking) return;  // off the schedulers: nobody to yield to
  detail::check_kill(p);
  detail::switch_out(p, detail::switch_request::yield);
  detail::check_kill(p);
}

void exit(exit_reason reason) {
  detail::current_or_throw("exit");
  throw detail::exit_exception{std::move(reason)};
}

bool in_process() noexcept { return detail::this_process() != nullptr; }

}  // namespace ember
