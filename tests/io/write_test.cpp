// ember::io::write (include/ember/io/write.hpp): a write that suspends the
// process only for what the kernel cannot take now.  Every socket is on
// 127.0.0.1.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include "io/io_support.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using ember_test::loopback;
using ember_test::opts;
using ember_test::until_waiting;
using ember_test::with_io;

namespace {

struct go {};
struct wrote {
  std::size_t n;
};
struct read_back {
  std::string data;
};
struct failed {
  std::string what;
};

/// `n` bytes of a pattern that shows where a byte came from.
std::string pattern(std::size_t n, char salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = char('a' + (i * 7 + std::size_t(salt)) % 26);
  return s;
}

/// Two connected sockets on `io`, made without running it.
std::pair<tcp::socket, tcp::socket> connected_pair(asio::io_context& io) {
  tcp::acceptor acc(io, loopback());
  tcp::socket a(io);
  a.connect(acc.local_endpoint());
  return {std::move(a), acc.accept()};
}

}  // namespace

TEST_CASE("io::write: what the kernel takes at once is written without the event loop — one buffer or many", "[io]") {
  // An io_context nobody runs: a write that went through it would never
  // complete.
  asio::io_context idle;
  auto [a, b] = connected_pair(idle);
  const std::string one = pattern(64, 'x');
  const std::string two = pattern(100, 'y'), three = pattern(3, 'z');
  ember::runtime rt(opts(1));
  auto p = rt.spawn_monitor([&] {
    const ember::pid me = ember::self();
    auto writer = ember::spawn_monitor([&, me] {
      const std::size_t n1 = ember::io::write(a, asio::buffer(one));
      const std::array<asio::const_buffer, 4> seq{asio::buffer(two), asio::const_buffer(), asio::buffer(three),
                                                  asio::buffer(one)};
      boost::system::error_code ec;
      const std::size_t n2 = ember::io::write(a, seq, ec);
      if (ec) ember::send(me, failed{ec.message()});
      ember::send(me, wrote{n1 + n2});
    });
    ember::receive([](const wrote& w) { CHECK(w.n == 64 + 100 + 3 + 64); },
                   [](const failed& f) { FAIL(f.what); },
                   ember::after(30s, [] { FAIL("the write waited for an event loop that does not run"); }));
    ember::receive([](const ember::down& d) { CHECK(d.reason.is_normal()); });
  });
  CHECK(p.wait().is_normal());
  std::string in(64 + 100 + 3 + 64, '\0');
  asio::read(b, asio::buffer(in));
  CHECK(in == one + two + three + one);
  // Nothing was queued on the event loop.
  CHECK(idle.poll() == 0);
}

TEST_CASE("io::write: a write larger than the kernel takes waits for the reader — in order, every byte, a "
          "sequence of more than 16 buffers",
          "[io]") {
  for (unsigned workers : {1u, 2u}) {
    INFO(workers << " workers");
    with_io(workers, [](ember::io::context& io) {
      tcp::acceptor acc(io.get_executor(), loopback());
      const unsigned short port = acc.local_endpoint().port();
      const ember::pid me = ember::self();
      // 20 buffers of 64 KiB: far more than the small buffers hold.
      auto data = std::make_shared<std::vector<std::string>>();
      std::string all;
      for (int i = 0; i < 20; ++i) {
        data->push_back(pattern(64 * 1024, char(i)));
        all += data->back();
      }
      auto writer = ember::spawn_link([&io, me, port, data] {
        tcp::socket s(io.get_executor());
        s.async_connect(loopback(port), ember::io::use_process);
        s.set_option(asio::socket_base::send_buffer_size(16 * 1024));
        ember::send(me, go{});
        std::vector<asio::const_buffer> seq;
        for (const std::string& d : *data) seq.push_back(asio::buffer(d));
        ember::send(me, wrote{ember::io::write(s, seq)});
      });
      tcp::socket server = acc.async_accept(ember::io::use_process);
      server.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
      ember::receive([](go) {});
      // The writer waits: its reader has not read yet.
      until_waiting(writer);
      ember::receive([](const wrote&) { FAIL("the write returned before its bytes were read"); },
                     ember::after(0ms, [] {}));
      std::string in(all.size(), '\0');
      CHECK(asio::async_read(server, asio::buffer(in), ember::io::use_process) == all.size());
      CHECK(in == all);
      ember::receive([&](const wrote& w) { CHECK(w.n == all.size()); });
    });
  }
}

