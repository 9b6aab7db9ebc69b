// ember_otp_bench — workloads for ember's OTP layer (supervisors, registry)
// and for runtime shutdown, which have no peer in the bench-peers suite.
// Each run prints one line in the same shape as ember_bench:
//
//   bench=<w> runtime=ember threads=<n> <params> seconds=<s> <metrics> ok=<0|1>
//
//   CORES=N ember_otp_bench sup_scale   [N = 100000]
//           ember_otp_bench dyn_scale   [N = 100000]
//           ember_otp_bench sup_storm   [RATE = 7000 [SECONDS = 3 [SUBS = 10 [KIDS = 100 [CALLERS = 8]]]]]
//           ember_otp_bench stop_linked [N = 800000 [LINKED = 1]]
//           ember_otp_bench registry_lookup [KEYS = 10000 [LOOKUPS = 2000000 [DUP = 8]]]
//
// sup_scale: one static supervisor; start_child N children (each a plain
//   process linked to it), terminate_child each, restart_child each, then
//   stop the supervisor (N children stopped in reverse order).  Reports ns
//   per child for each phase: linear growth keeps them flat as N grows.
// dyn_scale: the same for a dynamic supervisor (start_child N,
//   terminate_child each by pid, start N again, stop).
// sup_storm: a root supervisor over SUBS one_for_one supervisors of KIDS
//   gen_server children each; a killer kills RATE children per second
//   (spread over the sub-supervisors) for SECONDS, while CALLERS processes
//   keep asking random children (found by which_children) for a count.
//   Reports restarts achieved per second, how long after the storm the
//   last restart was done (lag_ms), and the share of calls that found a
//   dead child (noproc), whose pid which_children had just given.
// stop_linked: N processes linked to one parent (LINKED 0: not linked),
//   each waiting in receive; times runtime::stop() and reports the
//   resident memory before, at its peak during, and after the stop.
// registry_lookup: KEYS processes under unique std::string keys, and DUP
//   processes under one duplicate key; every worker looks up random unique
//   keys (whereis) and the duplicate key (lookup).  ns per lookup.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "ember/ember.hpp"

namespace {

using clk = std::chrono::steady_clock;
using ember::pid;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;
namespace dyn = ember::dynamic_supervisor;

double ns(clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::nano>(b - a).count(); }

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
void emit(const std::string& params, double seconds_ns, const std::string& metrics, bool ok) {
  std::printf("bench=%s runtime=ember threads=%u%s seconds=%.6f%s ok=%d\n", g_name.c_str(), g_threads,
              params.c_str(), seconds_ns / 1e9, metrics.c_str(), ok ? 1 : 0);
  std::fflush(stdout);
}

std::int64_t rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return std::int64_t(resident) * 4096;
}

ember::runtime_options quiet_options() {
  ember::runtime_options o;
  o.workers = g_threads;
  o.logger = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  return o;
}

struct stop_msg {};

/// A child that waits to be stopped.
sup::started plain_child() {
  return ember::spawn_link([] { ember::receive<stop_msg>(); });
}
sup::child_spec plain_spec(std::string id) {
  sup::child_spec c;
  c.id = std::move(id);
  c.start = plain_child;
  return c;
}
std::string numbered(char prefix, std::int64_t i) {
  std::string s(1, prefix);
  s += std::to_string(i);
  return s;
}

// -- sup_scale ---------------------------------------------------------------

