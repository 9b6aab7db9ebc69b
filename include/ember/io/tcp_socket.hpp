// ember/io/tcp_socket.hpp — a TCP socket owned by a process, with Erlang's
// active modes (gen_tcp's {active, once | N | true | false}).
//
//   ember::io::tcp_socket s(std::move(accepted));     // the calling process owns it
//   s.set_active(ember::io::active::once());
//   ember::receive(
//       [&](const ember::io::tcp_data& d) { handle(d.data); s.set_active(ember::io::active::once()); },
//       [&](const ember::io::tcp_closed&) { ... },
//       [&](const stop_request&) { ... });              // socket data and other messages, one receive
//
// Contract (tests in tests/io/tcp_socket_test.cpp):
//  - Active modes, as gen_tcp: data, end of stream and errors arrive as
//    messages to the owning process — tcp_data{socket, data},
//    tcp_closed{socket}, tcp_error{socket, error} (then tcp_closed).
//    active::once(): one tcp_data, then passive until set_active again (the
//    back-pressure of choice: nothing is read that the owner has not asked
//    for); active::n(k): k more (added to what is left, as OTP), then a
//    tcp_passive{socket} message and passive; active::always(): all, with
//    no back-pressure; active::off(): passive.  Data read but not yet
//    delivered when the socket turns passive is kept for the next delivery
//    or read, in order; none is lost.
//  - Passive: read_some / recv wait for data (suspending only the caller);
//    in an active mode they throw ember::error (gen_tcp's einval).
//  - write waits until every byte is handed to the kernel: a peer that
//    does not read holds up only the writer (back-pressure).
//  - controlling_process(p), by the owner only (io::not_owner otherwise):
//    from then on the messages go to p, and the tcp_* messages for this
//    socket already in the caller's mailbox are moved to p first, in order
//    (as gen_tcp).  The handle itself is a move-only value: send it to p
//    as well (or keep it; it stays valid wherever it is).
//  - The socket closes when its handle is destroyed — in particular when
//    the process holding it exits, whichever way — or on close().
//  - Every call is for process context and spends a reduction; a handle
//    may be used by one process at a time.
//
// Threads: everything on the socket happens on its own strand (of the
// executor the socket was made on), so reads that deliver messages, the
// owner's writes and mode changes never race.  Ownership: the handle
// shares the socket's state with its operations in flight.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "ember/binary.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/pid.hpp"

namespace ember::io {

/// Which socket a message is about (tcp_socket::id()).
struct socket_id {
  std::uint64_t value = 0;
  friend bool operator==(socket_id, socket_id) = default;
};

/// Data read from the socket, in order (active modes).
struct tcp_data {
  socket_id socket;
  ember::binary data;
};
/// The peer closed its side (or the socket failed: after tcp_error).
struct tcp_closed {
  socket_id socket;
};
/// Reading failed (then tcp_closed follows).
struct tcp_error {
  socket_id socket;
  boost::system::error_code error;
};
/// An active::n count ran out: the socket is passive now.
struct tcp_passive {
  socket_id socket;
};

/// controlling_process from a process that does not own the socket.
class not_owner : public ember::error {
public:
  using ember::error::error;
};

/// An active mode (set_active).
class active {
public:
  static active off() noexcept { return active(0); }
  static active once() noexcept { return active(once_v); }
  static active always() noexcept { return active(always_v); }
  /// k more messages (k > 0; added to what is left when already counting),
  /// then tcp_passive.  bad_argument for k < 1.
  static active n(long k);
  [[nodiscard]] long value() const noexcept { return v_; }
  static constexpr long once_v = -1, always_v = -2;

private:
  explicit active(long v) noexcept : v_(v) {}
  long v_;
};

class tcp_socket {
public:
  using protocol = boost::asio::ip::tcp;

  /// No socket.
  tcp_socket() noexcept = default;
  /// Take over a connected (or accepted) socket; the calling process owns
  /// it, passive.  Process context.
  explicit tcp_socket(protocol::socket s);
  /// Connect to `to` (suspends the caller; errors as system_error).
  static tcp_socket connect(const boost::asio::any_io_executor& ex, const protocol::endpoint& to,
                            ember::detail::timeout_arg timeout = std::chrono::milliseconds(-1));
  tcp_socket(tcp_socket&& o) noexcept = default;
  tcp_socket& operator=(tcp_socket&& o) noexcept;
  tcp_socket(const tcp_socket&) = delete;
  tcp_socket& operator=(const tcp_socket&) = delete;
  /// Closes the socket (its messages stop).
  ~tcp_socket();

  [[nodiscard]] explicit operator bool() const noexcept { return st_ != nullptr; }
  [[nodiscard]] socket_id id() const noexcept;
  [[nodiscard]] protocol::endpoint local_endpoint() const;
  [[nodiscard]] protocol::endpoint remote_endpoint() const;

  /// Change the active mode.  Returns at once: the change is made on the
  /// socket's strand, before anything the caller asks of the socket later
  /// (a recv, a write, another set_active, controlling_process).
  void set_active(active mode);
  /// Make p the owner (see the top of the file).
  void controlling_process(ember::pid p);

  /// Write all of `data`; returns when the kernel has it all.
  void write(std::string_view data);
  void write(const ember::binary& data);
  /// Passive only: wait for data (at most max bytes; 0: what is there,
  /// up to 64 KiB).  End of stream: boost::asio::error::eof, as system_error.
  ember::binary recv(std::size_t max = 0,
                     ember::detail::timeout_arg timeout = std::chrono::milliseconds(-1));
  /// Close now (what is queued to deliver is dropped; later calls fail).
  void close();

  struct state;  // impl

private:
  std::shared_ptr<state> st_;
};

}  // namespace ember::io
