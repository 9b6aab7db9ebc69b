// ember/send.hpp — send a message to a process.
//
// Any movable C++ value is a message; it is moved (or copied, for an
// lvalue) into one allocation with a small header and queued without
// further copies.  Sending to a dead or null pid is silent, as in Erlang.
// Messages from one sender to one receiver arrive in send order.
//
// Threads: any thread, inside or outside a process (inside a process it
// spends one reduction).  Ownership: the receiver's mailbox owns the message.
#pragma once

#include <type_traits>
#include <utility>

#include "ember/detail/runtime_core.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"
#include "ember/this_process.hpp"

namespace ember {

template <class T>
void send(const pid& to, T&& msg) {
  using V = std::remove_cvref_t<T>;
  static_assert(std::is_move_constructible_v<V>, "a message must be movable");
  detail::process* p = to.block();
  // ordering: acquire pairs with the release that published the serial.
  if (p && p->serial.load(std::memory_order_acquire) == to.serial()) {
    detail::envelope* e = detail::make_envelope<V>(to.serial(), std::forward<T>(msg));
    if (p->mbox.push(e) == detail::mailbox::push_result::woke_owner) p->rt->wake(p);
  }
  detail::spend(1);
}

}  // namespace ember
