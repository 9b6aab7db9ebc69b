// ember::io::use_process (include/ember/io/use_process.hpp): Asio operations
// that suspend only the calling process.  Every socket is on 127.0.0.1.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "io/io_support.hpp"

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;
using ember_test::loopback;
using ember_test::opts;
using ember_test::scaled;
using ember_test::until_waiting;

namespace {

struct ok {
  int i;
};
struct failed {
  std::string what;
};
struct connected {};
struct go {};
struct result {
  std::string what;
};


/// The error an operation failed with, or "" (in process context).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const boost::system::system_error& e) {
    return e.code().message();
  }
  return "";
}

/// Where the event loop runs: a thread of the context's own, or the
/// runtime's workers.
enum class loop_mode { own_thread, on_workers };
constexpr loop_mode both_modes[] = {loop_mode::own_thread, loop_mode::on_workers};
const char* describe(loop_mode m) { return m == loop_mode::own_thread ? "own thread" : "on workers"; }

/// Run body as a process of a runtime with `workers` threads and an I/O
/// context run as `mode` says, and require a normal exit.
template <class F>
void with_io(loop_mode mode, unsigned workers, F body) {
  INFO("event loop " << describe(mode) << ", " << workers << " workers");
  auto o = opts(workers);
  std::optional<ember::io::context> io;
  if (mode == loop_mode::on_workers) io.emplace(ember::io::on_workers, o);
  else io.emplace();
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&io, &body] { body(*io); }).wait();
  INFO("exit reason: " << r);
  CHECK(r.is_normal());
}

/// An echo connection: read what comes, write it back, until EOF.
void echo(tcp::socket s) {
  std::array<char, 256> buf;
  for (;;) {
    std::size_t n = 0;
    try {
      n = s.async_read_some(asio::buffer(buf), ember::io::use_process);
    } catch (const boost::system::system_error& e) {
      if (e.code() == asio::error::eof) return;
      throw;
    }
    asio::async_write(s, asio::buffer(buf.data(), n), ember::io::use_process);
  }
}

}  // namespace

TEST_CASE("io::use_process: echo over TCP with many concurrent connections, a process per connection",
          "[io]") {
  for (loop_mode mode : both_modes)
  for (unsigned workers : {1u, 2u}) {
    const int n = int(scaled(1000, 100));
    with_io(mode, workers, [n](ember::io::context& io) {
      tcp::acceptor acc(io.get_executor(), loopback());
      const unsigned short port = acc.local_endpoint().port();
      // The listener: a process per accepted connection.
      ember::spawn_link([n, acc = std::move(acc)]() mutable {
        for (int i = 0; i < n; ++i) {
          tcp::socket s = acc.async_accept(ember::io::use_process);
          ember::spawn([s = std::move(s)]() mutable { echo(std::move(s)); });
        }
      });
      const ember::pid me = ember::self();
      for (int i = 0; i < n; ++i)
        ember::spawn([&io, me, port, i] {
          try {
            tcp::socket s(io.get_executor());
            s.async_connect(loopback(port), ember::io::use_process);
            std::string out(64, char('a' + i % 26));
            out.replace(0, std::to_string(i).size(), std::to_string(i));
            asio::async_write(s, asio::buffer(out), ember::io::use_process);
            std::string in(64, '\0');
            const std::size_t got = asio::async_read(s, asio::buffer(in), ember::io::use_process);
            if (got == 64 && in == out) ember::send(me, ok{i});
            else ember::send(me, failed{"echo " + std::to_string(i) + " came back as " + in});
          } catch (const std::exception& e) {
            ember::send(me, failed{e.what()});
          }
        });
      std::vector<bool> seen(std::size_t(n), false);
      for (int k = 0; k < n; ++k) {
        ember::receive([&](ok m) { seen[std::size_t(m.i)] = true; },
                       [](failed f) { FAIL(f.what); },
                       ember::after(60s, [] { FAIL("no answer within 60 s"); }));
      }
      for (int i = 0; i < n; ++i) CHECK(seen[std::size_t(i)]);
    });
  }
}

