// ember/detail/deliver.hpp — putting an envelope in a process's mailbox:
// the one place that applies a mailbox bound and the long-queue watch.
//
// An unwatched mailbox (no bound, no long-queue threshold) takes the
// inline fast path: push, and wake the owner if it was blocked.  A watched
// one goes through deliver_watched (compiled once): an ordinary message
// takes a slot first (mailbox::reserve) and the bound's policy decides
// what happens when there is none; after the push, a sender that sees the
// queue reach the long-queue threshold reports it, once per crossing.
//
// Threads: any thread.  Ownership: takes e in every case (a message that
// is not queued is destroyed).
#pragma once

#include <cstdint>

#include "ember/base/config.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/mailbox/mailbox.hpp"

namespace ember::detail {

enum class delivery : std::uint8_t {
  sent,     // queued
  dropped,  // the bound dropped it (drop_newest, kill)
  refused,  // the bound refused it (refuse)
  closed,   // the receiver has exited
};

/// Deliver e (made for p's current incarnation) to a watched mailbox.
delivery deliver_watched(process* p, envelope* e) noexcept;
/// The bound said no to an ordinary message for p (incarnation `serial`):
/// apply the policy (kill the receiver under overflow::kill) and say what
/// became of the message.
delivery overflowed(process* p, std::uint64_t serial) noexcept;
/// Push e after its slot (if it needs one) was taken; wakes the owner and
/// runs the long-queue watch.
delivery push_watched(process* p, envelope* e) noexcept;
/// When e is an ordinary message and p's bound has no room for it: apply
/// the policy, destroy e, set d to what became of it and return true.
/// Otherwise e holds a slot (if it needs one) and the caller pushes it.
bool bound_refuses(process* p, envelope* e, delivery& d) noexcept;
/// The long-queue watch, after a push to p (reports once per crossing).
void watch_length(process* p) noexcept;

/// Deliver e (made for p's current incarnation, which the caller checked).
inline delivery deliver(process* p, envelope* e) noexcept {
  if (EMBER_UNLIKELY(p->mbox.watched())) return deliver_watched(p, e);
  switch (p->mbox.push(e)) {
    case mailbox::push_result::closed: return delivery::closed;
    case mailbox::push_result::woke_owner: p->rt->wake(p); break;
    case mailbox::push_result::queued: break;
  }
  return delivery::sent;
}

}  // namespace ember::detail
