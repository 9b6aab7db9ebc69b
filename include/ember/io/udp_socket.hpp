// ember/io/udp_socket.hpp — a UDP socket owned by a process, with Erlang's
// active modes (gen_udp's {active, once | N | true | false}).
//
//   auto s = ember::io::udp_socket::open(io.get_executor(), {address_v4::loopback(), 0});
//   s.set_active(ember::io::active::once());
//   ember::receive(
//       [&](const ember::io::udp_data& d) { reply(d.from, d.data); s.set_active(ember::io::active::once()); },
//       [&](const stop_request&) { ... });               // datagrams and other messages, one receive
//
// Contract (tests in tests/io/udp_socket_test.cpp):
//  - Active modes, as gen_udp: each datagram arrives as a message to the
//    owning process, udp_data{socket, from, data}; a failed read as
//    udp_error{socket, error}, and the socket reads on (a UDP socket has
//    no end of stream).  active::once(): one datagram, then passive until
//    set_active again (nothing is read that the owner has not asked for;
//    what the kernel cannot hold meanwhile it drops, as UDP does);
//    active::n(k): k more, then udp_passive{socket}; active::always():
//    all; active::off(): passive.  Datagrams read but not yet delivered
//    when the socket turns passive are kept, in order, for the next
//    delivery or recv; none is lost.
//  - Passive: recv waits for one datagram (suspending only the caller);
//    in an active mode it throws ember::error (gen_udp's einval).
//  - send_to waits until the kernel has the datagram (or refuses it: a
//    datagram larger than the protocol allows fails as system_error,
//    message_size); it suspends only the sender.
//  - controlling_process(p), by the owner only (io::not_owner otherwise),
//    as tcp_socket: later messages go to p, and the udp_* messages for
//    this socket already in the caller's mailbox are moved to p first.
//  - The socket closes when its handle is destroyed, or on close().
//  - Every call is for process context and spends a reduction; a handle
//    may be used by one process at a time.
//
// Threads: everything on the socket happens on its own strand, as for
// tcp_socket.  Ownership: the handle shares the socket's state with its
// operations in flight.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/system/error_code.hpp>

#include "ember/binary.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/io/tcp_socket.hpp"  // socket_id, active, not_owner
#include "ember/pid.hpp"

namespace ember::io {

/// A datagram (active modes).
struct udp_data {
  socket_id socket;
  boost::asio::ip::udp::endpoint from;
  ember::binary data;
};
/// A read failed; the socket reads on.
struct udp_error {
  socket_id socket;
  boost::system::error_code error;
};
/// An active::n count ran out: the socket is passive now.
struct udp_passive {
  socket_id socket;
};

class udp_socket {
public:
  using protocol = boost::asio::ip::udp;

  /// A datagram as recv returns it.
  struct datagram {
    protocol::endpoint from;
    ember::binary data;
  };

  /// No socket.
  udp_socket() noexcept = default;
  /// Open a socket bound to `local` (port 0: one the kernel picks); the
  /// calling process owns it, passive.  Errors (the port is taken) as
  /// system_error.  Process context.
  static udp_socket open(const boost::asio::any_io_executor& ex, const protocol::endpoint& local);
  /// Take over an open socket; the calling process owns it, passive.
  explicit udp_socket(protocol::socket s);
  udp_socket(udp_socket&& o) noexcept = default;
  udp_socket& operator=(udp_socket&& o) noexcept;
  udp_socket(const udp_socket&) = delete;
  udp_socket& operator=(const udp_socket&) = delete;
  /// Closes the socket (its messages stop).
  ~udp_socket();

  [[nodiscard]] explicit operator bool() const noexcept { return st_ != nullptr; }
  [[nodiscard]] socket_id id() const noexcept;
  [[nodiscard]] protocol::endpoint local_endpoint() const;

  /// Change the active mode.  Returns at once: the change is made on the
  /// socket's strand before anything the caller asks of the socket later.
  void set_active(active mode);
  /// Make p the owner (see the top of the file).
  void controlling_process(ember::pid p);

  /// Send one datagram to `to`; returns when the kernel has it.
  void send_to(const protocol::endpoint& to, std::string_view data);
  void send_to(const protocol::endpoint& to, const ember::binary& data);
  /// Passive only: wait for one datagram.
  datagram recv(ember::detail::timeout_arg timeout = std::chrono::milliseconds(-1));
  /// Close now (what is queued to deliver is dropped; later calls fail).
  void close();

  struct state;  // impl

private:
  std::shared_ptr<state> st_;
};

}  // namespace ember::io