void sup_scale() {
  const std::int64_t n = arg(0, 100000);
  bool ok = true;
  double t_start = 0, t_term = 0, t_restart = 0, t_stop = 0;
  ember::run(
      [&] {
        auto s = sup::start({.intensity = 1000000}, {});
        ok = ok && bool(s);
        std::vector<std::string> ids;
        ids.reserve(std::size_t(n));
        for (std::int64_t i = 0; i < n; ++i) ids.push_back(numbered('c', i));
        auto t0 = clk::now();
        for (const auto& id : ids) ok = ok && bool(sup::start_child(s.server(), plain_spec(id)));
        auto t1 = clk::now();
        for (const auto& id : ids) ok = ok && bool(sup::terminate_child(s.server(), id));
        auto t2 = clk::now();
        for (const auto& id : ids) ok = ok && bool(sup::restart_child(s.server(), id));
        auto t3 = clk::now();
        ok = ok && sup::count_children(s.server()).active == std::size_t(n);
        gs::stop(s.server(), ember::exit_reason::shutdown());
        auto t4 = clk::now();
        t_start = ns(t0, t1);
        t_term = ns(t1, t2);
        t_restart = ns(t2, t3);
        t_stop = ns(t3, t4);
      },
      quiet_options());
  const double d = double(n);
  emit(kv("n", n), t_start + t_term + t_restart + t_stop,
       kv("start_child_ns", t_start / d) + kv("terminate_child_ns", t_term / d) +
           kv("restart_child_ns", t_restart / d) + kv("shutdown_ns", t_stop / d),
       ok);
}

// -- dyn_scale ---------------------------------------------------------------

void dyn_scale() {
  const std::int64_t n = arg(0, 100000);
  bool ok = true;
  double t_start = 0, t_term = 0, t_again = 0, t_stop = 0;
  ember::run(
      [&] {
        auto d = dyn::start({.intensity = 1000000});
        ok = ok && bool(d);
        std::vector<pid> kids;
        kids.reserve(std::size_t(n));
        auto t0 = clk::now();
        for (std::int64_t i = 0; i < n; ++i) {
          auto r = dyn::start_child(d.server(), plain_spec(""));
          ok = ok && bool(r);
          kids.push_back(r.pid());
        }
        auto t1 = clk::now();
        for (const pid& p : kids) ok = ok && bool(dyn::terminate_child(d.server(), p));
        auto t2 = clk::now();
        for (std::int64_t i = 0; i < n; ++i) ok = ok && bool(dyn::start_child(d.server(), plain_spec("")));
        auto t3 = clk::now();
        ok = ok && dyn::count_children(d.server()).active == std::size_t(n);
        gs::stop(d.server(), ember::exit_reason::shutdown());
        auto t4 = clk::now();
        t_start = ns(t0, t1);
        t_term = ns(t1, t2);
        t_again = ns(t2, t3);
        t_stop = ns(t3, t4);
      },
      quiet_options());
  const double dn = double(n);
  emit(kv("n", n), t_start + t_term + t_again + t_stop,
       kv("start_child_ns", t_start / dn) + kv("terminate_child_ns", t_term / dn) +
           kv("start_again_ns", t_again / dn) + kv("shutdown_ns", t_stop / dn),
       ok);
}

// -- sup_storm ---------------------------------------------------------------

std::atomic<std::int64_t> g_inits{0};
struct count_req {};
struct storm_child : gs::behaviour<storm_child> {
  std::int64_t n = 0;
  void init() { g_inits.fetch_add(1, std::memory_order_relaxed); }
  std::int64_t handle_call(count_req) { return ++n; }
};
struct storm_done {};
struct never {};