TEST_CASE("io::use_process: a kill while the process waits in a read cancels the read and ends it — its socket "
          "closes, nothing completes late",
          "[io]") {
  for (loop_mode mode : both_modes)
  for (ember::exit_reason why : {ember::exit_reason::kill(), ember::exit_reason::shutdown()}) {
    INFO("exit signal: " << why);
    with_io(mode, 2, [why](ember::io::context& io) {
      tcp::acceptor acc(io.get_executor(), loopback());
      const unsigned short port = acc.local_endpoint().port();
      const ember::pid me = ember::self();
      auto reader = ember::spawn([&io, me, port] {
        tcp::socket s(io.get_executor());
        s.async_connect(loopback(port), ember::io::use_process);
        ember::send(me, connected{});
        std::array<char, 16> buf;
        s.async_read_some(asio::buffer(buf), ember::io::use_process);  // nothing ever comes
        ember::send(me, result{"the read completed"});
      });
      auto ref = ember::monitor(reader);
      tcp::socket server = acc.async_accept(ember::io::use_process);
      ember::receive([](connected) {});
      until_waiting(reader);
      ember::exit(reader, why);
      ember::receive(
          [&](const ember::down& d) {
            CHECK(d.ref == ref);
            CHECK(d.reason == (why.what() == ember::exit_reason::kind::kill ? ember::exit_reason::killed() : why));
          },
          ember::after(30s, [] { FAIL("the reader did not end: its read was not cancelled"); }));
      // Its socket was closed as it unwound: the peer reads end of file.
      std::array<char, 16> buf;
      CHECK(error_of([&] { server.async_read_some(asio::buffer(buf), ember::io::use_process); }) ==
            asio::error::make_error_code(asio::error::eof).message());
      ember::receive([](result r) { FAIL(r.what); }, ember::after(0ms, [] {}));
    });
  }
}

TEST_CASE("io::use_process: a trapped exit signal waits in the mailbox while the read goes on", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), loopback());
    const unsigned short port = acc.local_endpoint().port();
    const ember::pid me = ember::self();
    auto reader = ember::spawn([&io, me, port] {
      ember::process_flag(ember::trap_exit, true);
      tcp::socket s(io.get_executor());
      s.async_connect(loopback(port), ember::io::use_process);
      ember::send(me, connected{});
      std::array<char, 5> buf;
      asio::async_read(s, asio::buffer(buf), ember::io::use_process);
      // The data first (the read went on), then the signal, as a message.
      const std::string got(buf.data(), buf.size());
      const bool signalled = ember::receive([](const ember::exit_message& m) { return m.reason == ember::exit_reason::shutdown(); },
                                            ember::after(0ms, [] { return false; }));
      ember::send(me, result{got + (signalled ? " + exit message" : " + nothing")});
    });
    tcp::socket server = acc.async_accept(ember::io::use_process);
    ember::receive([](connected) {});
    until_waiting(reader);
    ember::exit(reader, ember::exit_reason::shutdown());
    asio::async_write(server, asio::buffer(std::string("hello")), ember::io::use_process);
    ember::receive([](result r) { CHECK(r.what == "hello + exit message"); },
                   ember::after(30s, [] { FAIL("no result"); }));
  });
}