TEST_CASE("io::write: a kill while the write waits cancels it and ends the writer — its socket closes", "[io]") {
  with_io(2, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), loopback());
    const unsigned short port = acc.local_endpoint().port();
    const ember::pid me = ember::self();
    auto writer = ember::spawn([&io, me, port] {
      tcp::socket s(io.get_executor());
      s.async_connect(loopback(port), ember::io::use_process);
      s.set_option(asio::socket_base::send_buffer_size(16 * 1024));
      ember::send(me, go{});
      const std::string big = pattern(4 << 20, 'k');
      ember::io::write(s, asio::buffer(big));  // nobody reads
      ember::send(me, failed{"the write completed"});
    });
    auto ref = ember::monitor(writer);
    tcp::socket server = acc.async_accept(ember::io::use_process);
    server.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
    ember::receive([](go) {});
    until_waiting(writer);
    ember::exit(writer, ember::exit_reason::kill());
    ember::receive(
        [&](const ember::down& d) {
          CHECK(d.ref == ref);
          CHECK(d.reason == ember::exit_reason::killed());
        },
        ember::after(30s, [] { FAIL("the writer did not end: its write was not cancelled"); }));
    // Its socket was closed as it unwound: the reader gets what was sent,
    // then end of file.
    std::array<char, 64 * 1024> buf;
    boost::system::error_code ec;
    std::size_t total = 0;
    while (!ec) total += server.async_read_some(asio::buffer(buf), asio::redirect_error(ember::io::use_process, ec));
    CHECK(ec == asio::error::eof);
    CHECK(total < std::size_t(4 << 20));
    ember::receive([](const failed& f) { FAIL(f.what); }, ember::after(0ms, [] {}));
  });
}

TEST_CASE("io::write: errors — a closed socket, a reset peer, an empty write, outside a process", "[io]") {
  asio::io_context idle;
  auto [a, b] = connected_pair(idle);
  const std::string msg = pattern(1024, 'e');
  CHECK_THROWS_AS(ember::io::write(a, asio::buffer(msg)), ember::not_in_process);
  ember::runtime rt(opts(1));
  auto p = rt.spawn_monitor([&] {
    // Nothing to write: 0, at once.
    CHECK(ember::io::write(a, asio::const_buffer()) == 0);
    // The peer resets the connection: a later write fails, as system_error
    // or as the code.
    b.set_option(asio::socket_base::linger(true, 0));
    b.close();
    boost::system::error_code ec;
    for (int i = 0; i < 1000 && !ec; ++i) ember::io::write(a, asio::buffer(msg), ec);
    CHECK((ec == asio::error::connection_reset || ec == asio::error::broken_pipe));
    CHECK_THROWS_AS(ember::io::write(a, asio::buffer(msg)), boost::system::system_error);
    // A closed socket: bad_descriptor, nothing written.
    a.close();
    CHECK(ember::io::write(a, asio::buffer(msg), ec) == 0);
    CHECK(ec == asio::error::bad_descriptor);
  });
  CHECK(p.wait().is_normal());
}

TEST_CASE("io::write: inside ember::blocking it is a plain blocking write", "[io]") {
  with_io(2, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), loopback());
    const unsigned short port = acc.local_endpoint().port();
    const ember::pid me = ember::self();
    const std::string big = pattern(1 << 20, 'b');
    ember::spawn_link([&io, me, port, &big] {
      tcp::socket s(io.get_executor());
      s.async_connect(loopback(port), ember::io::use_process);
      s.set_option(asio::socket_base::send_buffer_size(16 * 1024));
      ember::send(me, wrote{ember::blocking([&] { return ember::io::write(s, asio::buffer(big)); })});
    });
    tcp::socket server = acc.async_accept(ember::io::use_process);
    std::string in(big.size(), '\0');
    CHECK(asio::async_read(server, asio::buffer(in), ember::io::use_process) == big.size());
    CHECK(in == big);
    ember::receive([&](const wrote& w) { CHECK(w.n == big.size()); });
  });
}
