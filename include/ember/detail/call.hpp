// ember/detail/call.hpp — the wire format of gen_server requests and
// replies, shared by the behaviour (gen_server.hpp) and the runtime (which
// answers the requests left in a dead server's mailbox, and drops replies
// that arrive after their caller stopped waiting).
//
// Every request envelope carries the tag request_tag() and starts with a
// request_head; every reply carries reply_tag() and starts with a
// reply_head.  A typed part follows the head (the request, the reply
// value); the head says how to reach it.
//
// Threads: a request is built by the caller and read by the server; a reply
// the other way round.  Ownership: as for any envelope.
#pragma once

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "ember/detail/deliver.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"

namespace ember::detail {

struct process;

inline constexpr char request_tag_v = 0;
inline constexpr char reply_tag_v = 0;
[[nodiscard]] inline const void* request_tag() noexcept { return &request_tag_v; }
[[nodiscard]] inline const void* reply_tag() noexcept { return &reply_tag_v; }

enum class request_kind : std::uint8_t { call, cast, stop };

struct request_head {
  request_kind kind = request_kind::cast;
  const void* server_type = nullptr;  // type_tag<S>() of the server it was made for (null: any)
  // Handles the request in the server: instantiated where the request was
  // made, for that server type and request type.
  void (*dispatch)(void* server_state, envelope* e) = nullptr;
  const char* type_name = nullptr;  // the request's type, for reports
  ember::pid caller;                // call/stop: who waits
  std::uint64_t ref = 0;            // call/stop: which wait
  const void* reply_type = nullptr; // call: type_tag<R>() of the answer expected
};

enum class reply_status : std::uint8_t { ok, exited, bad_request, refused };

struct reply_head {
  std::uint64_t ref = 0;
  reply_status status = reply_status::ok;
  exit_reason reason;  // exited: the server's exit reason; bad_request: what was wrong
};

template <class R>
struct reply_body {
  reply_head head;
  R value;
};
// Replies are system messages: a mailbox bound never drops them.
template <>
inline constexpr bool system_message_v<reply_head> = true;
template <class R>
inline constexpr bool system_message_v<reply_body<R>> = true;

template <class Body>
Body& body_of(envelope* e) noexcept {
  return static_cast<typed_envelope<Body>*>(e)->value;
}
/// The head every request/reply body starts with: its first member, so at
/// offset sizeof(envelope) in every typed_envelope whose body's alignment
/// divides that (checked where bodies are made).
template <class Head>
Head& head_of(envelope* e) noexcept {
  return *std::launder(reinterpret_cast<Head*>(reinterpret_cast<char*>(e) + sizeof(envelope)));
}
template <class Body>
inline constexpr bool head_layout_ok = sizeof(envelope) % alignof(Body) == 0 && !std::is_polymorphic_v<Body>;

/// A request envelope: the body, tagged request_tag().
template <class Body, class... A>
envelope* make_request(std::uint64_t serial, A&&... a) {
  static_assert(head_layout_ok<Body>, "request type too strictly aligned");
  envelope* e = make_envelope<Body>(serial, Body{std::forward<A>(a)...});
  e->tag = request_tag();
  return e;
}

/// Deliver e to `to` (waking it if it was blocked; its mailbox bound
/// applies to calls and casts): closed, with e destroyed, when to is not
/// alive.  Any thread.
inline delivery post(const ember::pid& to, envelope* e) noexcept {
  process* p = to.block();
  // ordering: acquire pairs with the release that published the serial.
  if (!p || p->serial.load(std::memory_order_acquire) != to.serial()) {
    free_envelope(e);
    return delivery::closed;
  }
  e->serial = to.serial();
  return deliver(p, e);
}

/// References of asynchronous requests (gen_server::send_request) carry
/// this bit; a synchronous call's do not.  A reply to an asynchronous
/// reference reaches the caller while the reference is in its
/// signal_state::requests (checked under its lock), not through call_ref.
inline constexpr std::uint64_t async_request_bit = std::uint64_t{1} << 63;
/// Whether p (incarnation `serial`) still takes replies to the async ref.
bool async_request_live(process* p, std::uint64_t serial, std::uint64_t ref) noexcept;

/// Deliver a reply envelope to its caller if the caller still waits for
/// that ref (otherwise drop it).  Any thread.
void deliver_reply(const ember::pid& caller, std::uint64_t ref, envelope* e) noexcept;
/// Tell the caller of a request that it will not be answered: the server
/// exited with `reason` (status exited) or refused it (bad_request).
void fail_request(const request_head& h, reply_status status, const exit_reason& reason) noexcept;

}  // namespace ember::detail
