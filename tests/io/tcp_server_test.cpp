// ember::io::tcp_server (include/ember/io/tcp_server.hpp): the supervised
// TCP server — a process per connection, the connection limit, a crashing
// connection, the drain on shutdown.  Every socket is on 127.0.0.1.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>

#include "ember/io/io.hpp"
#include "io/io_support.hpp"
#include "support/support.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace sup = ember::supervisor;
using asio::ip::tcp;
using ember::io::tcp_server;
using ember::io::tcp_server_options;
using ember_test::opts;
using ember_test::with_io;

namespace {

constexpr std::size_t request_bytes = 16;
using request = std::array<char, request_bytes>;

request make_request(const std::string& s) {
  request r{};
  s.copy(r.data(), r.size());
  return r;
}
std::string text(const request& r) { return std::string(r.data(), ::strnlen(r.data(), r.size())); }

// Messages from the connection processes to the test.
struct connected {
  ember::pid conn;
};
struct got_request {
  ember::pid conn;
  std::string what;
};
struct go {};
struct done {};

/// A client: connect to the server (throws on failure).
tcp::socket dial(ember::io::context& io, const tcp::endpoint& ep) {
  tcp::socket s(io.get_executor());
  s.async_connect(ep, ember::io::use_process);
  return s;
}
void send_request(tcp::socket& s, const std::string& what) {
  request r = make_request(what);
  asio::async_write(s, asio::buffer(r), ember::io::use_process);
}
std::string read_reply(tcp::socket& s) {
  request r{};
  asio::async_read(s, asio::buffer(r), ember::io::use_process);
  return text(r);
}
/// Whether the peer has closed its side (the next read ends the stream).
bool at_eof(tcp::socket& s) {
  request r{};
  boost::system::error_code ec;
  asio::async_read(s, asio::buffer(r), asio::redirect_error(ember::io::use_process, ec));
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

/// The echo handler: each request comes back; "crash" throws.  The reads
/// are interruptible, so the drain closes an idle connection at once.
void echo(tcp::socket s) {
  for (;;) {
    request r{};
    boost::system::error_code ec;
    asio::async_read(s, asio::buffer(r), asio::redirect_error(ember::io::use_process.interruptible(), ec));
    if (ec) return;  // end of stream, or the drain
    if (text(r) == "crash") throw std::runtime_error("the connection crashes on purpose");
    asio::async_write(s, asio::buffer(r), ember::io::use_process);
  }
}

/// Yield until pred() holds (what it waits for is another process's doing).
template <class P>
void until(P pred) {
  while (!pred()) ember::yield();
}

ember::pid child_pid(ember::pid server, const char* id) {
  auto c = sup::which_child(sup::ref(server), id);
  REQUIRE(c);
  return c->pid;
}

}  // namespace

TEST_CASE("io::tcp_server: echo over many concurrent connections, a process each", "[io][tcp_server]") {
  with_io(2, [](ember::io::context& io) {
    tcp_server srv = tcp_server::start_link(io.get_executor(), {.max_connections = 5000}, echo);
    const tcp::endpoint ep = srv.local_endpoint();
    const std::size_t clients = ember_test::scaled(1000, 100);
    constexpr int rounds = 5;
    const ember::pid me = ember::self();
    for (std::size_t i = 0; i < clients; ++i)
      ember::spawn([&io, ep, me, i] {
        tcp::socket s = dial(io, ep);
        for (int k = 0; k < rounds; ++k) {
          const std::string what = std::to_string(i) + "." + std::to_string(k);
          send_request(s, what);
          if (read_reply(s) != what) return;
        }
        ember::send(me, done{});
      });
    for (std::size_t i = 0; i < clients; ++i) {
      const bool ok = ember::receive([](done) { return true; }, ember::after(30s, [] { return false; }));
      REQUIRE(ok);
    }
    // Every client has closed (their processes ended): the server's
    // connections end too.
    until([&] { return srv.connection_count() == 0; });
    srv.stop();
  });
}

TEST_CASE("io::tcp_server: a connection that crashes closes its socket, the others carry on, nothing restarts",
          "[io][tcp_server]") {
  with_io(2, [](ember::io::context& io) {
    tcp_server srv = tcp_server::start_link(io.get_executor(), {}, echo);
    const tcp::endpoint ep = srv.local_endpoint();
    tcp::socket a = dial(io, ep), b = dial(io, ep);
    send_request(a, "a1");
    send_request(b, "b1");
    CHECK(read_reply(a) == "a1");
    CHECK(read_reply(b) == "b1");
    until([&] { return srv.connection_count() == 2; });  // once the acceptors have reported them
    send_request(a, "crash");
    CHECK(at_eof(a));  // its process went, and its socket with it
    send_request(b, "b2");
    CHECK(read_reply(b) == "b2");
    until([&] { return srv.connection_count() == 1; });
    const ember::pid conns = child_pid(srv.pid(), "connections");
    CHECK(ember::dynamic_supervisor::count_children(ember::dynamic_supervisor::ref(conns)).active == 1);
    // The tree is as it was: the crash stopped at its own process.
    CHECK(child_pid(srv.pid(), "connections") == conns);
    srv.stop();
  });
}

TEST_CASE("io::tcp_server: max_connections — at the limit it stops accepting until a connection ends",
          "[io][tcp_server]") {
  for (std::size_t acceptors : {std::size_t{1}, std::size_t{4}})
  with_io(2, [acceptors](ember::io::context& io) {
    INFO("acceptors: " << acceptors);
    const ember::pid me = ember::self();
    tcp_server srv = tcp_server::start_link(io.get_executor(), {.acceptors = acceptors, .max_connections = 2},
                                            [me](tcp::socket s) {
                                              ember::send(me, connected{ember::self()});
                                              echo(std::move(s));
                                            });
    const tcp::endpoint ep = srv.local_endpoint();
    auto next_connection = [](std::chrono::milliseconds wait) {
      return ember::receive([](const connected& c) { return c.conn; }, ember::after(wait, [] { return ember::pid{}; }));
    };
    tcp::socket c1 = dial(io, ep), c2 = dial(io, ep);
    const ember::pid p1 = next_connection(30s), p2 = next_connection(30s);
    REQUIRE(!p1.is_null());
    REQUIRE(!p2.is_null());
    // (The listener counts a connection once its acceptor has reported it.)
    until([&] { return srv.connection_count() == 2; });
    // The third client's connect completes in the kernel's backlog, but no
    // process takes it: no request of it is answered.
    tcp::socket c3 = dial(io, ep);
    send_request(c3, "third");
    CHECK(next_connection(200ms).is_null());
    CHECK(srv.connection_count() == 2);
    // One ends: the third gets its process and its answer.
    c1.close();
    const ember::pid p3 = next_connection(30s);
    REQUIRE(!p3.is_null());
    CHECK(read_reply(c3) == "third");
    until([&] { return srv.connection_count() == 2; });
    CHECK(next_connection(0ms).is_null());
    srv.stop();
  });
}

TEST_CASE("io::tcp_server: drain — requests already read are answered, idle connections close, new ones are refused",
          "[io][tcp_server]") {
  // The manual clock never moves: the drain cannot be waiting out its
  // timeout; it ends when the connections have.
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = ember_test::manual_opts(clock);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&io] {
    const ember::pid me = ember::self();
    // Each request is answered only when the test says go: a request "in
    // progress" when the drain comes.
    auto handler = [me](tcp::socket s) {
      ember::send(me, connected{ember::self()});
      for (;;) {
        request q{};
        boost::system::error_code ec;
        asio::async_read(s, asio::buffer(q), asio::redirect_error(ember::io::use_process.interruptible(), ec));
        if (ec) return;
        ember::send(me, got_request{ember::self(), text(q)});
        ember::receive([](go) {});
        asio::async_write(s, asio::buffer(q), ember::io::use_process);
      }
    };
    tcp_server srv = tcp_server::start_link(io.get_executor(), {.drain_timeout = 1h}, handler);
    const tcp::endpoint ep = srv.local_endpoint();
    tcp::socket busy = dial(io, ep);
    const ember::pid busy_conn = ember::receive([](const connected& c) { return c.conn; });
    tcp::socket idle = dial(io, ep);
    const ember::pid idle_conn = ember::receive([](const connected& c) { return c.conn; });
    send_request(busy, "in progress");
    CHECK(ember::receive([](const got_request& g) { return g.what; }) == "in progress");
    auto busy_ref = ember::monitor(busy_conn), idle_ref = ember::monitor(idle_conn);
    auto listener_ref = ember::monitor(child_pid(srv.pid(), "listener"));
    ember::spawn([srv, me] {
      srv.stop();
      ember::send(me, done{});
    });
    // The listening socket closes before the connections are told.
    ember::receive([&](const ember::down& d) { return d.ref == listener_ref; });
    tcp::socket late(io.get_executor());
    boost::system::error_code ec;
    late.async_connect(ep, asio::redirect_error(ember::io::use_process, ec));
    CHECK(ec == asio::error::connection_refused);
    // The idle connection's read is interrupted: it closes, cleanly.
    CHECK(at_eof(idle));
    auto idle_down = ember::receive([&](const ember::down& d) { return d.ref == idle_ref ? d.reason : ember::exit_reason::kill(); });
    CHECK(idle_down.is_normal());
    // The busy one finishes its request: the reply is whole, then it closes.
    ember::send(busy_conn, go{});
    CHECK(read_reply(busy) == "in progress");
    CHECK(at_eof(busy));
    auto busy_down = ember::receive([&](const ember::down& d) { return d.ref == busy_ref ? d.reason : ember::exit_reason::kill(); });
    CHECK(busy_down.is_normal());
    ember::receive([](done) {});
  });
  auto reason = r.wait();
  INFO("exit reason: " << reason);
  CHECK(reason.is_normal());
}

