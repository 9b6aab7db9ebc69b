// ember::io::udp_socket (include/ember/io/udp_socket.hpp): UDP sockets owned
// by processes, with gen_udp's active modes.  Every socket is on 127.0.0.1.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "ember/io/io.hpp"
#include "io/io_support.hpp"
#include "support/support.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::udp;
using ember::io::active;
using ember::io::udp_socket;
using ember_test::with_io;

namespace {

struct ping {};
struct go {};
struct result {
  std::string what;
};

std::string text(const ember::binary& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }
udp::endpoint loopback(unsigned short port = 0) { return {asio::ip::address_v4::loopback(), port}; }

/// Ours (a udp_socket of the calling process) and a plain peer socket.
struct pair {
  udp_socket ours;
  udp::socket peer;
  void peer_send(const std::string& s) { peer.async_send_to(asio::buffer(s), ours.local_endpoint(), ember::io::use_process); }
};
pair open_pair(ember::io::context& io) {
  pair p{udp_socket::open(io.get_executor(), loopback()), udp::socket(io.get_executor(), loopback())};
  return p;
}

/// Spin (yielding) until p's mailbox holds at least n messages.
void until_queued(ember::pid p, std::size_t n) {
  for (;;) {
    auto info = ember::process_info(p);
    if (!info || info->message_queue_len >= n) return;
    ember::yield();
  }
}

/// Spin (yielding) until `port` can be bound again: its socket is closed.
bool until_free(ember::io::context& io, unsigned short port) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    udp::socket s(io.get_executor());
    boost::system::error_code ec;
    s.open(udp::v4(), ec);
    s.bind(loopback(port), ec);
    if (!ec) return true;
    ember::yield();
  }
  return false;
}

}  // namespace

TEST_CASE("io::udp_socket: active once — a datagram and other messages in one receive, one datagram per arming",
          "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto p = open_pair(io);
    p.ours.set_active(active::once());
    ember::send(ember::self(), ping{});
    p.peer_send("first");
    std::string seen;
    for (int i = 0; i < 2; ++i)
      ember::receive(
          [&](const ember::io::udp_data& d) {
            CHECK(d.socket == p.ours.id());
            CHECK(d.from == p.peer.local_endpoint());
            seen += "[" + text(d.data) + "]";
          },
          [&](ping) { seen += "[ping]"; }, ember::after(10s, [] { FAIL("nothing came"); }));
    CHECK((seen == "[ping][first]" || seen == "[first][ping]"));
    // Passive now: the next datagrams wait in the kernel until asked for.
    p.peer_send("second");
    p.peer_send("third");
    CHECK(ember::receive([](const ember::io::udp_data&) { return true; }, ember::after(50ms, [] { return false; })) ==
          false);
    for (const char* want : {"second", "third"}) {
      p.ours.set_active(active::once());
      ember::receive([&](const ember::io::udp_data& d) { CHECK(text(d.data) == want); },
                     ember::after(10s, [] { FAIL("the datagram did not come"); }));
    }
  });
}

TEST_CASE("io::udp_socket: active n counts down to udp_passive — then recv gets the rest, in order", "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto p = open_pair(io);
    p.ours.set_active(active::n(2));
    std::string got;
    for (const char* d : {"a", "b", "c", "d"}) p.peer_send(d);
    for (int i = 0; i < 2; ++i)
      ember::receive([&](const ember::io::udp_data& d) { got += text(d.data); },
                     ember::after(10s, [] { FAIL("no datagram"); }));
    ember::receive([&](const ember::io::udp_passive& m) { CHECK(m.socket == p.ours.id()); },
                   ember::after(10s, [] { FAIL("no udp_passive"); }));
    CHECK(got == "ab");
    for (const char* want : {"c", "d"}) {
      udp_socket::datagram d = p.ours.recv(10s);
      CHECK(text(d.data) == want);
      CHECK(d.from == p.peer.local_endpoint());
    }
    // In an active mode a passive recv is refused (gen_udp's einval).
    p.ours.set_active(active::always());
    CHECK_THROWS_AS(p.ours.recv(), ember::error);
  });
}

TEST_CASE("io::udp_socket: always delivers every datagram in order, and send_to answers the sender", "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto p = open_pair(io);
    p.ours.set_active(active::always());
    const int n = 200;
    for (int i = 0; i < n; ++i) {
      p.peer_send(std::to_string(i));
      // Replies to each datagram it gets, to whoever sent it.
      ember::receive([&](const ember::io::udp_data& d) {
        CHECK(text(d.data) == std::to_string(i));
        p.ours.send_to(d.from, "re:" + text(d.data));
      }, ember::after(10s, [] { FAIL("no datagram"); }));
      std::array<char, 16> buf;
      udp::endpoint from;
      std::size_t got = p.peer.async_receive_from(asio::buffer(buf), from, ember::io::use_process.timeout(10s));
      CHECK(std::string(buf.data(), got) == "re:" + std::to_string(i));
      CHECK(from == p.ours.local_endpoint());
    }
  });
}