TEST_CASE("io::use_process: interruptible() — a trapped exit signal cancels the operation and stays in the mailbox",
          "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    const ember::pid me = ember::self();
    // An exit signal that arrives during the wait.
    auto waiter = ember::spawn([&io, me] {
      ember::process_flag(ember::trap_exit, true);
      asio::steady_timer t(io.get_executor(), 1h);
      const std::string why = error_of([&] { t.async_wait(ember::io::use_process.interruptible()); });
      const bool kept = ember::receive([](const ember::exit_message& m) { return m.reason == ember::exit_reason::shutdown(); },
                                       ember::after(0ms, [] { return false; }));
      ember::send(me, result{why + (kept ? " + exit message" : " + nothing")});
    });
    until_waiting(waiter);
    ember::exit(waiter, ember::exit_reason::shutdown());
    const std::string interrupted = asio::error::make_error_code(asio::error::interrupted).message();
    ember::receive([&](result r) { CHECK(r.what == interrupted + " + exit message"); },
                   ember::after(30s, [] { FAIL("no result"); }));
    // One already in the mailbox when the wait begins: cancelled at once.
    auto queued = ember::spawn([&io, me] {
      ember::process_flag(ember::trap_exit, true);
      ember::send(me, connected{});
      ember::receive([](go) {});
      asio::steady_timer t(io.get_executor(), 1h);
      const std::string why = error_of([&] { t.async_wait(ember::io::use_process.timeout(1h).interruptible()); });
      ember::send(me, result{why});
    });
    ember::receive([](connected) {});  // it traps exits now
    ember::exit(queued, ember::exit_reason::shutdown());
    ember::send(queued, go{});
    ember::receive([&](result r) { CHECK(r.what == interrupted); }, ember::after(30s, [] { FAIL("no result"); }));
    // Other messages do not interrupt; an operation that completes stands.
    auto plain = ember::spawn([&io, me] {
      ember::process_flag(ember::trap_exit, true);
      ember::send(ember::self(), go{});
      asio::steady_timer t(io.get_executor(), 1ms);
      const std::string why = error_of([&] { t.async_wait(ember::io::use_process.interruptible()); });
      ember::send(me, result{why.empty() ? "completed" : why});
    });
    (void)plain;
    ember::receive([&](result r) { CHECK(r.what == "completed"); }, ember::after(30s, [] { FAIL("no result"); }));
  });
}

TEST_CASE("io::use_process: timeout(d) cancels an operation that takes longer — the socket stays usable", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 1, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), loopback());
    tcp::socket client(io.get_executor());
    client.async_connect(acc.local_endpoint(), ember::io::use_process);
    tcp::socket server = acc.async_accept(ember::io::use_process);
    std::array<char, 4> buf;
    try {
      client.async_read_some(asio::buffer(buf), ember::io::use_process.timeout(20ms));
      FAIL("the read completed with no data");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::timed_out);
    }
    // With redirect_error the cancelled operation's own error shows.
    boost::system::error_code ec;
    client.async_read_some(asio::buffer(buf), asio::redirect_error(ember::io::use_process.timeout(1ms), ec));
    CHECK(ec == asio::error::operation_aborted);
    // Still usable: data written now is read.
    asio::async_write(server, asio::buffer(std::string("ping")), ember::io::use_process);
    CHECK(asio::async_read(client, asio::buffer(buf), ember::io::use_process.timeout(30s)) == 4);
    CHECK(std::string(buf.data(), 4) == "ping");
    // A zero timeout cancels at once an operation that cannot complete at once.
    asio::steady_timer never(io.get_executor(), 1h);
    CHECK(error_of([&] { never.async_wait(ember::io::use_process.timeout(0ms)); }) ==
          asio::error::make_error_code(asio::error::timed_out).message());
    // A timeout the operation beats: its result stands.
    asio::steady_timer t(io.get_executor(), 1ms);
    t.async_wait(ember::io::use_process.timeout(30s));
  });
}

TEST_CASE("io::use_process: a timeout or a kill cancels a composed operation (async_compose) that goes on "
          "using its cancellation state", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    // Waits on its timer, then checks whether it was cancelled: the state
    // async_compose keeps in the caller's cancellation slot is used after
    // the cancellation has been emitted.
    auto slow = [&io](auto&& token) {
      auto timer = std::make_shared<asio::steady_timer>(io.get_executor(), 1h);
      return asio::async_compose<decltype(token), void(boost::system::error_code)>(
          [timer, started = false](auto& self, boost::system::error_code ec = {}) mutable {
            if (!started) {
              started = true;
              timer->async_wait(std::move(self));
              return;
            }
            if (!!self.cancelled()) ec = asio::error::operation_aborted;
            self.complete(ec);
          },
          token, io.get_executor());
    };
    CHECK(error_of([&] { slow(ember::io::use_process.timeout(10ms)); }) ==
          asio::error::make_error_code(asio::error::timed_out).message());
    const ember::pid me = ember::self();
    auto p = ember::spawn([&slow, me] {
      ember::send(me, connected{});
      slow(ember::io::use_process);
    });
    auto ref = ember::monitor(p);
    ember::receive([](connected) {});
    until_waiting(p);
    ember::exit(p, ember::exit_reason::kill());
    auto why = ember::receive([&](const ember::down& d) { return d.reason; });
    CHECK(why == ember::exit_reason::killed());
    (void)ref;
  });
}

