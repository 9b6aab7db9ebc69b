// ember/io/tcp_server.hpp — a supervised TCP server, as ranch: a listener
// with N acceptor processes, one process per connection under a dynamic
// supervisor, a connection limit, and a graceful drain on shutdown.
//
//   ember::io::tcp_server_options o{.endpoint = {boost::asio::ip::address_v4::any(), 8080},
//                                   .max_connections = 10000, .drain_timeout = 10s};
//   auto srv = ember::io::tcp_server::start_link(io.get_executor(), o,
//       [](boost::asio::ip::tcp::socket s) { serve(std::move(s)); });  // in the connection's process
//   srv.local_endpoint();  srv.connection_count();  srv.stop();        // stop: drain, then return
//
//   sup::start_link({}, {ember::io::tcp_server::child_spec("http", ex, o, serve)});  // in a tree
//
// The tree (a supervisor, rest_for_one):
//   connections   dynamic_supervisor: a process per connection (temporary
//                 children, shutdown = drain_timeout)
//   listener      gen_server: owns the listening socket (opened in its
//                 init, so a port in use fails the start) and counts the
//                 connections against max_connections
//   acceptor_1..N processes: take a slot from the listener, accept, start
//                 the connection's process, repeat
//
// Contract (tests in tests/io/tcp_server_test.cpp):
//  - The handler runs in the connection's own process, which owns the
//    socket (in the handler's frame: it closes when the handler returns,
//    throws or the process is killed).  The process traps exits, so the
//    drain's `shutdown` reaches the handler as an exit_message (see below).
//    A handler that throws ends its own process only: its socket closes,
//    the other connections carry on, nothing restarts (temporary).
//  - max_connections: at most that many connection processes at once; an
//    acceptor takes a slot before it accepts, so at the limit the server
//    stops accepting (new clients wait in the kernel's backlog) until a
//    connection ends.  connection_count(): connection processes running.
//  - Drain (stop(), or the parent supervisor stopping the server): the
//    acceptors stop, then the listener closes the listening socket (new
//    connections are refused from then on), then every connection process
//    is sent exit(shutdown) at once — a trapped exit, an exit_message in
//    its mailbox — and has drain_timeout to finish what it has read and
//    return; one still running then is killed.  A handler waiting in an
//    operation sees the message only when it next receives; give its
//    reads use_process.interruptible() to have the drain cancel them.
//  - A port that cannot be bound: start_link throws
//    boost::system::system_error (the bind or listen error); as a child,
//    the start fails with that error in the reason.  Bad options (0
//    acceptors, 0 max_connections, a negative drain_timeout): bad_argument.
//  - The listening socket is on a strand of the executor given (the
//    acceptors share it); each accepted socket is on the executor itself
//    (its connection process alone uses it).  Any number of workers may
//    run the event loop.
//
// Threads: start_link, stop, local_endpoint, connection_count in process
// context (calls to the server's processes).  Ownership: the server's
// processes share the handler (copied once per connection) and the
// listening socket; the handle is a pid.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>

#include "ember/pid.hpp"
#include "ember/supervisor.hpp"

namespace ember::io {

struct tcp_server_options {
  /// Where to listen (port 0: a free port; see local_endpoint()).
  boost::asio::ip::tcp::endpoint endpoint{boost::asio::ip::address_v4::loopback(), 0};
  /// Acceptor processes (>= 1).
  std::size_t acceptors = 4;
  /// Connection processes at most (>= 1; no_limit: none).
  std::size_t max_connections = 16384;
  /// How long connections get to finish once the drain has told them to.
  std::chrono::milliseconds drain_timeout{5000};
  /// The listen backlog.
  int backlog = boost::asio::socket_base::max_listen_connections;
  /// SO_REUSEADDR on the listening socket.
  bool reuse_address = true;

  static constexpr std::size_t no_limit = std::numeric_limits<std::size_t>::max();
};

class tcp_server {
public:
  /// Serves one connection, in its own process.
  using handler = std::function<void(boost::asio::ip::tcp::socket)>;

  /// Start the server linked to the calling process; returns once it
  /// listens.  Errors: see the top of the file.
  static tcp_server start_link(const boost::asio::any_io_executor& ex, tcp_server_options o, handler h);
  /// The server as a supervisor's child (type supervisor, shutdown
  /// infinity: its own drain bounds it).
  static ember::supervisor::child_spec child_spec(std::string id, const boost::asio::any_io_executor& ex,
                                                  tcp_server_options o, handler h);

  /// The server whose supervisor is p (start_link's, or a child_spec
  /// child's pid).
  explicit tcp_server(ember::pid p) noexcept : pid_(p) {}
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }

  /// Where it listens (the port chosen for port 0).
  [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const;
  /// Connection processes running now.
  [[nodiscard]] std::size_t connection_count() const;
  /// Drain (see the top of the file) and return when every process of the
  /// server has ended.  The server exits with reason normal, so the
  /// process linked to it by start_link carries on.  For a server started
  /// by start_link (from any process); a child of another supervisor is
  /// stopped by that supervisor (terminate_child, or its own shutdown).
  void stop() const;

private:
  ember::pid pid_;
};

}  // namespace ember::io
