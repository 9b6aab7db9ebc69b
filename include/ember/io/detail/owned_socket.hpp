// ember/io/detail/owned_socket.hpp — what tcp_socket and udp_socket share:
// the owner and its active mode, the owner's requests run on the socket's
// strand (set_active, controlling_process, the close of a dropped handle),
// and the errors those requests fail with.
//
// The templates take a socket's state, which has: `strand`, `sock`, `id`,
// `own` (an active_owner), `reading` (a read is outstanding), `held` (read,
// not yet delivered), deliver_held() and arm() (keep one read outstanding
// while active).
//
// Threads: active_owner and everything run by on_strand belong to the
// socket's strand; the functions are called by the owning process.
// Ownership: none here (the sockets' states hold these).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include "ember/io/tcp_socket.hpp"
#include "ember/io/use_process.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"

namespace ember::io::detail {

/// A socket id no other socket of the program has had.
socket_id new_socket_id() noexcept;

/// Why an owner's request failed, carried in an error_code.
enum class request_error { not_owner = 1, active_mode, closed };
boost::system::error_code make_error(request_error e) noexcept;

/// Throw what a failed request of `type` (e.g. "tcp_socket") means:
/// not_owner, ember::error for the other request errors, system_error.
[[noreturn]] void throw_request(const char* type, const char* what, const boost::system::error_code& ec);

/// The owning process and its active mode (strand only).
struct active_owner {
  ember::pid owner;
  long mode = 0;  // 0 passive, active::once_v, active::always_v, or k > 0 left

  /// set_active: a count is added to what is left of one, as OTP.
  void set(long v) noexcept {
    if (v > 0) mode = mode > 0 ? mode + v : v;
    else mode = v;
  }
  /// Count one delivery; true when an active::n count has just run out
  /// (the owner gets the passive message).
  bool count_delivery() noexcept {
    if (mode == active::once_v) {
      mode = 0;
      return false;
    }
    return mode > 0 && --mode == 0;
  }
};

/// Run f() on the socket's strand and wait for it in the calling process;
/// f returns an error_code (thrown as `what` of `type` failing).
template <class F>
void on_strand(const boost::asio::any_io_executor& strand, const char* type, const char* what, F f) {
  namespace asio = boost::asio;
  const auto token = asio::as_tuple(use_process);
  auto ec = asio::async_initiate<decltype(token), void(boost::system::error_code)>(
      [&strand, f = std::move(f)](auto handler) mutable {
        // The strand is where a cancellation must run (use_process.hpp).
        (void)asio::get_associated_executor(handler, strand);
        asio::post(strand, [f = std::move(f), h = std::move(handler)]() mutable {
          const boost::system::error_code r = f();
          std::move(h)(r);
        });
      },
      token);
  if (std::get<0>(ec)) throw_request(type, what, std::get<0>(ec));
}

/// set_active(v): not waited for — the strand runs the owner's requests in
/// order, so the change is in effect for every later call on the socket,
/// and the data it lets through comes as messages anyway.
template <class State>
void post_set_active(const std::shared_ptr<State>& st, long v) {
  enter_asio_thread();  // the post's memory from the thread's cache
  boost::asio::post(st->strand, [st, v] {
    st->own.set(v);
    // Passive: the outstanding read goes (it has read nothing yet, or its
    // data is on its way and will be held), so a passive read can start.
    if (st->own.mode == 0 && st->reading) {
      boost::system::error_code ignored;
      st->sock.cancel(ignored);
    }
    st->deliver_held();
    st->arm();
  });
}

/// A dropped handle's close: not waited for; the strand closes the socket
/// (cancelling the read, whose completion still holds the state).
template <class State>
void post_close(const std::shared_ptr<State>& st) noexcept {
  try {
    boost::asio::post(st->strand, [st] {
      boost::system::error_code ec;
      st->sock.close(ec);
      st->held.clear();
    });
  } catch (...) {
    // No memory for the post: the state's last owner closes the socket.
  }
}

/// controlling_process(p) by the calling process, for a socket whose
/// messages are Msgs...: (1) deliveries stop (what is read meanwhile is
/// held); (2) the Msgs... about this socket already in the caller's
/// mailbox go to p, in order; (3) the rest follows, in the mode it had.
template <class... Msgs, class State>
void hand_over(State& st, const char* type, ember::pid p) {
  const ember::pid me = ember::self();
  long saved = 0;
  on_strand(st.strand, type, "controlling_process", [&st, &saved, me]() -> boost::system::error_code {
    if (st.own.owner != me) return make_error(request_error::not_owner);
    saved = st.own.mode;
    st.own.mode = 0;
    return {};
  });
  auto mine = [id = st.id](const auto& m) { return m.socket == id; };
  for (bool more = true; more;) {
    more = ember::receive(ember::when(mine, [p](Msgs m) { ember::send(p, std::move(m)); return true; })...,
                          ember::after(std::chrono::milliseconds(0), [] { return false; }));
  }
  on_strand(st.strand, type, "controlling_process", [&st, &saved, p]() -> boost::system::error_code {
    st.own.owner = p;
    st.own.mode = saved;
    st.deliver_held();
    st.arm();
    return {};
  });
}

}  // namespace ember::io::detail
