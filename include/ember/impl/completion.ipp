// ember/impl/completion.ipp — waiting for an outside completion
// (detail/completion.hpp); compiled once, in src/ember.cpp.
#pragma once

#include "ember/detail/completion.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/impl/this_process.ipp"
#include "ember/receive.hpp"
#include "ember/signal/link.hpp"

namespace ember::detail {

void completion_latch::finish() noexcept {
  process* p = owner_;
  const std::uint64_t serial = p->serial.load(std::memory_order_relaxed);
  // One step: the event is off the count and we count as waking.
  // ordering: acq_rel; release publishes what the finisher stored to the
  // process's acquire in done(); the process cannot leave before waking
  // drops to 0 below.
  word_.fetch_add(waking_one - 1, std::memory_order_acq_rel);
  // As a send wakes a receiver: unblock a blocked process; leave an awake
  // one a wake signal, so that it cannot block before it has looked.
  if (p->mbox.unblock() ||
      p->mbox.push(make_envelope<wake_signal>(serial)) == mailbox::push_result::woke_owner)
    p->rt->wake(p);
  // ordering: release; the last access to the latch (and to the process).
  word_.fetch_sub(waking_one, std::memory_order_release);
}

completion_cancel await_completion(process* self, completion_latch& latch, std::int64_t timeout_ns,
                                   void (*cancel)(void*), void* ctx, bool on_exit_message) {
  const std::int64_t deadline_ns = timeout_ns < 0 ? -1 : self->rt->now_ns() + timeout_ns;
  mailbox& mb = self->mbox;
  const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
  completion_cancel why = completion_cancel::none;
  receive_timer timer;
  // Messages already saved are not looked at; what arrives from here is
  // moved into the save queue (an inbox with anything in it fails the
  // block), and wake signals among it are dropped.
  envelope* mark = nullptr;
  mb.drain_inbox(mark);
  // An exit_message anywhere in the mailbox interrupts (on_exit_message).
  bool exit_seen = false;
  if (on_exit_message)
    for (envelope* e = mb.first(); e && !exit_seen; e = e->next) exit_seen = e->tag == type_tag<exit_message>();
  mark = mb.last();
  for (;;) {
    if (latch.done()) return why;
    if (latch.events_done()) {
      // A finisher is between its two steps: let it end them.
      switch_out(self, switch_request::yield);
      continue;
    }
    if (why == completion_cancel::none) {
      // ordering: acquire pairs with the kill's release (reason first).
      if (self->kill_pending.load(std::memory_order_acquire)) why = completion_cancel::killed;
      else if (deadline_ns >= 0 && self->rt->now_ns() >= deadline_ns) why = completion_cancel::timed_out;
      else if (exit_seen) why = completion_cancel::interrupted;
      if (why != completion_cancel::none) {
        cancel(ctx);
        continue;
      }
      if (deadline_ns >= 0 && !timer.ref.node) {
        const std::uint64_t seq = self->wait_seq.load(std::memory_order_relaxed) + 1;
        self->wait_seq.store(seq, std::memory_order_relaxed);
        timer.ref = arm_receive_timeout(self, deadline_ns, seq);
      }
    }
    mb.drain_inbox(mark);
    for (envelope* e = mark ? mark->next : mb.first(); e;) {
      // Never raises a pending kill: this frame may not go before the
      // latch is done (the kill is acted on above, by cancelling).
      if (discard_if_internal(self, serial, mark, e, false)) {
        e = mark ? mark->next : mb.first();
        continue;
      }
      exit_seen = exit_seen || (on_exit_message && e->tag == type_tag<exit_message>());
      mark = e;
      e = e->next;
    }
    if (exit_seen && why == completion_cancel::none) continue;
    if (latch.done()) return why;
    switch_out(self, switch_request::wait);
  }
}

void check_kill_now(process* self) { check_kill(self); }

}  // namespace ember::detail