TEST_CASE("io::udp_socket: controlling_process moves the datagrams already delivered, in order, then the rest — "
          "others are refused",
          "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto p = open_pair(io);
    const ember::pid me = ember::self();
    auto b = ember::spawn([me] {
      udp_socket mine = ember::receive([](udp_socket s) { return s; }, ember::after(10s, [] { return udp_socket(); }));
      std::string got;
      while (got.size() < 4)
        ember::receive([&](const ember::io::udp_data& d) { got += text(d.data); },
                       ember::after(10s, [&] { got += "<timeout>"; }));
      ember::send(me, result{got});
      // A socket someone else owns, handed over without controlling_process.
      udp_socket theirs = ember::receive([](udp_socket s) { return s; });
      std::string refused = "not refused";
      try {
        theirs.controlling_process(ember::self());
      } catch (const ember::io::not_owner& e) {
        refused = e.what();
      }
      ember::send(me, result{refused});
    });
    p.ours.set_active(active::always());
    const udp::endpoint ours = p.ours.local_endpoint();
    p.peer_send("ab");
    until_queued(me, 1);  // delivered here: it must follow the socket to b
    p.ours.controlling_process(b);
    ember::send(b, std::move(p.ours));
    p.peer.async_send_to(asio::buffer(std::string("cd")), ours, ember::io::use_process);
    ember::receive([](result r) { CHECK(r.what == "abcd"); }, ember::after(10s, [] { FAIL("no result"); }));
    // Holding the handle does not make b the owner of a socket of ours.
    udp_socket again = udp_socket::open(io.get_executor(), loopback());
    ember::send(b, std::move(again));
    ember::receive([](result r) { CHECK(r.what.find("does not own the socket") != std::string::npos); },
                   ember::after(10s, [] { FAIL("no answer"); }));
  });
}

TEST_CASE("io::udp_socket: errors — a datagram too large, a recv timeout, a closed socket, a port in use", "[io]") {
  with_io(2, [](ember::io::context& io) {
    auto p = open_pair(io);
    const std::string huge(70000, 'x');
    try {
      p.ours.send_to(p.peer.local_endpoint(), huge);
      FAIL("a datagram over 64 KiB was sent");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::message_size);
      CHECK(std::string(e.what()).find("udp_socket::send_to") != std::string::npos);
    }
    try {
      (void)p.ours.recv(10ms);
      FAIL("recv did not time out");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::timed_out);
    }
    // Still usable after both.
    p.peer_send("after");
    CHECK(text(p.ours.recv(10s).data) == "after");
    CHECK_THROWS_AS(udp_socket::open(io.get_executor(), p.ours.local_endpoint()), boost::system::system_error);
    p.ours.close();
    CHECK_THROWS_WITH(p.ours.recv(), Catch::Contains("the socket is closed"));
    CHECK_THROWS_WITH(p.ours.send_to(p.peer.local_endpoint(), "x"), Catch::Contains("the socket is closed"));
    CHECK_THROWS_AS(p.ours.recv(-5ms), ember::bad_argument);
  });
}

TEST_CASE("io::udp_socket: a handle with no socket refuses every call, and recv's timeout takes 0 and refuses NaN",
          "[io]") {
  with_io(1, [](ember::io::context& io) {
    auto p = open_pair(io);
    // 0: no datagram queued, so it times out at once.
    CHECK_THROWS_WITH(p.ours.recv(0ms), Catch::Contains("timed out"));
    CHECK_THROWS_AS(p.ours.recv(std::chrono::duration<double, std::milli>(std::nan(""))), ember::bad_argument);
    udp_socket moved = std::move(p.ours);
    CHECK_FALSE(p.ours);
    CHECK(p.ours.id() == ember::io::socket_id{});
    CHECK_THROWS_WITH(p.ours.set_active(active::once()), Catch::Contains("no socket"));
    CHECK_THROWS_WITH(p.ours.recv(), Catch::Contains("no socket"));
    CHECK_THROWS_WITH(p.ours.send_to(p.peer.local_endpoint(), "x"), Catch::Contains("no socket"));
    CHECK_THROWS_WITH(p.ours.controlling_process(ember::self()), Catch::Contains("no socket"));
    p.ours.close();  // nothing to close
    // The handle it moved to works.
    p.peer.async_send_to(asio::buffer(std::string("still")), moved.local_endpoint(), ember::io::use_process);
    CHECK(text(moved.recv(10s).data) == "still");
  });
}

TEST_CASE("io::udp_socket: the socket closes when its owner exits — normally, or killed while it waits in recv",
          "[io]") {
  for (bool killed : {false, true}) {
    INFO((killed ? "killed in recv" : "returns normally"));
    with_io(2, [killed](ember::io::context& io) {
      const ember::pid me = ember::self();
      auto owner = ember::spawn([&io, me, killed] {
        udp_socket s = udp_socket::open(io.get_executor(), loopback());
        s.set_active(killed ? active::off() : active::once());
        ember::send(me, s.local_endpoint().port());
        if (killed) (void)s.recv();  // killed here
        else ember::receive([](go) {});  // monitored by now: ends normally
      });
      auto ref = ember::monitor(owner);
      const auto port = ember::receive([](unsigned short x) { return x; });
      if (!killed) {
        ember::send(owner, go{});
      } else {
        for (auto info = ember::process_info(owner); info && info->status != ember::process_status::waiting;
             info = ember::process_info(owner))
          ember::yield();
        ember::exit(owner, ember::exit_reason::kill());
      }
      ember::receive([&](const ember::down& d) {
        CHECK(d.ref == ref);
        CHECK(d.reason == (killed ? ember::exit_reason::killed() : ember::exit_reason::normal()));
      });
      CHECK(until_free(io, port));
    });
  }
}
