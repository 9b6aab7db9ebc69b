// ember/io/detail/owned_socket.hpp — what tcp_socket and udp_socket share:
// the owner and its active mode, the owner's requests run on the socket's
// strand, and the errors those requests fail with.
//
// Threads: active_owner and everything run by on_strand belong to the
// socket's strand; on_strand and forward_queued are called by the owning
// process.  Ownership: none here (the sockets' states hold these).
#pragma once

#include <chrono>
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

/// controlling_process's middle step: the messages Msgs... about socket
/// `id` already in the caller's mailbox go to p, in order.
template <class... Msgs>
void forward_queued(socket_id id, ember::pid p) {
  auto mine = [id](const auto& m) { return m.socket == id; };
  for (bool more = true; more;) {
    more = ember::receive(ember::when(mine, [p](Msgs m) { ember::send(p, std::move(m)); return true; })...,
                          ember::after(std::chrono::milliseconds(0), [] { return false; }));
  }
}

}  // namespace ember::io::detail