TEST_CASE("io::tcp_server: drain — a connection still running at drain_timeout is killed", "[io][tcp_server]") {
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = ember_test::manual_opts(clock);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  auto conn = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto r = rt.spawn_monitor([&io, stopped, conn] {
    const ember::pid me = ember::self();
    // A handler that never looks at its mailbox.
    tcp_server srv = tcp_server::start_link(io.get_executor(), {.drain_timeout = 5s}, [me](tcp::socket) {
      ember::send(me, connected{ember::self()});
      ember::receive([](go) {});
    });
    tcp::socket c = dial(io, srv.local_endpoint());
    const ember::pid p = ember::receive([](const connected& m) { return m.conn; });
    auto ref = ember::monitor(p);
    ember::spawn([srv, stopped] {
      srv.stop();
      stopped->store(true);
    });
    // The drain's exit signal waits in its mailbox...
    until([&] {
      auto i = ember::process_info(p);
      return i && i->message_queue_len >= 1;
    });
    conn->store(1);
    // ...until the clock passes drain_timeout: then it is killed.
    auto why = ember::receive([&](const ember::down& d) { return d.ref == ref ? d.reason : ember::exit_reason::normal(); });
    CHECK(why == ember::exit_reason::killed());
    CHECK(at_eof(c));
  });
  while (conn->load() == 0) std::this_thread::yield();
  clock->advance(4999ms);
  CHECK_FALSE(stopped->load());
  clock->advance(1ms);
  auto reason = r.wait();
  INFO("exit reason: " << reason);
  CHECK(reason.is_normal());
  CHECK(stopped->load());
}

