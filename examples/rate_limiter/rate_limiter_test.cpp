// examples/rate_limiter — tests of the rate limiter (rate_limiter.hpp,
// windows.hpp): window arithmetic at the bucket edges on a manual clock,
// each window's limit and which one is reported, the race of 100 concurrent
// first requests for a key (one server, one lookup), coalescing of the
// contract lookup (deferred replies), unknown keys, a lookup that times out,
// idle stop and restart with the windows kept, the limit-hit log line once
// per episode, and max_keys.
#include <atomic>
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "rate_limiter.hpp"
#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::scaled;
namespace rl = rate_limiter;
using std::chrono::milliseconds;

namespace {

/// A directory that knows the given contracts and no others.
rl::directory contracts(std::map<std::string, rl::contract> table) {
  return [table = std::move(table)](const std::string& key) -> std::optional<rl::contract> {
    auto it = table.find(key);
    if (it == table.end()) return std::nullopt;
    return it->second;
  };
}

std::shared_ptr<spdlog::logger> null_logger() {
  return std::make_shared<spdlog::logger>("rate_limiter", std::make_shared<spdlog::sinks::null_sink_mt>());
}

rl::options options_with(rl::directory d) {
  rl::options o;
  o.contracts = std::move(d);
  o.logger = null_logger();
  return o;
}

/// What a request was answered, and when (clock time).
struct answer {
  std::optional<rl::decision> decision;
  milliseconds at{-1};
};

/// A rate limiter on a manual clock: a one-worker runtime whose time moves
/// only when the test moves it.  Requests run in their own processes; after
/// settle() or advance() the runtime is idle, so their answers can be read.
class simulation {
public:
  explicit simulation(rl::options o)
      : clock_(std::make_shared<ember::manual_clock>()), lookup_delay_(o.lookup_delay) {
    o.clock = clock_;
    auto ro = ember_test::opts(1);
    ro.clock = clock_;
    rt_ = std::make_unique<ember::runtime>(ro);
    svc_ = std::make_unique<rl::service>(std::move(o));
    // The tree's parent: starts it, then waits until the runtime stops.
    auto started = std::make_shared<bool>(false);
    rt_->spawn([svc = *svc_, started] {
      auto tree = svc.start_link();
      if (!tree) ember::exit(tree.error());
      *started = true;
      ember::receive([](ember::exit_message) {});
    });
    clock_->settle();
    REQUIRE(*started);
  }
  ~simulation() { rt_->stop(); }

  /// Send one request for key now; the answer fills in when the runtime gets to it.
  std::shared_ptr<answer> request(const std::string& key) {
    auto a = std::make_shared<answer>();
    rt_->spawn([svc = *svc_, key, a, clock = clock_] {
      a->decision = svc.check(key);
      a->at = std::chrono::duration_cast<milliseconds>(clock->now());
    });
    return a;
  }

  /// One request and its answer: at once when its key's server knows the
  /// contract, else after moving the clock by the lookup delay.
  rl::decision ask(const std::string& key) {
    auto a = request(key);
    clock_->settle();
    if (!a->decision) clock_->advance(lookup_delay_);
    REQUIRE(a->decision);
    return *a->decision;
  }

  /// Move the clock to t (from its zero).
  void advance_to(milliseconds t) {
    const milliseconds now = this->now();
    REQUIRE(t >= now);
    clock_->advance(t - now);
  }
  void advance(milliseconds d) { clock_->advance(d); }
  void settle() { clock_->settle(); }
  [[nodiscard]] milliseconds now() const { return std::chrono::duration_cast<milliseconds>(clock_->now()); }

  /// Run fn in a process and wait for it (fn may call into the service).
  template <class F>
  void in_runtime(F fn) {
    auto done = std::make_shared<bool>(false);
    rt_->spawn([fn = std::move(fn), done] {
      fn();
      *done = true;
    });
    clock_->settle();
    REQUIRE(*done);
  }

  rl::service& service() { return *svc_; }

private:
  std::shared_ptr<ember::manual_clock> clock_;
  milliseconds lookup_delay_;
  std::unique_ptr<ember::runtime> rt_;
  std::unique_ptr<rl::service> svc_;
};

rl::options one_customer(rl::limits l, milliseconds lookup_delay = 100ms) {
  rl::options o = options_with(contracts({{"ak-acme", {"Acme Corp", l}}}));
  o.lookup_delay = lookup_delay;
  o.idle_timeout = 48h;  // servers stay up unless a test says otherwise
  return o;
}

bool refused_by(const rl::decision& d, rl::window w) { return d.result == rl::outcome::refused && d.hit == w; }

}  // namespace

