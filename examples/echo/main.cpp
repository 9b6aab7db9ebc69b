// ember_echo — runs the line server (line_server.hpp) on 127.0.0.1 and three
// clients against it, prints what they got back, and stops.
#include <chrono>
#include <cstdio>
#include <string>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "line_server.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

struct answer {
  int client;
  std::string text;
};

int main() {
  ember::runtime_options o;
  ember::io::context io(ember::io::on_workers, o);  // the runtime's workers run the event loop
  return ember::run(
      [&] {
        ember::io::tcp_server server = line_server::start(io.get_executor(), {asio::ip::address_v4::loopback(), 0}, 5s);
        const tcp::endpoint at = server.local_endpoint();
        std::printf("line server on %s:%u\n", at.address().to_string().c_str(), unsigned(at.port()));

        const ember::pid me = ember::self();
        for (int c = 1; c <= 3; ++c)
          ember::spawn([&io, at, me, c] {
            tcp::socket s(io.get_executor());
            s.async_connect(at, ember::io::use_process);
            std::string lines = "hello from client " + std::to_string(c) + "\nbye\nquit\n";
            asio::async_write(s, asio::buffer(lines), ember::io::use_process);
            asio::streambuf in;
            std::string got;
            for (int i = 0; i < 2; ++i) {
              const std::size_t n = asio::async_read_until(s, in, '\n', ember::io::use_process);
              got.append(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + std::ptrdiff_t(n));
              in.consume(n);
            }
            ember::send(me, answer{c, got});
          });
        for (int i = 0; i < 3; ++i)
          ember::receive(
              [](const answer& a) { std::printf("client %d got back:\n%s", a.client, a.text.c_str()); },
              ember::after(10s, [] { ember::exit(ember::exit_reason::error("a client got no answer")); }));
        std::printf("all clients answered\n");
        server.stop();  // the drain: no more clients, every connection closed
        std::printf("server stopped\n");
      },
      o);
}