void sup_storm() {
  const std::int64_t rate = arg(0, 7000), secs = arg(1, 3), subs = arg(2, 10), kids = arg(3, 100), callers = arg(4, 8);
  bool ok = true;
  std::int64_t kills = 0, calls = 0, noproc = 0;
  double storm_ns = 0, lag_ns = 0;
  ember::run(
      [&] {
        std::vector<sup::child_spec> subspecs;
        for (std::int64_t s = 0; s < subs; ++s) {
          std::vector<sup::child_spec> cs;
          for (std::int64_t k = 0; k < kids; ++k) cs.push_back(sup::worker<storm_child>(numbered('k', k)));
          subspecs.push_back(sup::supervisor_child(numbered('s', s), {.intensity = 100000000, .period = std::chrono::seconds(1)}, std::move(cs)));
        }
        auto root = sup::start({.intensity = 0}, std::move(subspecs));
        ok = ok && bool(root);
        std::vector<sup::ref> subrefs;
        for (const auto& c : sup::which_children(root.server())) subrefs.emplace_back(c.pid);
        const std::int64_t inits0 = g_inits.load();
        const pid driver = ember::self();
        std::atomic<bool> storming{true};
        // The caller: which_children of a random sub-supervisor, then a call
        // to a random child it lists as running.
        std::atomic<std::int64_t> n_calls{0}, n_noproc{0};
        for (std::int64_t ci = 0; ci < callers; ++ci) ember::spawn([&, driver, ci] {
          std::mt19937_64 rng(std::uint64_t(7 + ci));
          while (storming.load(std::memory_order_relaxed)) {
            const auto& s = subrefs[rng() % subrefs.size()];
            auto list = sup::which_children(s);
            const auto& c = list[rng() % list.size()];
            if (c.status != sup::child_status::running) continue;
            n_calls.fetch_add(1, std::memory_order_relaxed);
            try {
              gs::call<storm_child>(c.pid, count_req{});
            } catch (const ember::call_noproc&) {
              n_noproc.fetch_add(1, std::memory_order_relaxed);
            } catch (const ember::call_exited&) {
              n_noproc.fetch_add(1, std::memory_order_relaxed);
            }
          }
          ember::send(driver, storm_done{});
        });
        // The killer, paced by the millisecond.
        std::mt19937_64 rng(11);
        auto t0 = clk::now();
        const auto end = t0 + std::chrono::seconds(secs);
        double owed = 0;
        auto last = t0;
        while (clk::now() < end) {
          ember::receive([](never) {}, ember::after(std::chrono::milliseconds(1), [] {}));
          auto now = clk::now();
          owed += double(rate) * ns(last, now) / 1e9;
          last = now;
          while (owed >= 1) {
            owed -= 1;
            const auto& s = subrefs[std::size_t(kills) % subrefs.size()];
            auto list = sup::which_children(s);
            const auto& c = list[rng() % list.size()];
            if (c.status == sup::child_status::running) ember::exit(c.pid, ember::exit_reason::kill());
          }
        }
        auto t1 = clk::now();
        storming.store(false);
        for (std::int64_t ci = 0; ci < callers; ++ci) ember::receive<storm_done>();
        // Wait until every child runs again (listed running, and alive).
        auto settled = [&] {
          for (const auto& s : subrefs)
            for (const auto& c : sup::which_children(s))
              if (c.status != sup::child_status::running || !ember::process_info(c.pid)) return false;
          return true;
        };
        while (!settled()) ember::receive([](never) {}, ember::after(std::chrono::microseconds(100), [] {}));
        auto t2 = clk::now();
        kills = g_inits.load() - inits0;
        storm_ns = ns(t0, t1);
        lag_ns = ns(t1, t2);
        calls = n_calls.load();
        noproc = n_noproc.load();
        for (const auto& s : subrefs) ok = ok && sup::count_children(s).active == std::size_t(kids);
        gs::stop(root.server(), ember::exit_reason::shutdown());
      },
      quiet_options());
  emit(kv("rate", rate) + kv("subs", subs) + kv("kids", kids) + kv("callers", callers), storm_ns,
       kv("restarts", kills) + kv("restarts_per_s", double(kills) / (storm_ns / 1e9)) + kv("lag_ms", lag_ns / 1e6) +
           kv("calls", calls) + kv("noproc_pct", calls ? 100.0 * double(noproc) / double(calls) : 0.0),
       ok);
}

// -- stop_linked -------------------------------------------------------------

struct ready_msg {};