// ---- window arithmetic ---------------------------------------------------------

TEST_CASE("sliding windows keep a fixed number of buckets and let a request go at its bucket's edge",
          "[rate_limiter][windows]") {
  REQUIRE(rl::shape_of(rl::window::minute).slots() == 61);
  REQUIRE(rl::shape_of(rl::window::hour).slots() == 61);
  REQUIRE(rl::shape_of(rl::window::day).slots() == 97);

  rl::sliding_window w(rl::shape_of(rl::window::minute));
  w.add(10'000ms);  // bucket 10: counts until 71.000 s
  w.add(10'999ms);  // bucket 10 too
  REQUIRE(w.count(70'000ms) == 2);  // exactly one minute after the first: still counted
  REQUIRE(w.count(70'999ms) == 2);
  REQUIRE(w.room_at(70'999ms, 2) == 71'000ms);
  REQUIRE(w.room_at(70'999ms, 3) == 70'999ms);  // room now
  REQUIRE(w.room_at(70'999ms, 0) == std::nullopt);
  REQUIRE(w.empty_at(70'000ms) == 71'000ms);
  REQUIRE(w.count(71'000ms) == 0);
  w.add(71'000ms);
  REQUIRE(w.count(71'000ms) == 1);
  REQUIRE(w.count(1'000'000'000ms) == 0);  // a long gap empties it
  REQUIRE(w.empty_at(1'000'000'000ms) == 1'000'000'000ms);
}

TEST_CASE("the per-minute window at the boundary millisecond: a request counts 60 s and up to "
          "61 s after it, at the edge of its second",
          "[rate_limiter][windows]") {
  // The contract comes 999 ms after the first request, so that request is
  // admitted at 0.999 s, in the minute window's bucket 0.
  simulation sim(one_customer({.per_minute = 1, .per_hour = 100, .per_day = 1000}, 999ms));
  auto first = sim.request("ak-acme");
  sim.advance(999ms);
  REQUIRE(first->decision == rl::decision::admit());
  REQUIRE(first->at == 999ms);

  sim.advance_to(60'999ms);  // exactly 60 s after it: still counts
  rl::decision d = sim.ask("ak-acme");
  REQUIRE(refused_by(d, rl::window::minute));
  REQUIRE(d.count == 1);
  REQUIRE(d.limit == 1);
  REQUIRE(d.retry_after == 1ms);
  sim.advance_to(61'000ms);  // the end of its bucket: gone, 60.001 s after it
  REQUIRE(sim.ask("ak-acme").admitted());

  // Admitted at 61.000 s, the first millisecond of bucket 61: counts until
  // 122.000 s, a full 61 s.
  sim.advance_to(121'999ms);
  d = sim.ask("ak-acme");
  REQUIRE(refused_by(d, rl::window::minute));
  REQUIRE(d.retry_after == 1ms);
  sim.advance_to(122'000ms);
  REQUIRE(sim.ask("ak-acme").admitted());
}

TEST_CASE("each window refuses at its limit and names itself", "[rate_limiter][windows]") {
  SECTION("per minute") {
    simulation sim(one_customer({.per_minute = 3, .per_hour = 100, .per_day = 1000}));
    for (int i = 0; i < 3; ++i) REQUIRE(sim.ask("ak-acme").admitted());
    const rl::decision d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::minute));
    REQUIRE(d.count == 3);
    REQUIRE(d.limit == 3);
    REQUIRE(d.retry_after == 60'900ms);  // bucket 0 leaves at 61 s; now is 0.1 s
  }
  SECTION("per hour") {
    simulation sim(one_customer({.per_minute = 100, .per_hour = 3, .per_day = 1000}));
    for (milliseconds t : {0ms, milliseconds(10min), milliseconds(20min)}) {
      sim.advance_to(t);
      REQUIRE(sim.ask("ak-acme").admitted());
    }
    sim.advance_to(30min);
    const rl::decision d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::hour));
    REQUIRE(d.count == 3);
    REQUIRE(d.retry_after == 31min);  // the request of minute 0 leaves at 61 min
    sim.advance_to(61min - 1ms);
    REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::hour));
    sim.advance_to(61min);
    REQUIRE(sim.ask("ak-acme").admitted());
  }
  SECTION("per day") {
    simulation sim(one_customer({.per_minute = 100, .per_hour = 100, .per_day = 3}));
    for (milliseconds t : {0ms, milliseconds(5h), milliseconds(10h)}) {
      sim.advance_to(t);
      REQUIRE(sim.ask("ak-acme").admitted());
    }
    sim.advance_to(20h);
    const rl::decision d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::day));
    REQUIRE(d.count == 3);
    REQUIRE(d.retry_after == 4h + 15min);  // bucket 0 (15 min wide) leaves at 24 h 15 min
    sim.advance_to(24h + 15min - 1ms);
    REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::day));
    sim.advance_to(24h + 15min);
    REQUIRE(sim.ask("ak-acme").admitted());
  }
}

TEST_CASE("with several windows full the longest is reported, and retry_after waits for all of them",
          "[rate_limiter][windows]") {
  SECTION("minute and hour full: the hour is named") {
    simulation sim(one_customer({.per_minute = 2, .per_hour = 2, .per_day = 100}));
    REQUIRE(sim.ask("ak-acme").admitted());  // at 0.1 s, when the contract came
    REQUIRE(sim.ask("ak-acme").admitted());
    rl::decision d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::hour));
    REQUIRE(d.retry_after == 61min - 100ms);
    sim.advance_to(61s);  // the minute has room again; the hour has not
    d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::hour));
    REQUIRE(d.retry_after == 61min - 61s);
  }
  SECTION("day and minute full: the day is named, the minute decides when to retry") {
    simulation sim(one_customer({.per_minute = 1, .per_hour = 100, .per_day = 2}));
    REQUIRE(sim.ask("ak-acme").admitted());  // at 0.1 s, day bucket 0: leaves at 24 h 15 min
    const milliseconds late = 24h + 14min + 30s;
    sim.advance_to(late);
    REQUIRE(sim.ask("ak-acme").admitted());  // the day's second; minute bucket leaves at late + 61 s
    sim.advance_to(late + 500ms);
    const rl::decision d = sim.ask("ak-acme");
    REQUIRE(refused_by(d, rl::window::day));
    REQUIRE(d.count == 2);
    REQUIRE(d.retry_after == 60'500ms);  // the day frees in 29.5 s, the minute in 60.5 s
  }
}

// ---- one server per key ----------------------------------------------------------

namespace {
struct go {};
struct answered {
  rl::decision decision;
};
}  // namespace

TEST_CASE("of 100 concurrent first requests for a new key exactly one starts a server and one "
          "lookup runs",
          "[rate_limiter][race]") {
  const unsigned workers = GENERATE(2u, 4u, 8u);
  const int rounds = int(scaled(20, 5));
  constexpr int requests = 100;
  constexpr std::uint32_t per_minute = 60;
  in_process(workers, [&] {
    rl::options o = options_with([](const std::string& key) -> std::optional<rl::contract> {
      return rl::contract{"racer " + key, {.per_minute = per_minute, .per_hour = 10'000, .per_day = 100'000}};
    });
    o.lookup_delay = 5ms;
    o.lookup_deadline = 20s;  // a slow sanitizer build must not reach them
    o.call_timeout = 20s;
    rl::service svc(o);
    auto tree = svc.start_link();
    REQUIRE(tree);
    const ember::pid me = ember::self();
    for (int round = 0; round < rounds; ++round) {
      const std::string key = "ak-race-" + std::to_string(round);
      const rl::stats before = svc.counters();
      std::vector<ember::pid> requesters;
      for (int i = 0; i < requests; ++i)
        requesters.push_back(ember::spawn([me, svc, key] {
          ember::receive([](go) {});
          ember::send(me, answered{svc.check(key)});
        }));
      for (const ember::pid& p : requesters) ember::send(p, go{});
      int admitted = 0;
      int refused = 0;
      for (int i = 0; i < requests; ++i) {
        const rl::decision d = ember::receive([](answered a) { return a.decision; });
        if (d.admitted()) {
          ++admitted;
        } else {
          INFO("decision: " << d);
          REQUIRE(refused_by(d, rl::window::minute));
          REQUIRE(d.count == per_minute);
          ++refused;
        }
      }
      const rl::stats after = svc.counters();
      REQUIRE(after.key_servers_started - before.key_servers_started == 1);
      REQUIRE(after.lookups - before.lookups == 1);
      // One server's windows saw every request: exactly the limit got through.
      REQUIRE(admitted == int(per_minute));
      REQUIRE(refused == requests - int(per_minute));
      REQUIRE_FALSE(svc.key_server(key).is_null());
      REQUIRE(svc.running_key_servers() == std::size_t(round + 1));
    }
  });
}

TEST_CASE("concurrent first requests wait for one contract lookup and are all answered from it",
          "[rate_limiter][coalescing]") {
  rl::options o = one_customer({.per_minute = 30, .per_hour = 1000, .per_day = 10'000}, 2s);
  o.lookup_deadline = 4s;
  simulation sim(o);
  std::vector<std::shared_ptr<answer>> answers;
  for (int i = 0; i < 50; ++i) answers.push_back(sim.request("ak-acme"));
  sim.settle();
  REQUIRE(sim.service().counters().key_servers_started == 1);
  REQUIRE(sim.service().counters().lookups == 1);
  for (const auto& a : answers) REQUIRE_FALSE(a->decision);  // all waiting for the contract
  sim.advance(1999ms);
  for (const auto& a : answers) REQUIRE_FALSE(a->decision);
  sim.advance(1ms);
  int admitted = 0;
  for (const auto& a : answers) {
    REQUIRE(a->decision);
    INFO("decision: " << *a->decision);
    REQUIRE(a->at == 2s);  // answered when the contract came
    if (a->decision->admitted()) {
      ++admitted;
    } else {
      REQUIRE(refused_by(*a->decision, rl::window::minute));
      REQUIRE(a->decision->limit == 30);  // the looked-up contract's limit
    }
  }
  REQUIRE(admitted == 30);
  REQUIRE(sim.service().counters().lookups == 1);
  // Later requests are answered at once, with no new lookup.
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));
  REQUIRE(sim.service().counters().lookups == 1);
}

TEST_CASE("an unknown key is looked up once for all its requests and answered unknown_key until "
          "its server goes idle",
          "[rate_limiter][coalescing]") {
  rl::options o = one_customer({.per_minute = 1, .per_hour = 1, .per_day = 1});
  o.idle_timeout = 10min;
  simulation sim(o);
  std::vector<std::shared_ptr<answer>> answers;
  for (int i = 0; i < 10; ++i) answers.push_back(sim.request("ak-nobody"));
  sim.advance(100ms);
  for (const auto& a : answers) REQUIRE(a->decision == rl::decision::unknown_key());
  REQUIRE(sim.ask("ak-nobody") == rl::decision::unknown_key());
  REQUIRE(sim.service().counters().lookups == 1);
  sim.advance(10min);
  REQUIRE(sim.service().key_server("ak-nobody").is_null());
  auto again = sim.request("ak-nobody");
  sim.advance(100ms);
  REQUIRE(again->decision == rl::decision::unknown_key());
  REQUIRE(sim.service().counters().lookups == 2);
}

TEST_CASE("a contract lookup that misses its deadline answers the waiting requests unavailable, "
          "and the next request looks up again",
          "[rate_limiter][coalescing]") {
  rl::options o = one_customer({.per_minute = 10, .per_hour = 100, .per_day = 1000}, 10s);
  o.lookup_deadline = 3s;  // before the contract comes
  simulation sim(o);
  std::vector<std::shared_ptr<answer>> answers;
  for (int i = 0; i < 5; ++i) answers.push_back(sim.request("ak-acme"));
  sim.advance(3s);
  for (const auto& a : answers) {
    REQUIRE(a->decision == rl::decision::unavailable());
    REQUIRE(a->at == 3s);
  }
  REQUIRE(sim.service().key_server("ak-acme").is_null());
  REQUIRE(sim.service().counters().lookups == 1);
  auto next = sim.request("ak-acme");
  sim.settle();
  REQUIRE(sim.service().counters().lookups == 2);
  sim.advance(8s);  // the first lookup's late answer reaches nobody
  REQUIRE(next->decision == rl::decision::unavailable());  // its own deadline, at 6 s
  REQUIRE(sim.service().counters().key_servers_started == 2);
}

TEST_CASE("a key server whose lookup misses its deadline parks the windows it took back",
          "[rate_limiter][idle]") {
  // A directory that can be made slow: it then keeps the config process
  // busy for 10 s of runtime clock before it answers.
  auto slow = std::make_shared<std::atomic<bool>>(false);
  rl::options o = options_with([slow](const std::string& key) -> std::optional<rl::contract> {
    if (*slow) ember::receive(ember::after(10s, [] {}));
    if (key != "ak-acme") return std::nullopt;
    return rl::contract{"Acme Corp", {.per_minute = 100, .per_hour = 100, .per_day = 3}};
  });
  o.lookup_delay = 100ms;
  o.lookup_deadline = 3s;
  o.idle_timeout = 10min;
  simulation sim(o);
  for (int i = 0; i < 3; ++i) REQUIRE(sim.ask("ak-acme").admitted());
  sim.advance(10min);  // idle: the windows are parked
  REQUIRE(sim.service().counters().idle_stops == 1);

  *slow = true;
  auto late = sim.request("ak-acme");  // a new server takes the windows back, then waits for its contract
  sim.advance(3s);
  REQUIRE(late->decision == rl::decision::unavailable());
  REQUIRE(sim.service().counters().windows_restored == 1);
  REQUIRE(sim.service().key_server("ak-acme").is_null());
  *slow = false;
  sim.advance(10s);  // the config process gets through the slow lookup

  const rl::decision d = sim.ask("ak-acme");
  REQUIRE(refused_by(d, rl::window::day));  // the day is still used up
  REQUIRE(d.count == 3);
  REQUIRE(sim.service().counters().windows_restored == 2);
}

// ---- idle stop ----------------------------------------------------------------------

TEST_CASE("an idle key server stops and the next request restarts it with its windows intact",
          "[rate_limiter][idle]") {
  rl::options o = one_customer({.per_minute = 100, .per_hour = 100, .per_day = 3});
  o.idle_timeout = 10min;
  simulation sim(o);
  for (int i = 0; i < 3; ++i) REQUIRE(sim.ask("ak-acme").admitted());  // at 0.1 s
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::day));
  const ember::pid first = sim.service().key_server("ak-acme");
  REQUIRE_FALSE(first.is_null());

  // Watch it with a monitor: it must stop by itself, for being idle.
  auto reason = std::make_shared<std::optional<ember::exit_reason>>();
  sim.in_runtime([first, reason] {
    ember::spawn([first, reason] {
      ember::monitor(first);
      *reason = ember::receive([](ember::down d) { return d.reason; });
    });
  });
  sim.advance(10min - 1ms);
  REQUIRE_FALSE(*reason);
  REQUIRE(sim.service().key_server("ak-acme") == first);
  sim.advance(1ms);
  REQUIRE(*reason == ember::exit_reason::shutdown("idle"));
  REQUIRE(sim.service().key_server("ak-acme").is_null());
  REQUIRE(sim.service().running_key_servers() == 0);
  REQUIRE(sim.service().counters().idle_stops == 1);
  std::size_t parked = 0;
  sim.in_runtime([&sim, &parked] { parked = sim.service().parked_windows(); });
  REQUIRE(parked == 1);

  // The next request starts a new server, which looks the contract up again
  // and takes the windows back: the day is still used up.
  auto next = sim.request("ak-acme");
  sim.advance(100ms);
  REQUIRE(next->decision);
  REQUIRE(refused_by(*next->decision, rl::window::day));
  REQUIRE(next->decision->count == 3);
  const ember::pid second = sim.service().key_server("ak-acme");
  REQUIRE_FALSE(second.is_null());
  REQUIRE(second != first);
  REQUIRE(sim.service().counters().key_servers_started == 2);
  REQUIRE(sim.service().counters().lookups == 2);
  REQUIRE(sim.service().counters().windows_restored == 1);
  sim.in_runtime([&sim, &parked] { parked = sim.service().parked_windows(); });
  REQUIRE(parked == 0);

  // Idle again; a day later the store has dropped the emptied windows and a
  // new server starts fresh.
  sim.advance(25h);
  REQUIRE(sim.service().counters().idle_stops == 2);
  sim.in_runtime([&sim, &parked] { parked = sim.service().parked_windows(); });
  REQUIRE(parked == 0);
  auto fresh = sim.request("ak-acme");
  sim.advance(100ms);
  REQUIRE(fresh->decision == rl::decision::admit());
  REQUIRE(sim.service().counters().windows_restored == 1);
}

// ---- the log line -----------------------------------------------------------------

TEST_CASE("a limit hit is logged once per episode, naming customer, key, window and count",
          "[rate_limiter][log]") {
  std::ostringstream out;
  auto log = std::make_shared<spdlog::logger>("rate_limiter", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  log->set_pattern("%v");
  simulation sim([&] {
    rl::options o = one_customer({.per_minute = 2, .per_hour = 7, .per_day = 1000});
    o.logger = log;
    return o;
  }());
  auto lines = [&out] {
    std::vector<std::string> v;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  };
  const std::string minute_line =
      R"(customer "Acme Corp" (key ak-acme) hit the per-minute limit: 2 requests in the last minute)";

  REQUIRE(sim.ask("ak-acme").admitted());  // at 0.1 s
  REQUIRE(sim.ask("ak-acme").admitted());
  REQUIRE(lines().empty());
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));  // an episode starts: one line
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));  // the same episode: no new line
  REQUIRE(lines() == std::vector<std::string>{minute_line});
  sim.advance_to(30s);
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));  // 29.9 s after the last refusal: same episode
  sim.advance_to(61s);
  REQUIRE(sim.ask("ak-acme").admitted());
  REQUIRE(sim.ask("ak-acme").admitted());
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));  // 31 s after the last refusal: same episode
  REQUIRE(lines().size() == 1);

  sim.advance_to(200s);
  REQUIRE(sim.ask("ak-acme").admitted());
  REQUIRE(sim.ask("ak-acme").admitted());  // the hour's sixth
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::minute));  // 139 s without a refusal: a new episode
  REQUIRE(lines() == std::vector<std::string>{minute_line, minute_line});

  sim.advance_to(262s);  // the minute has room (bucket 200 left at 261 s)
  REQUIRE(sim.ask("ak-acme").admitted());  // the hour's seventh
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::hour));  // the hour's first episode
  sim.advance_to(300s);
  REQUIRE(refused_by(sim.ask("ak-acme"), rl::window::hour));
  const std::string hour_line =
      R"(customer "Acme Corp" (key ak-acme) hit the per-hour limit: 7 requests in the last hour)";
  REQUIRE(lines() == std::vector<std::string>{minute_line, minute_line, hour_line});
}

