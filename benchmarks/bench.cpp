// ember_bench — the bench-peers micro-workloads on ember.
//
// The workloads, their sizes, message shapes and timed regions follow the
// bench-peers suite (Erlang/OTP, CAF, Go reference implementations; its
// README is the specification).  Every run prints exactly one line:
//
//   bench=<w> runtime=ember threads=<n> <params> seconds=<s> <metrics> ok=<0|1>
//
//   CORES=N ember_bench pingpong   [N = 2000000]
//           ember_bench ring       [P = 10000 [M = 1000]]
//           ember_bench skynet     [L = 1000000]   (a power of 10)
//           ember_bench spawn_idle [P = 1000000]
//           ember_bench spawn_idle_gen_server [P = 1000000]
//           ember_bench fanin      [S = 1000 [K = 10000]]
//           ember_bench fanin_bounded [S = 1000 [K = 10000 [C = 10000]]]
//           ember_bench timers     [T = 1000000 [D = 10000]]
//           ember_bench call       [N = 1000000]
//           ember_bench fairness   [D_ms = 2000 [C = 0]]   (C = 1: hogs call checkpoint())
//           ember_bench call_long_mailbox [Q = 500000 [N = 100000]]
//
// Worker threads: $CORES if set, else std::thread::hardware_concurrency().
// The driver is the root process of ember::run.
//
// A watchdog turns a hang into a result line instead of a silent stall:
// no result within $EMBER_BENCH_TIMEOUT seconds (default 600) prints
// `... ok=0 error=timeout` and exits with status 3; a result followed by a
// runtime shutdown that does not finish within $EMBER_BENCH_TEARDOWN_TIMEOUT
// seconds (default 120) prints the result again with `ok=0
// error=teardown_hang` and exits with status 4.
#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "ember/ember.hpp"

namespace {

using clk = std::chrono::steady_clock;
using ember::pid;

double ns(clk::time_point a, clk::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// -- arguments, result line ----------------------------------------------------

std::string g_name;
unsigned g_threads = 1;
std::vector<std::int64_t> g_args;

std::int64_t arg(std::size_t i, std::int64_t def) { return i < g_args.size() ? g_args[i] : def; }

std::string kv(const char* k, std::int64_t v) { return std::string(" ") + k + "=" + std::to_string(v); }
std::string kv(const char* k, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, " %s=%.1f", k, v);
  return buf;
}

// What has been printed (for the watchdog): the line without its ok= field.
std::atomic<bool> g_printed{false};
std::atomic<std::int64_t> g_printed_at_ms{0};
char g_line_body[1024];  // written once, before g_printed is set

std::int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clk::now().time_since_epoch()).count();
}

std::string head() {
  return "bench=" + g_name + " runtime=ember threads=" + std::to_string(g_threads);
}

void emit(const std::string& params, double seconds_ns, const std::string& metrics, bool ok) {
  char secs[64];
  std::snprintf(secs, sizeof secs, " seconds=%.6f", seconds_ns / 1e9);
  std::string body = head() + params + secs + metrics;
  std::snprintf(g_line_body, sizeof g_line_body, "%s", body.c_str());
  std::printf("%s ok=%d\n", body.c_str(), ok ? 1 : 0);
  std::fflush(stdout);
  g_printed_at_ms.store(mono_ms());
  g_printed.store(true);
}

void emit_error(const std::string& params, const char* error) {
  std::printf("%s%s ok=0 error=%s\n", head().c_str(), params.c_str(), error);
  std::fflush(stdout);
  g_printed_at_ms.store(mono_ms());
  g_printed.store(true);
}

double env_seconds(const char* name, double def) {
  const char* v = std::getenv(name);
  if (!v || !*v) return def;
  double d = std::atof(v);
  return d > 0 ? d : def;
}

