// ember/impl/this_process.ipp — process-context operations (compiled once).
#pragma once

#include <exception>

#include "ember/detail/runtime_core.hpp"
#include "ember/receive.hpp"
#include "ember/errors.hpp"
#include "ember/this_process.hpp"
#include "ember/timer.hpp"

namespace ember {
namespace detail {

void switch_out(process* p, switch_request req);
timer_ref arm_receive_timeout(process* self, std::int64_t deadline_ns, std::uint64_t wait_seq);

process* current_or_throw(const char* operation) {
  process* p = this_process();
  if (!p) throw not_in_process(operation);
  return p;
}

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
  check_kill(p);
  if (p->w->budget <= 0) {
    switch_out(p, switch_request::yield);
    check_kill(p);
  }
}

void spend(long n) {
  if (process* p = this_process()) spend_in(p, n);
}

void wait_for_message(process* self, std::int64_t deadline_ns, timer_ref& timer) {
  if (deadline_ns >= 0 && !timer.node) {
    std::uint64_t seq = self->wait_seq.load(std::memory_order_relaxed) + 1;
    self->wait_seq.store(seq, std::memory_order_relaxed);
    timer = arm_receive_timeout(self, deadline_ns, seq);
  }
  switch_out(self, switch_request::wait);
  check_kill(self);
}

bool discard_internal(process* self, envelope* prev, envelope* e) {
  // A reply is internal unless it answers the call this process waits in
  // (then that call's wait takes it); any other reply came too late.
  if (e->tag == reply_tag() && e->serial == self->serial.load(std::memory_order_relaxed)) {
    const std::uint64_t waiting = self->call_ref.load(std::memory_order_relaxed);
    if (waiting != 0 && head_of<reply_head>(e).ref == waiting) return false;
  }
  self->mbox.unlink(prev, e);
  // A call sent to an earlier incarnation of this block (its sender checked
  // the pid, then the process exited and the block was reused before the
  // push): its caller waits, so tell it the server is gone (call_noproc).
  if (e->tag == request_tag() && e->serial != self->serial.load(std::memory_order_relaxed) &&
      head_of<request_head>(e).kind == request_kind::call)
    fail_request(head_of<request_head>(e), reply_status::exited, exit_reason::noproc());
  free_envelope(e);
  check_kill(self);
  return true;
}

}  // namespace detail

pid self() { return detail::current_or_throw("self")->self_pid(); }

void yield() {
  detail::process* p = detail::current_or_throw("yield");
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