// ---- limits on the service --------------------------------------------------------

TEST_CASE("beyond max_keys running key servers a new key is answered unavailable",
          "[rate_limiter]") {
  rl::options o = options_with([](const std::string& key) -> std::optional<rl::contract> {
    return rl::contract{key, {.per_minute = 10, .per_hour = 10, .per_day = 10}};
  });
  o.max_keys = 2;
  o.lookup_delay = 100ms;
  o.idle_timeout = 1min;
  simulation sim(o);
  auto a = sim.request("ak-1");
  auto b = sim.request("ak-2");
  auto c = sim.request("ak-3");
  sim.advance(100ms);
  REQUIRE(a->decision == rl::decision::admit());
  REQUIRE(b->decision == rl::decision::admit());
  REQUIRE(c->decision == rl::decision::unavailable());
  REQUIRE(sim.service().running_key_servers() == 2);
  sim.advance(1min);  // both idle: places free
  auto c2 = sim.request("ak-3");
  sim.advance(100ms);
  REQUIRE(c2->decision == rl::decision::admit());
}

TEST_CASE("a key server with a full mailbox is answered overloaded at once, and the shed request counts in no window",
          "[rate_limiter][shedding]") {
  rl::options o = one_customer({.per_minute = 3, .per_hour = 100, .per_day = 100});
  o.max_queued = 4;
  simulation sim(o);
  REQUIRE(sim.ask("ak-acme") == rl::decision::admit());  // the key's server is up and knows the contract
  std::optional<rl::decision> shed;
  std::vector<ember::send_result> fills;
  sim.in_runtime([&] {
    // Fill its mailbox (the server does not run until this process blocks).
    const ember::pid server = sim.service().key_server("ak-acme");
    REQUIRE(!server.is_null());
    for (int i = 0; i < 5; ++i) fills.push_back(ember::send(server, i));
    shed = sim.service().check("ak-acme");
  });
  CHECK(std::count(fills.begin(), fills.end(), ember::send_result::sent) == 4);
  CHECK(fills[4] == ember::send_result::refused);
  REQUIRE(shed);
  CHECK(*shed == rl::decision::overloaded());
  // The server caught up; the shed request took no place in the minute.
  CHECK(sim.ask("ak-acme") == rl::decision::admit());
  CHECK(sim.ask("ak-acme") == rl::decision::admit());
  CHECK(refused_by(sim.ask("ak-acme"), rl::window::minute));
}
