// ember_io_bench — TCP request/response over 127.0.0.1: the same load client
// against an ember server (ember::io::tcp_server: a process per connection,
// straight-line reads with use_process, or an active-mode socket), a plain
// multi-threaded Boost.Asio server (one io_context thread per core,
// callbacks), or a server someone else started (the Go and Erlang peers in
// benchmarks/peers/, run by benchmarks/tcp_peers.sh).  Prints one line in
// the bench-peers format:
//
//   bench=tcp_echo runtime=<ember|asio|label> threads=<n> conns=<C> requests=<N> seconds=<s>
//         req_per_sec=<r> p50_us=<..> p99_us=<..> server_cpu_us_per_req=<..> ok=<0|1>
//
//   CORES=N ember_io_bench ember           [C = 100 [N = 200000]]   (event loop on the workers)
//           ember_io_bench ember_active    [C = 100 [N = 200000]]   (the same, active-once sockets)
//           ember_io_bench ember_io_thread [C = 100 [N = 200000]]   (event loop on its own thread)
//           ember_io_bench asio            [C = 100 [N = 200000]]
//   CORES=N [SERVER_PID=pid] ember_io_bench connect <label> <port> [C = 100 [N = 200000]]
//                                         (only the client, against a server on 127.0.0.1:<port>)
//
// The client runs in a child process (this program, role `client`), so the
// server's CPU time (getrusage of this process over the timed region) is
// the server's alone.  Each of the C connections sends a 64-byte request
// and waits for its 64-byte echo, N / C times; latency is per request.
// Server threads: $CORES (ember: workers, plus one I/O thread; asio: the
// io_context threads), default std::thread::hardware_concurrency().
// `connect` reports runtime=<label> and threads=$CORES (what the external
// server was told to use); its server CPU time is utime + stime of process
// $SERVER_PID from /proc/<pid>/stat over the timed region (clock-tick
// resolution), or server_cpu_us_per_req=-1 without SERVER_PID.
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>

#include "ember/ember.hpp"
#include "ember/io/io.hpp"

extern char** environ;

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using clk = std::chrono::steady_clock;

constexpr std::size_t request_bytes = 64;

unsigned threads_from_env() {
  if (const char* c = std::getenv("CORES")) return unsigned(std::max(1, std::atoi(c)));
  return std::max(1u, std::thread::hardware_concurrency());
}

// -- the load client (child process) -------------------------------------------

struct client_conn {
  explicit client_conn(asio::io_context& io) : s(io) {}
  tcp::socket s;
  std::array<char, request_bytes> out{}, in{};
  long left = 0;
  clk::time_point t0;
};

/// Connect C sockets, then run N/C request/responses on each; print
/// "<seconds> <p50_us> <p99_us> <ok>" on stdout.
int run_client(unsigned short port, long conns, long total) {
  asio::io_context io(1);
  const tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
  std::vector<std::unique_ptr<client_conn>> cs;
  for (long i = 0; i < conns; ++i) {
    cs.push_back(std::make_unique<client_conn>(io));
    cs.back()->s.connect(ep);
    cs.back()->s.set_option(tcp::no_delay(true));
    cs.back()->left = total / conns;
    std::snprintf(cs.back()->out.data(), request_bytes, "request %ld", i);
  }
  std::vector<std::uint32_t> lat;  // ns / 16, so 64 s fit
  lat.reserve(std::size_t(total));
  long bad = 0;
  struct step {
    static void send(client_conn* c, std::vector<std::uint32_t>& lat, long& bad) {
      c->t0 = clk::now();
      asio::async_write(c->s, asio::buffer(c->out), [c, &lat, &bad](boost::system::error_code ec, std::size_t) {
        if (ec) return void(++bad);
        asio::async_read(c->s, asio::buffer(c->in), [c, &lat, &bad](boost::system::error_code ec2, std::size_t) {
          if (ec2 || c->in != c->out) return void(++bad);
          lat.push_back(std::uint32_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - c->t0).count() / 16));
          if (--c->left > 0) send(c, lat, bad);
        });
      });
    }
  };
  const auto t0 = clk::now();
  for (auto& c : cs) step::send(c.get(), lat, bad);
  io.run();
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    return lat.empty() ? 0.0 : double(lat[std::min(lat.size() - 1, std::size_t(q * double(lat.size())))]) * 16 / 1000;
  };
  const long want = (total / conns) * conns;
  std::printf("%.6f %.1f %.1f %d\n", secs, pct(0.50), pct(0.99), bad == 0 && long(lat.size()) == want ? 1 : 0);
  return 0;
}