TEST_CASE("io::use_process: a composed operation on a socket with no strand is cancelled while its steps run on "
          "other workers — 200 times, every one completes",
          "[io]") {
  with_io(loop_mode::on_workers, 4, [](ember::io::context& io) {
    tcp::acceptor acc(io.get_executor(), loopback());
    const auto ep = acc.local_endpoint();
    // Writes a byte at a time for as long as it runs: each byte completes
    // one inner read of the reader's async_read, whose next step starts
    // another (and installs its cancellation handler) — on whichever
    // worker ran the completion.
    auto writer = ember::spawn([&io, ep] {
      tcp::socket s(io.get_executor());
      s.async_connect(ep, ember::io::use_process);
      const char byte = 'x';
      boost::system::error_code ec;
      while (!ec) {
        asio::async_write(s, asio::buffer(&byte, 1), asio::redirect_error(ember::io::use_process, ec));
        ember::yield();
      }
    });
    tcp::socket s = acc.async_accept(ember::io::use_process);  // on the context's executor: no strand
    std::vector<char> big(1 << 24);
    const int rounds = int(ember_test::scaled(200, 50));
    int timed_out = 0;
    for (int i = 0; i < rounds; ++i) {
      const std::string e =
          error_of([&] { asio::async_read(s, asio::buffer(big), ember::io::use_process.timeout(1ms)); });
      if (e == asio::error::make_error_code(asio::error::timed_out).message()) ++timed_out;
    }
    CHECK(timed_out == rounds);
    ember::exit(writer, ember::exit_reason::kill());
  });
}

TEST_CASE("io::use_process: the timeout runs on the runtime's clock — a manual clock drives it", "[io]") {
  for (loop_mode mode : both_modes) {
  INFO("event loop " << describe(mode));
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = ember_test::manual_opts(clock);
  std::optional<ember::io::context> io_slot;
  if (mode == loop_mode::on_workers) io_slot.emplace(ember::io::on_workers, o);
  else io_slot.emplace();
  ember::io::context& io = *io_slot;
  ember::runtime rt(o);
  auto outcome = std::make_shared<std::string>();
  auto p = rt.spawn_monitor([&io, outcome] {
    asio::steady_timer t(io.get_executor(), 1h);  // real time: never, in this test
    *outcome = error_of([&] { t.async_wait(ember::io::use_process.timeout(10s)); });
  });
  clock->advance(9s);
  CHECK(outcome->empty());
  clock->advance(1s);  // the timeout: the wait is cancelled, on the I/O thread
  CHECK(p.wait().is_normal());
  CHECK(*outcome == asio::error::make_error_code(asio::error::timed_out).message());
  }
}

TEST_CASE("io::use_process: errors are thrown as system_error, or given by redirect_error and as_tuple", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 1, [](ember::io::context& io) {
    unsigned short closed_port;
    {
      tcp::acceptor probe(io.get_executor(), loopback());
      closed_port = probe.local_endpoint().port();
    }  // nobody listens there now
    tcp::socket a(io.get_executor());
    try {
      a.async_connect(loopback(closed_port), ember::io::use_process);
      FAIL("connected to a port nobody listens on");
    } catch (const boost::system::system_error& e) {
      CHECK(e.code() == asio::error::connection_refused);
    }
    tcp::socket b(io.get_executor());
    boost::system::error_code ec;
    b.async_connect(loopback(closed_port), asio::redirect_error(ember::io::use_process, ec));
    CHECK(ec == asio::error::connection_refused);
    tcp::socket c(io.get_executor());
    auto [ec2] = c.async_connect(loopback(closed_port), asio::as_tuple(ember::io::use_process));
    CHECK(ec2 == asio::error::connection_refused);
  });
}