void start_watchdog() {
  const double limit = env_seconds("EMBER_BENCH_TIMEOUT", 600);
  const double teardown = env_seconds("EMBER_BENCH_TEARDOWN_TIMEOUT", 120);
  const std::int64_t start = mono_ms();
  std::thread([=] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::int64_t now = mono_ms();
      if (!g_printed.load()) {
        if (double(now - start) / 1e3 > limit) {
          std::printf("%s ok=0 error=timeout\n", head().c_str());
          std::fflush(stdout);
          std::fprintf(stderr, "ember_bench %s: no result after %.0f s (watchdog)\n", g_name.c_str(), limit);
          ::_exit(3);
        }
      } else if (double(now - g_printed_at_ms.load()) / 1e3 > teardown) {
        std::printf("%s ok=0 error=teardown_hang\n", g_line_body);
        std::fflush(stdout);
        std::fprintf(stderr,
                     "ember_bench %s: runtime did not shut down within %.0f s of the result (watchdog)\n",
                     g_name.c_str(), teardown);
        ::_exit(4);
      }
    }
  }).detach();
}

// -- messages ------------------------------------------------------------------

struct stop_msg {};
struct started_msg {};
struct stopped_msg {};
struct ping_msg {  // {Pid, Int}: ember has no implicit sender
  pid from;
  std::int64_t v;
};
struct done_msg {
  std::int64_t v;
};
struct ring_done {
  pid who;
};

// -- 1. pingpong: N round trips of one message between two processes -----------

void pingpong() {
  const std::int64_t n = arg(0, 2000000);
  const pid driver = ember::self();
  auto t0 = clk::now();
  pid pong = ember::spawn([] {
    for (;;) {
      bool more = ember::receive([](ping_msg m) { ember::send(m.from, m.v); return true; },
                                 [](stop_msg) { return false; });
      if (!more) return;
    }
  });
  ember::spawn([pong, driver, n] {
    const pid me = ember::self();
    std::int64_t i = 0;
    for (; i < n; ++i) {
      ember::send(pong, ping_msg{me, i});
      if (ember::receive<std::int64_t>() != i) break;
    }
    ember::send(driver, done_msg{i});
    ember::send(pong, stop_msg{});
  });
  std::int64_t got = ember::receive<done_msg>().v;
  auto t1 = clk::now();
  emit(kv("n", n), ns(t0, t1), kv("ns_per_roundtrip", ns(t0, t1) / double(n)), got == n);
}

// -- 2. ring: P processes, token with a hop countdown of P*M -------------------

void ring_node(pid next, pid driver) {
  for (;;) {
    bool more = ember::receive(
        [&](pid successor) {  // the wiring message (process P-1 only)
          next = successor;
          return true;
        },
        [&](std::int64_t h) {
          if (h > 0) {
            ember::send(next, h - 1);
            return true;
          }
          ember::send(driver, ring_done{ember::self()});
          ember::send(next, stop_msg{});  // teardown (not timed)
          return false;
        },
        [&](stop_msg) {
          ember::send(next, stop_msg{});
          return false;
        });
    if (!more) return;
  }
}

void ring() {
  const std::int64_t p = arg(0, 10000), m = arg(1, 1000);
  const pid driver = ember::self();
  auto t0 = clk::now();
  pid last = ember::spawn([driver] { ring_node(pid{}, driver); });
  pid first = last;
  for (std::int64_t i = 1; i < p; ++i) {
    pid next = first;
    first = ember::spawn([next, driver] { ring_node(next, driver); });
  }
  ember::send(last, first);
  auto t1 = clk::now();
  ember::send(first, p * m);
  pid ender = ember::receive([](ring_done d) { return d.who; });
  auto t2 = clk::now();
  emit(kv("p", p) + kv("m", m) + kv("hops", p * m), ns(t1, t2),
       kv("ns_per_hop", ns(t1, t2) / double(p * m)) +
           kv("spawn_ns_per_process", ns(t0, t1) / double(p)),
       ender == first);
}

// -- 3. skynet: tree of L leaves, 10 children per node --------------------------

void sky(pid parent, std::int64_t num, std::int64_t size) {
  if (size == 1) {
    ember::send(parent, num);
    return;
  }
  const pid me = ember::self();
  const std::int64_t sub = size / 10;
  for (std::int64_t i = 0; i < 10; ++i) {
    std::int64_t child = num + i * sub;
    ember::spawn([me, child, sub] { sky(me, child, sub); });
  }
  std::int64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += ember::receive<std::int64_t>();
  ember::send(parent, sum);
}