/// Start this program as the client against port; its result line.
std::string client_result(const char* self, unsigned short port, long conns, long total) {
  int fds[2];
  if (::pipe(fds) != 0) return "";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  const std::string p = std::to_string(port), c = std::to_string(conns), n = std::to_string(total);
  char* argv[] = {const_cast<char*>(self), const_cast<char*>("client"), const_cast<char*>(p.c_str()),
                  const_cast<char*>(c.c_str()), const_cast<char*>(n.c_str()), nullptr};
  pid_t child = 0;
  const int rc = posix_spawn(&child, self, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[256];
    ssize_t k;
    while ((k = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, std::size_t(k));
    int status = 0;
    ::waitpid(child, &status, 0);
  }
  ::close(fds[0]);
  return out;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void report(const char* runtime, unsigned threads, long conns, long total, const std::string& client, double cpu) {
  double secs = 0, p50 = 0, p99 = 0;
  int ok = 0;
  if (std::sscanf(client.c_str(), "%lf %lf %lf %d", &secs, &p50, &p99, &ok) != 4) ok = 0;
  const long done = (total / conns) * conns;
  char cpu_per_req[32] = "-1";  // cpu < 0: not measured
  if (cpu >= 0) std::snprintf(cpu_per_req, sizeof cpu_per_req, "%.2f", done > 0 ? cpu * 1e6 / double(done) : 0.0);
  std::printf(
      "bench=tcp_echo runtime=%s threads=%u conns=%ld requests=%ld seconds=%.6f req_per_sec=%.0f p50_us=%.1f "
      "p99_us=%.1f server_cpu_us_per_req=%s ok=%d\n",
      runtime, threads, conns, done, secs, secs > 0 ? double(done) / secs : 0.0, p50, p99, cpu_per_req, ok);
}

// -- an external server (connect) -------------------------------------------------

/// utime + stime of process pid in seconds, from /proc/<pid>/stat; -1 if
/// it cannot be read.
double proc_cpu_seconds(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return -1;
  // Field 2 (comm) is in parentheses and may hold spaces; fields 14 and 15
  // (utime, stime) are the 12th and 13th after the closing one.
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  unsigned long long v[13] = {};
  const char* p = stat.c_str() + close + 1;
  for (auto& x : v) {
    char* end = nullptr;
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
    x = std::strtoull(p, &end, 10);  // field 3 (state) is a letter: reads as 0
    p = end;
    while (*p != ' ' && *p != '\0') ++p;
  }
  return double(v[11] + v[12]) / double(::sysconf(_SC_CLK_TCK));
}

int run_connect(const char* self, const char* label, unsigned short port, long conns, long total) {
  long pid = 0;
  if (const char* e = std::getenv("SERVER_PID")) pid = std::atol(e);
  const double c0 = pid > 0 ? proc_cpu_seconds(pid) : -1;
  const std::string r = client_result(self, port, conns, total);
  const double c1 = pid > 0 && c0 >= 0 ? proc_cpu_seconds(pid) : -1;
  report(label, threads_from_env(), conns, total, r, c1 >= 0 ? c1 - c0 : -1);
  return 0;
}

// -- plain Asio server ------------------------------------------------------------

struct asio_conn : std::enable_shared_from_this<asio_conn> {
  explicit asio_conn(tcp::socket s) : s(std::move(s)) {}
  tcp::socket s;
  std::array<char, 4096> buf;
  void read() {
    s.async_read_some(asio::buffer(buf), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (ec) return;
      asio::async_write(self->s, asio::buffer(self->buf.data(), n),
                        [self](boost::system::error_code ec2, std::size_t) {
                          if (!ec2) self->read();
                        });
    });
  }
};

void accept_loop(tcp::acceptor& acc) {
  acc.async_accept([&acc](boost::system::error_code ec, tcp::socket s) {
    if (ec) return;
    s.set_option(tcp::no_delay(true));
    std::make_shared<asio_conn>(std::move(s))->read();
    accept_loop(acc);
  });
}

int run_asio(const char* self, long conns, long total) {
  const unsigned n = threads_from_env();
  asio::io_context io{int(n)};
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const unsigned short port = acc.local_endpoint().port();
  accept_loop(acc);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < n; ++i) ts.emplace_back([&] { io.run(); });
  const double c0 = cpu_seconds();
  const std::string r = client_result(self, port, conns, total);
  const double cpu = cpu_seconds() - c0;
  io.stop();
  for (auto& t : ts) t.join();
  report("asio", n, conns, total, r, cpu);
  return 0;
}