TEST_CASE("io::use_process: timers, resolvers, stream descriptors and hand-written operations", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    asio::steady_timer t(io.get_executor(), 1ms);
    t.async_wait(ember::io::use_process);

    tcp::resolver r(io.get_executor());
    auto results = r.async_resolve("127.0.0.1", "80", ember::io::use_process);
    REQUIRE(results.size() >= 1);
    CHECK(results.begin()->endpoint() == loopback(80));

    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    asio::posix::stream_descriptor rd(io.get_executor(), fds[0]), wr(io.get_executor(), fds[1]);
    asio::async_write(wr, asio::buffer(std::string("pipe")), ember::io::use_process);
    std::array<char, 4> buf;
    CHECK(asio::async_read(rd, asio::buffer(buf), ember::io::use_process) == 4);
    CHECK(std::string(buf.data(), 4) == "pipe");

    // An operation written by hand with async_initiate, completing on
    // another thread with two values.
    auto two_values = [](int x, auto&& token) {
      return asio::async_initiate<decltype(token), void(int, std::string)>(
          [](auto handler, int v) {
            std::thread([h = std::move(handler), v]() mutable { std::move(h)(v * 2, std::to_string(v)); }).detach();
          },
          token, x);
    };
    auto [doubled, text] = two_values(21, ember::io::use_process);
    CHECK(doubled == 42);
    CHECK(text == "21");
  });
}

TEST_CASE("io::use_process: an operation whose handler is destroyed uncalled fails with operation_aborted", "[io]") {
  with_io(loop_mode::on_workers, 1, [](ember::io::context&) {
    auto dropped = [](auto&& token) {
      return asio::async_initiate<decltype(token), void(boost::system::error_code)>(
          [](auto handler) { std::thread([h = std::move(handler)]() mutable { auto gone = std::move(h); }).detach(); },
          token);
    };
    CHECK(error_of([&] { dropped(ember::io::use_process); }) ==
          asio::error::make_error_code(asio::error::operation_aborted).message());
  });
}

TEST_CASE("io::use_process: an operation's memory comes from the waiting process's frame, one block at a time, "
          "and a process never counts as inside the event loop", "[io]") {
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    struct seen {
      char* first;
      char* second;  // asked for while the first is taken
      char* again;   // after the first went back
      char* large;
    };
    // Allocates through the handler's allocator as Asio's operations do,
    // frees before completing (Asio's rule), and says where it got memory.
    auto probe = [](auto&& token) {
      return asio::async_initiate<decltype(token), void(seen)>(
          [](auto handler) {
            using block = std::array<char, 128>;
            using big = std::array<char, 4096>;
            auto base = asio::get_associated_allocator(handler);
            typename std::allocator_traits<decltype(base)>::template rebind_alloc<block> a(base);
            typename std::allocator_traits<decltype(base)>::template rebind_alloc<big> b(base);
            seen s{};
            block* p1 = a.allocate(1);
            block* p2 = a.allocate(1);
            a.deallocate(p1, 1);
            block* p3 = a.allocate(1);
            big* p4 = b.allocate(1);
            s = {p1->data(), p2->data(), p3->data(), p4->data()};
            b.deallocate(p4, 1);
            a.deallocate(p3, 1);
            a.deallocate(p2, 1);
            std::thread([h = std::move(handler), s]() mutable { std::move(h)(s); }).detach();
          },
          token);
    };
    char here = 0;
    auto near = [&here](const char* p) { return std::abs(p - &here) < 8192; };
    const seen s = probe(ember::io::use_process);
    CHECK(near(s.first));
    CHECK_FALSE(near(s.second));
    CHECK(s.again == s.first);
    CHECK_FALSE(near(s.large));
    // A real read and write after the probe: the frame's block is free again.
    tcp::acceptor acc(io.get_executor(), loopback());
    tcp::socket c(io.get_executor());
    c.async_connect(acc.local_endpoint(), ember::io::use_process);
    tcp::socket srv = acc.async_accept(ember::io::use_process);
    asio::async_write(c, asio::buffer(std::string("frame")), ember::io::use_process);
    std::array<char, 5> buf;
    CHECK(asio::async_read(srv, asio::buffer(buf), ember::io::use_process) == 5);
    CHECK(std::string(buf.data(), 5) == "frame");
    // The per-thread cache processes get is not the loop's: Asio still
    // knows that this thread is not running the io_context.
    CHECK_FALSE(io.get_executor().running_in_this_thread());
  });
}