TEST_CASE("io::tcp_server: as a child of an application's supervisor — stopping the parent drains it",
          "[io][tcp_server]") {
  with_io(2, [](ember::io::context& io) {
    // Not linked to us: stopping it with `shutdown` would take us down too.
    auto s = sup::start({}, {tcp_server::child_spec("tcp", io.get_executor(), {.acceptors = 2}, echo)});
    REQUIRE(s);
    tcp_server srv(child_pid(s.pid(), "tcp"));
    tcp::socket c = dial(io, srv.local_endpoint());
    send_request(c, "hi");
    CHECK(read_reply(c) == "hi");
    until([&] { return srv.connection_count() == 1; });
    ember::gen_server::stop(sup::ref(s.pid()), ember::exit_reason::shutdown());
    CHECK(at_eof(c));  // its read was interrupted by the drain
  });
}

TEST_CASE("io::tcp_server: a port in use and bad options are errors that say what was wrong", "[io][tcp_server]") {
  with_io(1, [](ember::io::context& io) {
    tcp_server a = tcp_server::start_link(io.get_executor(), {}, echo);
    const tcp::endpoint ep = a.local_endpoint();
    try {
      (void)tcp_server::start_link(io.get_executor(), {.endpoint = ep}, echo);
      FAIL("two servers listen on one port");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::address_in_use);
      CHECK(std::string(e.what()).find(std::to_string(ep.port())) != std::string::npos);
    }
    // As a child: the supervisor's start fails, naming the child.
    auto s = sup::start({}, {tcp_server::child_spec("tcp", io.get_executor(), {.endpoint = ep}, echo)});
    REQUIRE_FALSE(s);
    CHECK(fmt::format("{}", s.error()).find("tcp") != std::string::npos);
    // The first server is untouched.
    tcp::socket c = dial(io, ep);
    send_request(c, "still here");
    CHECK(read_reply(c) == "still here");
    CHECK_THROWS_AS(tcp_server::start_link(io.get_executor(), {.acceptors = 0}, echo), ember::bad_argument);
    CHECK_THROWS_AS(tcp_server::start_link(io.get_executor(), {.max_connections = 0}, echo), ember::bad_argument);
    CHECK_THROWS_AS(tcp_server::start_link(io.get_executor(), {.drain_timeout = -1ms}, echo), ember::bad_argument);
    CHECK_THROWS_AS(tcp_server::start_link(io.get_executor(), {}, tcp_server::handler{}), ember::bad_argument);
    a.stop();
  });
}

TEST_CASE("io::tcp_server: the runtime stopping with the server running (acceptors waiting) ends it cleanly",
          "[io][tcp_server]") {
  // Everything is killed at once: the listener and the acceptors whose
  // accepts are pending on the shared listening socket.
  for (int round = 0; round < int(ember_test::scaled(40, 10)); ++round) {
    auto o = opts(2);
    ember::io::context io(ember::io::on_workers, o);
    ember::runtime rt(o);
    auto r = rt.spawn_monitor([&io] {
                 tcp_server srv = tcp_server::start_link(io.get_executor(), {.acceptors = 4}, echo);
                 tcp::socket c = dial(io, srv.local_endpoint());
                 send_request(c, "x");
                 CHECK(read_reply(c) == "x");
                 ember::exit(ember::exit_reason::shutdown());  // the server, linked, is told as the runtime stops
               }).wait();
    CHECK(r == ember::exit_reason::shutdown());
  }
}
