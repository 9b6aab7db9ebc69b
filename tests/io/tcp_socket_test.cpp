// ember::io::tcp_socket (include/ember/io/tcp_socket.hpp): sockets owned by
// processes, with gen_tcp's active modes.  Every socket is on 127.0.0.1.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
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
using asio::ip::tcp;
using ember::io::active;
using ember::io::tcp_socket;
using ember_test::opts;
using ember_test::until_waiting;
using ember_test::with_io;

namespace {

struct ping {};
struct go {};
struct result {
  std::string what;
};

std::string text(const ember::binary& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

/// A connected pair: `ours` (a tcp_socket of the calling process) and the
/// peer's plain socket.
struct pair {
  tcp_socket ours;
  tcp::socket peer;
};
pair connect_pair(ember::io::context& io) {
  tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
  tcp_socket s = tcp_socket::connect(io.get_executor(), acc.local_endpoint());
  tcp::socket peer = acc.async_accept(ember::io::use_process);
  return {std::move(s), std::move(peer)};
}

void peer_write(tcp::socket& peer, const std::string& s) {
  asio::async_write(peer, asio::buffer(s), ember::io::use_process);
}

/// Spin (yielding) until p's mailbox holds at least n messages.
void until_queued(ember::pid p, std::size_t n) {
  for (;;) {
    auto info = ember::process_info(p);
    if (!info || info->message_queue_len >= n) return;
    ember::yield();
  }
}

}  // namespace

TEST_CASE("io::tcp_socket: active once — socket data and other messages in one receive, one message per arming",
          "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    s.set_active(active::once());
    ember::send(ember::self(), ping{});
    peer_write(peer, "first");
    std::string seen;
    for (int i = 0; i < 2; ++i)
      ember::receive([&](const ember::io::tcp_data& d) { CHECK(d.socket == s.id()); seen += "[" + text(d.data) + "]"; },
                     [&](ping) { seen += "[ping]"; }, ember::after(10s, [] { FAIL("nothing came"); }));
    CHECK((seen == "[ping][first]" || seen == "[first][ping]"));
    // Passive now: more data waits until it is asked for.
    peer_write(peer, "second");
    CHECK(ember::receive([](const ember::io::tcp_data&) { return true; }, ember::after(50ms, [] { return false; })) ==
          false);
    s.set_active(active::once());
    ember::receive([](const ember::io::tcp_data& d) { CHECK(text(d.data) == "second"); },
                   ember::after(10s, [] { FAIL("the held data did not come"); }));
  });
}

TEST_CASE("io::tcp_socket: active n counts down to tcp_passive — then passive reads get the rest, in order",
          "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    s.set_active(active::n(2));
    std::string got;
    for (const char* chunk : {"a", "b"}) {
      peer_write(peer, chunk);
      ember::receive([&](const ember::io::tcp_data& d) { got += text(d.data); },
                     ember::after(10s, [] { FAIL("no data"); }));
    }
    ember::receive([&](const ember::io::tcp_passive& p) { CHECK(p.socket == s.id()); },
                   ember::after(10s, [] { FAIL("no tcp_passive"); }));
    CHECK(got == "ab");
    peer_write(peer, "cd");
    CHECK(text(s.recv(0, 10s)) == "cd");
    CHECK_THROWS_AS(active::n(0), ember::bad_argument);
    // In an active mode a passive read is refused (gen_tcp's einval).
    s.set_active(active::always());
    CHECK_THROWS_AS(s.recv(), ember::error);
  });
}

TEST_CASE("io::tcp_socket: always delivers everything, then tcp_closed when the peer closes", "[io]") {
  with_io(1, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    s.set_active(active::always());
    std::string all(100000, 'x');
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = char('a' + i % 26);
    peer_write(peer, all);
    peer.close();
    std::string got;
    bool closed = false;
    while (!closed)
      ember::receive([&](const ember::io::tcp_data& d) { got += text(d.data); },
                     [&](const ember::io::tcp_closed& c) { CHECK(c.socket == s.id()); closed = true; },
                     ember::after(10s, [&] { FAIL("stalled after " << got.size() << " bytes"); }));
    CHECK(got == all);
  });
}

TEST_CASE("io::tcp_socket: controlling_process moves the messages already delivered, in order, then the rest",
          "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    const ember::pid me = ember::self();
    auto b = ember::spawn([me] {
      tcp_socket mine = ember::receive([](tcp_socket t) { return t; }, ember::after(10s, [] { return tcp_socket(); }));
      std::string got;
      while (got.size() < 10)
        ember::receive([&](const ember::io::tcp_data& d) { got += text(d.data); },
                       ember::after(10s, [&] { got += "<timeout>"; }));
      mine.write("thanks");
      ember::send(me, result{got});
    });
    s.set_active(active::always());
    peer_write(peer, "hello");
    until_queued(me, 1);  // delivered here: it must follow the socket to b
    s.controlling_process(b);
    ember::send(b, std::move(s));
    peer_write(peer, "world");
    ember::receive([](result r) { CHECK(r.what == "helloworld"); }, ember::after(10s, [] { FAIL("no result"); }));
    std::string reply(6, '\0');
    asio::async_read(peer, asio::buffer(reply), ember::io::use_process);
    CHECK(reply == "thanks");
  });
}

