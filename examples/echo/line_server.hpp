// line_server.hpp — a line-protocol server on ember::io: each line a client
// sends comes back as "echo: <line>"; the line "quit" ends the connection.
//
// One listener process accepts; each connection gets a process of its own
// that owns its socket in active-once mode, so one receive waits for the
// socket's data and for a `stop` message (and an idle timeout).  A
// connection process that crashes takes only its own socket down.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <ember/ember.hpp>
#include <ember/io/io.hpp>

namespace line_server {

/// Ask a connection process to close its socket and end.
struct stop {};

/// Serve one connection (its process owns `s`).
inline void serve(ember::io::tcp_socket s, std::chrono::milliseconds idle_timeout) {
  using namespace ember::io;
  std::string pending;  // bytes after the last full line
  s.set_active(active::once());
  for (;;) {
    const bool more = ember::receive(
        [&](const tcp_data& d) {
          pending.append(reinterpret_cast<const char*>(d.data.data()), d.data.size());
          for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line == "quit") return false;
            s.write("echo: " + line + "\n");
          }
          s.set_active(active::once());  // the next piece only when this one is done
          return true;
        },
        [](const tcp_closed&) { return false; }, [](const tcp_error&) { return false; },
        [](stop) { return false; }, ember::after(idle_timeout, [] { return false; }));
    if (!more) return;  // the socket closes with its handle
  }
}

/// The listener: accept on `acc` for ever, a process per connection.
inline void listen(boost::asio::ip::tcp::acceptor acc, std::chrono::milliseconds idle_timeout) {
  for (;;) {
    boost::asio::ip::tcp::socket sock = acc.async_accept(ember::io::use_process);
    ember::pid conn = ember::spawn([sock = std::move(sock), idle_timeout]() mutable {
      serve(ember::io::tcp_socket(std::move(sock)), idle_timeout);
    });
    (void)conn;
  }
}

}  // namespace line_server