void skynet() {
  const std::int64_t l = arg(0, 1000000);
  for (std::int64_t x = l; x != 1; x /= 10) {
    if (x < 1 || x % 10 != 0) {
      std::fprintf(stderr, "skynet: leaves must be a power of 10\n");
      emit_error(kv("leaves", l), "bad_size");
      return;
    }
  }
  const pid driver = ember::self();
  auto t0 = clk::now();
  ember::spawn([driver, l] { sky(driver, 0, l); });
  std::int64_t sum = ember::receive<std::int64_t>();
  auto t1 = clk::now();
  emit(kv("leaves", l), ns(t0, t1), kv("result", sum), sum == l * (l - 1) / 2);
}

// -- 4. spawn_idle: P processes blocked in receive; memory, spawn, teardown -----

std::atomic<std::int64_t> g_counter{0};

std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char buf[256];
  std::int64_t kb = -1;
  while (std::fgets(buf, sizeof buf, f)) {
    if (std::strncmp(buf, "VmRSS:", 6) == 0) {
      kb = std::strtoll(buf + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

void spawn_idle() {
  const std::int64_t p = arg(0, 1000000);
  const pid driver = ember::self();
  std::int64_t rss0 = rss_bytes();
  auto t0 = clk::now();
  std::vector<pid> pids;  // the driver's handles
  pids.reserve(std::size_t(p));
  for (std::int64_t i = 0; i < p; ++i) {
    pids.push_back(ember::spawn([driver, p] {
      if (g_counter.fetch_add(1) + 1 == p) ember::send(driver, started_msg{});
      ember::receive<stop_msg>();
      if (g_counter.fetch_sub(1) - 1 == 0) ember::send(driver, stopped_msg{});
    }));
  }
  ember::receive<started_msg>();
  auto t1 = clk::now();
  std::int64_t rss1 = rss_bytes();
  for (const pid& x : pids) ember::send(x, stop_msg{});
  ember::receive<stopped_msg>();
  auto t2 = clk::now();
  const double delta = double(rss1 - rss0);
  emit(kv("p", p), ns(t0, t1),
       kv("bytes_per_process", delta / double(p)) +
           kv("spawn_ns_per_process", ns(t0, t1) / double(p)) +
           kv("teardown_ns_per_process", ns(t1, t2) / double(p)) +
           kv("rss_delta_mib", std::int64_t((rss1 - rss0) / 1048576)),
       g_counter.load() == 0 && rss0 > 0 && rss1 > 0);
}

// -- 4b. spawn_idle_gen_server: P idle gen_servers (started one by one with
//    gen_server::start, each waiting for the next message); memory per
//    server, start and teardown time ------------------------------------------

struct idle_quit {};
struct idle_server : ember::gen_server::behaviour<idle_server> {
  pid driver;
  std::int64_t p;
  idle_server(pid d, std::int64_t n) : driver(d), p(n) {}
  next handle_cast(idle_quit) { return stop_with(ember::exit_reason::normal()); }
  void terminate(const ember::exit_reason&) {
    if (g_counter.fetch_sub(1) - 1 == 0) ember::send(driver, stopped_msg{});
  }
};

void spawn_idle_gen_server() {
  namespace gs = ember::gen_server;
  const std::int64_t p = arg(0, 1000000);
  const pid driver = ember::self();
  std::int64_t rss0 = rss_bytes();
  auto t0 = clk::now();
  std::vector<pid> pids;
  pids.reserve(std::size_t(p));
  bool ok = true;
  for (std::int64_t i = 0; i < p && ok; ++i) {
    auto r = gs::start<idle_server>(driver, p);
    ok = bool(r);
    pids.push_back(r.pid());
    g_counter.fetch_add(1);
  }
  auto t1 = clk::now();
  std::int64_t rss1 = rss_bytes();
  for (const pid& x : pids) gs::cast<idle_server>(x, idle_quit{});
  if (ok) ember::receive<stopped_msg>();
  auto t2 = clk::now();
  emit(kv("p", p), ns(t0, t1),
       kv("bytes_per_server", double(rss1 - rss0) / double(p)) +
           kv("start_ns_per_server", ns(t0, t1) / double(p)) +
           kv("teardown_ns_per_server", ns(t1, t2) / double(p)) +
           kv("rss_delta_mib", std::int64_t((rss1 - rss0) / 1048576)),
       ok && g_counter.load() == 0 && rss0 > 0 && rss1 > 0);
}

// -- 6. fanin: S senders each send the integers 1..K to one receiver ------------

void fanin() {
  const std::int64_t s = arg(0, 1000), k = arg(1, 10000);
  const std::int64_t msgs = s * k;
  const pid driver = ember::self();
  auto t0 = clk::now();
  pid receiver = ember::spawn([driver, msgs] {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < msgs; ++i) sum += ember::receive<std::int64_t>();
    ember::send(driver, done_msg{sum});
  });
  for (std::int64_t i = 0; i < s; ++i)
    ember::spawn([receiver, k] {
      for (std::int64_t v = 1; v <= k; ++v) ember::send(receiver, v);
    });
  std::int64_t sum = ember::receive<done_msg>().v;
  auto t1 = clk::now();
  const double d = ns(t0, t1);
  emit(kv("senders", s) + kv("k", k) + kv("msgs", msgs), d,
       kv("ns_per_msg", d / double(msgs)) + kv("msgs_per_sec", double(msgs) * 1e9 / d),
       sum == s * (k * (k + 1) / 2));
}

// -- 6b. fanin_bounded: fanin into a mailbox bounded at C messages (refuse):
//    a refused sender yields and sends again, so every message arrives ------

void fanin_bounded() {
  const std::int64_t s = arg(0, 1000), k = arg(1, 10000), cap = arg(2, 10000);
  const std::int64_t msgs = s * k;
  const pid driver = ember::self();
  static std::atomic<std::int64_t> refused{0};
  refused = 0;
  ember::spawn_options so;
  so.mailbox = {std::size_t(cap), ember::overflow::refuse};
  auto t0 = clk::now();
  pid receiver = ember::spawn(
      [driver, msgs] {
        std::int64_t sum = 0;
        for (std::int64_t i = 0; i < msgs; ++i) sum += ember::receive<std::int64_t>();
        ember::send(driver, done_msg{sum});
      },
      so);
  for (std::int64_t i = 0; i < s; ++i)
    ember::spawn([receiver, k] {
      std::int64_t again = 0;
      for (std::int64_t v = 1; v <= k; ++v)
        while (ember::send(receiver, v) == ember::send_result::refused) {
          ++again;
          ember::yield();
        }
      refused += again;
    });
  std::int64_t sum = ember::receive<done_msg>().v;
  auto t1 = clk::now();
  const double d = ns(t0, t1);
  emit(kv("senders", s) + kv("k", k) + kv("capacity", cap) + kv("msgs", msgs), d,
       kv("ns_per_msg", d / double(msgs)) + kv("msgs_per_sec", double(msgs) * 1e9 / d) +
           kv("refused", refused.load()),
       sum == s * (k * (k + 1) / 2));
}

// -- 5. call: N gen_server calls back to back, client to a counter server ----

struct inc_req {};
struct call_server : ember::gen_server::behaviour<call_server> {
  std::int64_t n = 0;
  std::int64_t handle_call(inc_req) { return ++n; }
};

struct tick_payload {
  std::int64_t v;
};

void call() {
  namespace gs = ember::gen_server;
  const std::int64_t n = arg(0, 1000000);
  const pid driver = ember::self();
  auto started = gs::start<call_server>();
  if (!started) return emit(kv("n", n), 0.0, "", false);
  const pid srv = started.pid();
  auto t0 = clk::now();
  ember::spawn([srv, driver, n] {
    std::int64_t last = 0;
    for (std::int64_t i = 0; i < n; ++i) last = gs::call<call_server>(srv, inc_req{}, gs::infinity);
    ember::send(driver, done_msg{last});
  });
  std::int64_t got = ember::receive<done_msg>().v;
  auto t1 = clk::now();
  emit(kv("n", n), ns(t0, t1), kv("ns_per_call", ns(t0, t1) / double(n)), got == n);
  gs::stop<call_server>(srv);
}

// -- 6b. call_long_mailbox: the same call from a process that has Q unrelated
//    messages queued, against the same caller with none (OTP's receive
//    marker: a call scans only what arrived after its request) ------------------

void call_long_mailbox() {
  namespace gs = ember::gen_server;
  const std::int64_t q = arg(0, 500000), n = arg(1, 100000);
  auto started = gs::start<call_server>();
  if (!started) return emit(kv("q", q) + kv("n", n), 0.0, "", false);
  const auto srv = started.server();
  auto timed = [&] {
    auto t0 = clk::now();
    for (std::int64_t i = 0; i < n; ++i) (void)gs::call(srv, inc_req{}, gs::infinity);
    return ns(t0, clk::now()) / double(n);
  };
  const double empty = timed();
  for (std::int64_t i = 0; i < q; ++i) ember::send(ember::self(), tick_payload{i});
  auto t0 = clk::now();
  const double queued = timed();
  auto t1 = clk::now();
  const double ratio = queued / empty;
  emit(kv("q", q) + kv("n", n), ns(t0, t1),
       kv("ns_per_call_empty", empty) + kv("ns_per_call_queued", queued) + kv("ratio", ratio), ratio < 10.0);
  gs::stop(srv);
}

// -- 7. timers: T send_after timers (delay 1..D ms) to the driver; cancel every
//    other one, reading its remaining time; drain the rest ---------------------

struct tick_msg {};

void timers() {
  const std::int64_t t = arg(0, 1000000), dmax = arg(1, 10000);
  std::vector<std::chrono::milliseconds> delays(static_cast<std::size_t>(t));
  std::uint64_t x = 4711;  // xorshift: the delays are pre-generated, not timed
  for (auto& d : delays) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d = std::chrono::milliseconds(1 + std::int64_t(x % std::uint64_t(dmax)));
  }
  std::vector<ember::timer_ref> refs(static_cast<std::size_t>(t));
  const pid me = ember::self();
  auto t0 = clk::now();
  for (std::size_t i = 0; i < refs.size(); ++i) refs[i] = ember::send_after(me, delays[i], tick_msg{});
  auto t1 = clk::now();
  std::int64_t cancelled = 0, already = 0, bad = 0;
  for (std::size_t i = 0; i < refs.size(); i += 2) {
    if (auto left = ember::cancel_timer(refs[i])) {
      if (left->count() < 0 || left->count() > dmax) ++bad;
      ++cancelled;
    } else {
      ++already;
    }
  }
  auto t2 = clk::now();
  // Drain (not timed): silence of D + 5 s ends it; then 200 ms for extras.
  auto drain = [](std::int64_t want, std::chrono::milliseconds silence) {
    std::int64_t got = 0;
    while (got < want && ember::receive([](tick_msg) { return true; }, ember::after(silence, [] { return false; })))
      ++got;
    return got;
  };
  const std::int64_t fired = drain(t - cancelled, std::chrono::milliseconds(dmax + 5000));
  const std::int64_t extra = drain(1, std::chrono::milliseconds(200));
  const std::int64_t ncancel = (t + 1) / 2;
  emit(kv("t", t) + kv("d", dmax), ns(t0, t2),
       kv("ns_per_start", ns(t0, t1) / double(t)) + kv("ns_per_cancel", ns(t1, t2) / double(ncancel)) +
           kv("cancelled", cancelled) + kv("already_fired", already) + kv("fired", fired),
       bad == 0 && cancelled + already == ncancel && fired == t - cancelled && extra == 0);
}

// -- fairness: H plain-loop hogs (one per worker) against a 1 ms ticker ---------
//
// Not one of the bench-peers workloads (their Erlang, Go and CAF numbers
// for the same workload are quoted in docs/performance.md).  The driver
// starts a ticker that wants to run every millisecond on absolute due times
// (due += 1 ms on whole milliseconds; a late tick does not move the
// schedule), then H = workers
// hogs that each spin for D ms; with C = 1 they call checkpoint() every
// 1024 iterations, with C = 0 they make no runtime call at all.  Lateness
// = when the ticker ran - when it was due, for the ticks due while the
// hogs ran.  timed: the hogs' D ms.

struct fair_stop {};
struct fair_result {
  std::vector<std::int64_t> late_us;
};

void fairness() {
  const std::int64_t d_ms = arg(0, 2000), checkpoint = arg(1, 0);
  const std::int64_t hogs = std::int64_t(g_threads);
  auto running = std::make_shared<std::atomic<std::int64_t>>(0);
  const pid me = ember::self();
  const pid ticker = ember::spawn([running, me] {
    fair_result r;
    r.late_us.reserve(1 << 16);
    // Due times on whole milliseconds of the runtime's clock: the timer
    // wheel's resolution is 1 ms (a deadline between two milliseconds
    // fires at the later one), as Erlang's millisecond timers; what is
    // measured is the scheduling delay, not that rounding.
    ember::time_point due = std::chrono::floor<std::chrono::milliseconds>(ember::now());
    for (;;) {
      due += std::chrono::milliseconds(1);
      if (ember::receive([](fair_stop) { return true; }, ember::after(due, [] { return false; }))) break;
      if (running->load(std::memory_order_relaxed) > 0)
        r.late_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(ember::now() - due).count());
    }
    ember::send(me, std::move(r));
  });
  auto t0 = clk::now();
  const auto until = t0 + std::chrono::milliseconds(d_ms);
  for (std::int64_t i = 0; i < hogs; ++i)
    ember::spawn([running, me, until, checkpoint] {
      running->fetch_add(1);
      std::uint64_t x = 1;
      for (std::uint64_t i = 1;; ++i) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        if ((i & 1023) == 0) {
          if (checkpoint) ember::checkpoint();
          if (clk::now() >= until) break;
        }
      }
      running->fetch_sub(1);
      ember::send(me, done_msg{std::int64_t(x & 1)});
    });
  for (std::int64_t i = 0; i < hogs; ++i) ember::receive<done_msg>();
  auto t1 = clk::now();
  ember::send(ticker, fair_stop{});
  fair_result r = ember::receive<fair_result>();
  std::sort(r.late_us.begin(), r.late_us.end());
  auto pct = [&](double q) -> std::int64_t {
    if (r.late_us.empty()) return -1;
    return r.late_us[std::min(r.late_us.size() - 1, std::size_t(q * double(r.late_us.size())))];
  };
  emit(kv("hogs", hogs) + kv("d_ms", d_ms) + kv("checkpoint", checkpoint), ns(t0, t1),
       kv("ticks", std::int64_t(r.late_us.size())) + kv("p50_us", pct(0.50)) + kv("p99_us", pct(0.99)) +
           kv("max_us", r.late_us.empty() ? std::int64_t(-1) : r.late_us.back()),
       !r.late_us.empty());
}

