// line_server.hpp — a line-protocol server on ember::io: each line a client
// sends comes back as "echo: <line>"; the line "quit" ends the connection.
//
// The server is an ember::io::tcp_server: acceptors under a supervisor, and
// each connection a process of its own that owns its socket in active-once
// mode, so one receive waits for the socket's data, a `stop` message, the
// server's drain (an exit_message: the connection process traps exits) and
// an idle timeout.  A connection process that crashes takes only its own
// socket down.
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
        [](stop) { return false; },
        [](const ember::exit_message&) { return false; },  // the drain: every line read is answered
        ember::after(idle_timeout, [] { return false; }));
    if (!more) return;  // the socket closes with its handle
  }
}

/// Start the server on `at` (port 0: any free port), linked to the caller.
inline ember::io::tcp_server start(const boost::asio::any_io_executor& ex, boost::asio::ip::tcp::endpoint at,
                                   std::chrono::milliseconds idle_timeout) {
  return ember::io::tcp_server::start_link(ex, {.endpoint = at}, [idle_timeout](boost::asio::ip::tcp::socket s) {
    serve(ember::io::tcp_socket(std::move(s)), idle_timeout);
  });
}

}  // namespace line_server