void stop_linked() {
  const std::int64_t n = arg(0, 800000);
  const bool linked = arg(1, 1) != 0;
  auto rt = std::make_unique<ember::runtime>(quiet_options());
  std::atomic<bool> up{false};
  rt->spawn([n, linked, &up] {
    for (std::int64_t i = 0; i < n; ++i) {
      auto body = [] { ember::receive<stop_msg>(); };
      if (linked) ember::spawn_link(body);
      else ember::spawn(body);
    }
    up.store(true);
    ember::receive<stop_msg>();
  });
  while (!up.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // every child has run to its receive
  const std::int64_t rss0 = rss_bytes();
  std::atomic<bool> stopping{true};
  std::atomic<std::int64_t> peak{rss0};
  std::thread sampler([&] {
    while (stopping.load()) {
      std::int64_t r = rss_bytes();
      if (r > peak.load()) peak.store(r);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  auto t0 = clk::now();
  rt->stop();
  auto t1 = clk::now();
  stopping.store(false);
  sampler.join();
  const std::int64_t rss1 = rss_bytes();
  emit(kv("n", n) + kv("linked", std::int64_t(linked)), ns(t0, t1),
       kv("stop_ns_per_process", ns(t0, t1) / double(n)) + kv("rss_before_mib", rss0 / 1048576) +
           kv("rss_peak_mib", peak.load() / 1048576) + kv("rss_after_mib", rss1 / 1048576),
       true);
  rt.reset();
}

// -- registry_lookup ---------------------------------------------------------

struct lookups_done {
  std::int64_t found;
};

void registry_lookup() {
  const std::int64_t keys = arg(0, 10000), lookups = arg(1, 2000000), dup = arg(2, 8);
  bool ok = true;
  double t_unique = 0, t_dup = 0;
  ember::run(
      [&] {
        ember::registry<std::string> uniq(ember::registry_keys::unique);
        ember::registry<std::string> subs(ember::registry_keys::duplicate);
        std::vector<std::string> names;
        std::vector<pid> holders;
        for (std::int64_t i = 0; i < keys; ++i) {
          names.push_back(numbered('k', i));
          pid p = ember::spawn([] { ember::receive<stop_msg>(); });
          uniq.register_name(names.back(), p);
          holders.push_back(p);
        }
        for (std::int64_t i = 0; i < dup; ++i) subs.register_name("topic", holders[std::size_t(i) % holders.size()]);
        const pid driver = ember::self();
        const std::int64_t per = lookups / std::int64_t(g_threads);
        auto run_phase = [&](bool duplicate) {
          auto t0 = clk::now();
          for (unsigned w = 0; w < g_threads; ++w) {
            ember::spawn([&, w, driver, duplicate] {
              std::uint64_t x = 0x9E3779B97F4A7C15ull * (w + 1);
              std::int64_t found = 0;
              for (std::int64_t i = 0; i < per; ++i) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (duplicate) found += std::int64_t(subs.lookup("topic").size());
                else found += uniq.whereis(names[x % names.size()]).has_value();
                if ((i & 1023) == 0) ember::checkpoint();
              }
              ember::send(driver, lookups_done{found});
            });
          }
          std::int64_t found = 0;
          for (unsigned w = 0; w < g_threads; ++w) found += ember::receive<lookups_done>().found;
          ok = ok && found == per * std::int64_t(g_threads) * (duplicate ? dup : 1);
          return ns(t0, clk::now());
        };
        t_unique = run_phase(false);
        t_dup = run_phase(true);
        for (const pid& p : holders) ember::send(p, stop_msg{});
      },
      quiet_options());
  const double total = double(lookups / std::int64_t(g_threads) * std::int64_t(g_threads));
  emit(kv("keys", keys) + kv("lookups", lookups) + kv("dup", dup), t_unique + t_dup,
       kv("whereis_ns", t_unique / total * double(g_threads)) + kv("lookup_dup_ns", t_dup / total * double(g_threads)),
       ok);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ember_otp_bench sup_scale|dyn_scale|sup_storm|stop_linked|registry_lookup [params]\n");
    return 2;
  }
  g_name = argv[1];
  for (int i = 2; i < argc; ++i) g_args.push_back(std::strtoll(argv[i], nullptr, 10));
  g_threads = std::thread::hardware_concurrency();
  if (const char* c = std::getenv("CORES"); c && std::atoi(c) > 0) g_threads = unsigned(std::atoi(c));
  if (g_threads == 0) g_threads = 1;
  try {
    if (g_name == "sup_scale") sup_scale();
    else if (g_name == "dyn_scale") dyn_scale();
    else if (g_name == "sup_storm") sup_storm();
    else if (g_name == "stop_linked") stop_linked();
    else if (g_name == "registry_lookup") registry_lookup();
    else {
      std::fprintf(stderr, "ember_otp_bench: unknown workload %s\n", g_name.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember_otp_bench %s: %s\n", g_name.c_str(), e.what());
    return 1;
  }
  return 0;
}