TEST_CASE("io::tcp_socket: controlling_process from a process that does not own the socket is refused", "[io]") {
  with_io(1, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    const ember::pid me = ember::self();
    auto b = ember::spawn([me] {
      tcp_socket t = ember::receive([](tcp_socket x) { return x; });
      std::string what = "not refused";
      try {
        t.controlling_process(ember::self());
      } catch (const ember::io::not_owner& e) {
        what = e.what();
      }
      ember::send(me, result{what});
      ember::send(me, std::move(t));  // back to its owner
    });
    ember::send(b, std::move(s));
    ember::receive([](result r) { CHECK(r.what.find("does not own the socket") != std::string::npos); });
    tcp_socket back = ember::receive([](tcp_socket x) { return x; });
    // Still ours, and working.
    back.write("ok");
    std::string two(2, '\0');
    asio::async_read(peer, asio::buffer(two), ember::io::use_process);
    CHECK(two == "ok");
  });
}

TEST_CASE("io::tcp_socket: the socket closes when its owner exits, whichever way", "[io]") {
  for (bool killed : {false, true}) {
    INFO((killed ? "killed while waiting in receive" : "returns normally"));
    with_io(2, [killed](ember::io::context& io) {
      tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
      const auto ep = acc.local_endpoint();
      const ember::pid me = ember::self();
      auto owner = ember::spawn([&io, ep, me, killed] {
        tcp_socket s = tcp_socket::connect(io.get_executor(), ep);
        s.set_active(active::once());
        ember::send(me, ping{});
        if (killed) ember::receive([](go) {});  // killed here
      });
      tcp::socket peer = acc.async_accept(ember::io::use_process);
      ember::receive([](ping) {});
      if (killed) ember::exit(owner, ember::exit_reason::kill());
      std::array<char, 4> buf;
      boost::system::error_code ec;
      peer.async_read_some(asio::buffer(buf), asio::redirect_error(ember::io::use_process.timeout(10s), ec));
      CHECK(ec == asio::error::eof);
    });
  }
}

TEST_CASE("io::tcp_socket: a write to a peer that does not read holds up only the writer", "[io]") {
  with_io(2, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
    const auto ep = acc.local_endpoint();
    const ember::pid me = ember::self();
    const std::size_t big = 32u << 20;  // far more than the socket buffers hold
    auto writer = ember::spawn([&io, ep, me, big] {
      tcp_socket s = tcp_socket::connect(io.get_executor(), ep);
      const std::string data(big, 'w');
      ember::send(me, go{});
      s.write(data);
      ember::send(me, result{"written"});
    });
    tcp::socket peer = acc.async_accept(ember::io::use_process);
    ember::receive([](go) {});
    until_waiting(writer);  // in its write: nothing else makes it wait now
    // The writer waits; other processes (this one, a fresh one) go on.
    ember::spawn([me] { ember::send(me, ping{}); });
    ember::receive([](ping) {}, ember::after(10s, [] { FAIL("a process did not run while the writer waited"); }));
    CHECK(ember::receive([](result) { return true; }, ember::after(20ms, [] { return false; })) == false);
    // Now read it all: the write completes.
    std::vector<char> sink(big);
    asio::async_read(peer, asio::buffer(sink), ember::io::use_process);
    ember::receive([](result r) { CHECK(r.what == "written"); }, ember::after(10s, [] { FAIL("no result"); }));
  });
}

TEST_CASE("io::tcp_socket: passive recv — a timeout, data, end of stream, and close()", "[io]") {
  with_io(1, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    try {
      s.recv(0, 10ms);
      FAIL("recv returned with no data");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::timed_out);
    }
    peer_write(peer, "abcdef");
    CHECK(text(s.recv(4, 10s)) == "abcd");
    CHECK(text(s.recv(0, 10s)) == "ef");
    peer.close();
    try {
      s.recv(0, 10s);
      FAIL("recv returned after the peer closed");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::eof);
    }
    CHECK_THROWS_AS(s.recv(0, -5ms), ember::bad_argument);
    CHECK_THROWS_AS(tcp_socket::connect(io.get_executor(), s.local_endpoint(), -5ms), ember::bad_argument);
    s.close();
    CHECK_THROWS_AS(s.write("late"), ember::error);
    tcp_socket none;
    CHECK_THROWS_AS(none.set_active(active::once()), ember::error);
  });
}

TEST_CASE("io::tcp_socket: turning passive while a read is outstanding loses nothing — recv gets the data", "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto [s, peer] = connect_pair(io);
    s.set_active(active::always());  // a read is outstanding now
    s.set_active(active::off());
    peer_write(peer, "after");
    CHECK(text(s.recv(0, 10s)) == "after");
    // And data that waits while passive comes when active again.
    peer_write(peer, "held");
    s.set_active(active::once());
    ember::receive([](const ember::io::tcp_data& d) { CHECK(text(d.data) == "held"); },
                   ember::after(10s, [] { FAIL("no data"); }));
  });
}