TEST_CASE("io::use_process: misuse — outside a process, and inside blocking — starts nothing", "[io]") {
  ember::io::context io;
  asio::steady_timer t(io.get_executor(), 1h);
  CHECK_THROWS_AS(t.async_wait(ember::io::use_process), ember::not_in_process);
  CHECK_THROWS_AS(ember::io::use_process.timeout(-5ms), ember::bad_argument);
  CHECK_THROWS_AS(ember::io::use_process.timeout(std::chrono::duration<double, std::milli>(std::nan(""))),
                  ember::bad_argument);
  CHECK(ember::io::use_process.timeout(std::chrono::nanoseconds::max()).timeout_ns == -1);  // beyond ~146 years: none
  CHECK(ember::io::use_process.timeout(0ms).timeout_ns == 0);
  ember::runtime rt(opts(1));
  auto what = std::make_shared<std::string>();
  auto p = rt.spawn_monitor([&t, what] {
    try {
      ember::blocking([&] { t.async_wait(ember::io::use_process); });
    } catch (const ember::error& e) {
      *what = e.what();
    }
  });
  CHECK(p.wait().is_normal());
  CHECK(what->find("inside ember::blocking") != std::string::npos);
  // Nothing was started: the timer has no operation to cancel.
  CHECK(t.cancel() == 0);
}

TEST_CASE("io::use_process: UDP datagrams — send_to and receive_from, a timeout, and a kill while receiving", "[io]") {
  using asio::ip::udp;
  for (loop_mode mode : both_modes)
  with_io(mode, 2, [](ember::io::context& io) {
    udp::socket server(io.get_executor(), udp::endpoint(asio::ip::address_v4::loopback(), 0));
    const udp::endpoint at = server.local_endpoint();
    const ember::pid me = ember::self();
    // A datagram echo in its own process.
    auto echoer = ember::spawn([s = std::move(server)]() mutable {
      std::array<char, 512> buf;
      for (;;) {
        udp::endpoint from;
        const std::size_t n = s.async_receive_from(asio::buffer(buf), from, ember::io::use_process);
        s.async_send_to(asio::buffer(buf.data(), n), from, ember::io::use_process);
      }
    });
    auto ref = ember::monitor(echoer);
    udp::socket client(io.get_executor(), udp::endpoint(asio::ip::address_v4::loopback(), 0));
    std::array<char, 512> in;
    for (int i = 0; i < 20; ++i) {
      const std::string out = "datagram " + std::to_string(i);
      client.async_send_to(asio::buffer(out), at, ember::io::use_process);
      udp::endpoint from;
      const std::size_t n = client.async_receive_from(asio::buffer(in), from, ember::io::use_process.timeout(10s));
      CHECK(std::string(in.data(), n) == out);
      CHECK(from == at);
    }
    // Nothing more comes: the timeout.
    udp::endpoint from;
    CHECK(error_of([&] { client.async_receive_from(asio::buffer(in), from, ember::io::use_process.timeout(10ms)); }) ==
          asio::error::make_error_code(asio::error::timed_out).message());
    // The echoer waits in receive_from: a kill cancels it and ends it.
    until_waiting(echoer);
    ember::exit(echoer, ember::exit_reason::kill());
    ember::receive([&](const ember::down& d) { CHECK(d.ref == ref); CHECK(d.reason == ember::exit_reason::killed()); },
                   ember::after(30s, [] { FAIL("the echoer did not end: its receive was not cancelled"); }));
  });
}