void usage() {
  std::fprintf(stderr,
               "usage: ember_bench pingpong|ring|skynet|spawn_idle|spawn_idle_gen_server|fanin|fanin_bounded|call|call_long_mailbox|timers|fairness [params]\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  g_name = argv[1];
  for (int i = 2; i < argc; ++i) {
    char* end = nullptr;
    long long v = std::strtoll(argv[i], &end, 10);
    if (!end || *end != '\0' || end == argv[i]) {
      std::fprintf(stderr, "ember_bench: not an integer: %s\n", argv[i]);
      return 2;
    }
    g_args.push_back(v);
  }
  g_threads = std::thread::hardware_concurrency();
  if (const char* c = std::getenv("CORES"); c && std::atoi(c) > 0) g_threads = unsigned(std::atoi(c));
  if (g_threads == 0) g_threads = 1;

  void (*workload)() = nullptr;
  if (g_name == "pingpong") workload = pingpong;
  else if (g_name == "ring") workload = ring;
  else if (g_name == "skynet") workload = skynet;
  else if (g_name == "spawn_idle") workload = spawn_idle;
  else if (g_name == "spawn_idle_gen_server") workload = spawn_idle_gen_server;
  else if (g_name == "fanin") workload = fanin;
  else if (g_name == "fanin_bounded") workload = fanin_bounded;
  else if (g_name == "call") workload = call;
  else if (g_name == "fairness") workload = fairness;
  else if (g_name == "call_long_mailbox") workload = call_long_mailbox;
  else if (g_name == "timers") {
    workload = timers;
  } else {
    std::fprintf(stderr, "ember_bench: unknown workload %s\n", g_name.c_str());
    usage();
    return 2;
  }

  start_watchdog();
  ember::runtime_options opts;
  opts.workers = g_threads;
  int rc = 1;
  try {
    rc = ember::run([workload] { workload(); }, opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_bench %s: %s\n", g_name.c_str(), e.what());
    if (!g_printed.load()) emit_error("", "exception");
    return 1;
  }
  if (!g_printed.load()) emit_error("", "no_result");
  return rc;
}
