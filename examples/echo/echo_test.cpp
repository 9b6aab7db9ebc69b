// The line server (line_server.hpp) over 127.0.0.1.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "line_server.hpp"
#include "support/support.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct answer {
  std::string text;
};

/// Run body(io, endpoint) in a process, with the line server listening.
template <class F>
void with_server(std::chrono::milliseconds idle, F body) {
  auto o = ember_test::opts(2);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&] {
              ember::io::tcp_server server =
                  line_server::start(io.get_executor(), {asio::ip::address_v4::loopback(), 0}, idle);
              body(io, server.local_endpoint());
              server.stop();
            }).wait();
  INFO("exit reason: " << r);
  CHECK(r.is_normal());
}

std::string read_line(tcp::socket& s, asio::streambuf& in) {
  const std::size_t n = asio::async_read_until(s, in, '\n', ember::io::use_process.timeout(10s));
  std::string line(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + std::ptrdiff_t(n));
  in.consume(n);
  return line;
}

/// What the peer sees next: "eof", or the error.
std::string end_of(tcp::socket& s) {
  char c;
  boost::system::error_code ec;
  s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(ember::io::use_process.timeout(10s), ec));
  return ec == asio::error::eof ? "eof" : ec ? ec.message() : "data";
}

}  // namespace

TEST_CASE("echo: many clients at once each get their own lines back, in order", "[echo]") {
  const int clients = int(ember_test::scaled(200, 40));
  with_server(5s, [clients](ember::io::context& io, tcp::endpoint at) {
    const ember::pid me = ember::self();
    for (int c = 0; c < clients; ++c)
      ember::spawn([&io, at, me, c] {
        tcp::socket s(io.get_executor());
        s.async_connect(at, ember::io::use_process);
        const std::string tag = std::to_string(c);
        asio::async_write(s, asio::buffer("one " + tag + "\ntwo " + tag + "\n"), ember::io::use_process);
        asio::streambuf in;
        std::string got = read_line(s, in);
        got += read_line(s, in);
        ember::send(me, answer{got == "echo: one " + tag + "\necho: two " + tag + "\n" ? "ok" : got});
      });
    for (int c = 0; c < clients; ++c)
      ember::receive([](const answer& a) { CHECK(a.text == "ok"); }, ember::after(30s, [] { FAIL("no answer"); }));
  });
}

TEST_CASE("echo: a line split over several writes is answered once it is whole — quit closes", "[echo]") {
  with_server(5s, [](ember::io::context& io, tcp::endpoint at) {
    tcp::socket s(io.get_executor());
    s.async_connect(at, ember::io::use_process);
    s.set_option(tcp::no_delay(true));
    asio::async_write(s, asio::buffer(std::string("hel")), ember::io::use_process);
    asio::async_write(s, asio::buffer(std::string("lo\r\nqu")), ember::io::use_process);
    asio::streambuf in;
    CHECK(read_line(s, in) == "echo: hello\n");
    asio::async_write(s, asio::buffer(std::string("it\n")), ember::io::use_process);
    CHECK(end_of(s) == "eof");
  });
}

TEST_CASE("echo: an idle connection is closed after the idle timeout", "[echo]") {
  with_server(50ms, [](ember::io::context& io, tcp::endpoint at) {
    tcp::socket s(io.get_executor());
    s.async_connect(at, ember::io::use_process);
    CHECK(end_of(s) == "eof");
  });
}

TEST_CASE("echo: a stop message ends a connection — a connection that crashes takes down only itself", "[echo]") {
  auto o = ember_test::opts(2);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&] {
              tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
              tcp::socket a(io.get_executor()), b(io.get_executor());
              a.async_connect(acc.local_endpoint(), ember::io::use_process);
              tcp::socket sa = acc.async_accept(ember::io::use_process);
              b.async_connect(acc.local_endpoint(), ember::io::use_process);
              tcp::socket sb = acc.async_accept(ember::io::use_process);
              ember::pid ca = ember::spawn([s = std::move(sa)]() mutable {
                line_server::serve(ember::io::tcp_socket(std::move(s)), 5s);
              });
              ember::pid cb = ember::spawn([s = std::move(sb)]() mutable {
                line_server::serve(ember::io::tcp_socket(std::move(s)), 5s);
              });
              ember::send(ca, line_server::stop{});
              CHECK(end_of(a) == "eof");
              ember::exit(cb, ember::exit_reason::error("crash"));  // as a crash
              CHECK(end_of(b) == "eof");
            }).wait();
  CHECK(r.is_normal());
}

TEST_CASE("echo: stopping the server answers the lines already sent, closes every connection, refuses new ones",
          "[echo]") {
  auto o = ember_test::opts(2);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&] {
              ember::io::tcp_server server =
                  line_server::start(io.get_executor(), {asio::ip::address_v4::loopback(), 0}, 30s);
              const tcp::endpoint at = server.local_endpoint();
              tcp::socket s(io.get_executor());
              s.async_connect(at, ember::io::use_process);
              asio::streambuf in;
              asio::async_write(s, asio::buffer(std::string("one\n")), ember::io::use_process);
              CHECK(read_line(s, in) == "echo: one\n");
              server.stop();  // returns once every connection has closed (long before the idle timeout)
              CHECK(end_of(s) == "eof");
              tcp::socket late(io.get_executor());
              boost::system::error_code ec;
              late.async_connect(at, asio::redirect_error(ember::io::use_process, ec));
              CHECK(ec == asio::error::connection_refused);
            }).wait();
  INFO("exit reason: " << r);
  CHECK(r.is_normal());
}