// -- ember server: a process per connection -----------------------------------------

void ember_echo(tcp::socket s) {
  std::array<char, 4096> buf;
  boost::system::error_code ec;
  for (;;) {
    const std::size_t got = s.async_read_some(asio::buffer(buf), asio::redirect_error(ember::io::use_process, ec));
    if (ec) return;
    ember::io::write(s, asio::buffer(buf.data(), got), ec);
    if (ec) return;
  }
}

/// The same in active mode: the socket sends its data as messages (gen_tcp's
/// {active, once}); the reply is written by the connection's process.
void ember_active_echo(tcp::socket s) {
  ember::io::tcp_socket sock(std::move(s));
  for (;;) {
    sock.set_active(ember::io::active::once());
    const bool more = ember::receive([&](const ember::io::tcp_data& d) { sock.write(d.data); return true; },
                                     [](const ember::io::tcp_closed&) { return false; },
                                     [](const ember::io::tcp_error&) { return false; });
    if (!more) return;
  }
}

enum class ember_style { token, token_io_thread, active };

int run_ember(const char* self, long conns, long total, ember_style style) {
  const unsigned n = threads_from_env();
  ember::runtime_options o;
  o.workers = n;
  std::optional<ember::io::context> io;
  if (style != ember_style::token_io_thread) io.emplace(ember::io::on_workers, o);
  else io.emplace();
  ember::runtime rt(o);
  // A supervised server (ember::io::tcp_server), as a service would run it.
  auto port = std::make_shared<std::atomic<unsigned>>(0);
  rt.spawn([&io, port, style] {
    ember::io::tcp_server srv = ember::io::tcp_server::start_link(
        io->get_executor(), {.endpoint = tcp::endpoint(asio::ip::address_v4::loopback(), 0)},
        [style](tcp::socket s) {
          s.set_option(tcp::no_delay(true));
          if (style == ember_style::active) ember_active_echo(std::move(s));
          else ember_echo(std::move(s));
        });
    port->store(srv.local_endpoint().port());
    port->notify_one();
    ember::receive([](int) {});  // for ever (the runtime's end kills it)
  });
  port->wait(0);
  const double c0 = cpu_seconds();
  const std::string r = client_result(self, (unsigned short)port->load(), conns, total);
  const double cpu = cpu_seconds() - c0;
  report(style == ember_style::token ? "ember" : style == ember_style::active ? "ember_active" : "ember_io_thread", n,
         conns, total, r, cpu);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string role = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, long d) { return argc > i ? std::atol(argv[i]) : d; };
  if (role == "client" && argc == 5) return run_client((unsigned short)std::atoi(argv[2]), arg(3, 100), arg(4, 200000));
  if (role == "connect" && argc >= 4 && std::atoi(argv[3]) > 0 && std::atoi(argv[3]) < 65536) {
    const long conns = std::max(1L, arg(4, 100)), total = std::max(conns, arg(5, 200000));
    return run_connect(argv[0], argv[2], (unsigned short)std::atoi(argv[3]), conns, total);
  }
  const long conns = std::max(1L, arg(2, 100)), total = std::max(conns, arg(3, 200000));
  if (role == "asio") return run_asio(argv[0], conns, total);
  if (role == "ember") return run_ember(argv[0], conns, total, ember_style::token);
  if (role == "ember_active") return run_ember(argv[0], conns, total, ember_style::active);
  if (role == "ember_io_thread") return run_ember(argv[0], conns, total, ember_style::token_io_thread);
  std::fprintf(stderr,
               "usage: ember_io_bench ember|ember_active|ember_io_thread|asio [conns = 100 [requests = 200000]]\n"
               "       [SERVER_PID=pid] ember_io_bench connect <label> <port> [conns = 100 [requests = 200000]]\n");
  return 2;
}
