// ember/send.hpp — send a message to a process.
//
// Any movable C++ value is a message; it is moved (or copied, for an
// lvalue) into one allocation with a small header and queued without
// further copies.  The one exception: a value whose type uses a std::pmr
// allocator and whose memory comes from elsewhere than the global heap (a
// process's private heap, heap.hpp) is copied into the global heap, so no
// message points into a heap that dies with its process.  Large byte
// payloads travel as ember::binary (binary.hpp): shared, never copied.
//
// Sending to a dead or null pid is silent, as in Erlang.  Messages from one
// sender to one receiver arrive in send order.  A receiver with a bounded
// mailbox (spawn_options::mailbox) may drop or refuse an ordinary message:
// send says so (send_result); its other policies are in options.hpp.
//
// Threads: any thread, inside or outside a process (inside a process it
// spends one reduction).  Ownership: the receiver's mailbox owns the message.
#pragma once

#include <memory_resource>
#include <type_traits>
#include <utility>

#include "ember/base/config.hpp"
#include "ember/detail/deliver.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"
#include "ember/this_process.hpp"

namespace ember {

/// What became of a message.  `sent` also when the receiver is not alive
/// (sending is silent, as in Erlang); dropped/refused only come from a
/// bounded mailbox (drop_newest or kill / refuse).
enum class send_result : unsigned char { sent, dropped, refused };

namespace detail {

template <class V>
inline constexpr bool pmr_aware_v = std::uses_allocator_v<V, std::pmr::polymorphic_allocator<std::byte>>;

/// The envelope for a message of type V made from msg (see the top of this
/// file for the one case that copies).
template <class V, class T>
envelope* make_message(std::uint64_t serial, T&& msg) {
  if constexpr (pmr_aware_v<V> && requires(const V& v) { v.get_allocator().resource(); }) {
    std::pmr::memory_resource* r = msg.get_allocator().resource();
    if (r != std::pmr::new_delete_resource() && r != std::pmr::get_default_resource())
      return make_envelope<V>(serial, std::make_obj_using_allocator<V>(
                                          std::pmr::polymorphic_allocator<std::byte>(std::pmr::get_default_resource()),
                                          std::as_const(msg)));
  }
  return make_envelope<V>(serial, std::forward<T>(msg));
}

inline send_result result_of(delivery d) noexcept {
  switch (d) {
    case delivery::dropped: return send_result::dropped;
    case delivery::refused: return send_result::refused;
    case delivery::sent:
    case delivery::closed: break;
  }
  return send_result::sent;
}

/// send to a watched mailbox: an ordinary message takes its slot before
/// the envelope is made, so a full mailbox costs the sender no allocation.
template <class V, class T>
send_result send_watched(process* p, std::uint64_t serial, T&& msg) {
  bool reserved = false;
  if constexpr (!system_message_v<V>) {
    if (p->mbox.capacity() != 0) {
      if (p->mbox.reserve() == mailbox::admit::full) return result_of(overflowed(p, serial));
      reserved = true;
    }
  }
  envelope* e;
  try {
    e = make_message<V>(serial, std::forward<T>(msg));
  } catch (...) {
    if (reserved) p->mbox.unreserve();
    throw;
  }
  return result_of(push_watched(p, e));
}

}  // namespace detail

template <class T>
send_result send(const pid& to, T&& msg) {
  using V = std::remove_cvref_t<T>;
  static_assert(std::is_move_constructible_v<V>, "a message must be movable");
  send_result r = send_result::sent;
  detail::process* p = to.block();
  // ordering: acquire pairs with the release that published the serial.
  if (p && p->serial.load(std::memory_order_acquire) == to.serial()) {
    if (EMBER_LIKELY(!p->mbox.watched())) {
      detail::envelope* e = detail::make_message<V>(to.serial(), std::forward<T>(msg));
      if (p->mbox.push(e) == detail::mailbox::push_result::woke_owner) p->rt->wake(p);
    } else {
      r = detail::send_watched<V>(p, to.serial(), std::forward<T>(msg));
    }
  }
  detail::spend(1);
  return r;
}

}  // namespace ember
