// ember::registry (include/ember/registry.hpp), after Elixir's Registry:
// unique and duplicate keys, keys released at exit (before monitors and
// links hear of it, and never inherited by a reused control block),
// dispatch, via-names in gen_server and send, the race of many first
// requests for one key, lookups from plain threads while processes come
// and go, and every misuse error.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;
namespace gs = ember::gen_server;
using str_registry = ember::registry<std::string>;

namespace {
struct go {};
struct stop {};
struct ping {
  ember::pid from;
  int value;
};
struct pong {
  ember::pid who;
  int value;
};
struct ready {
  ember::pid who;
};
struct tick {
  int n;
};
struct got_tick {
  ember::pid who;
  int n;
};

/// Answers pings with pongs until it gets stop.
void echo() {
  for (;;) {
    bool more = ember::receive([](ping p) {
      ember::send(p.from, pong{ember::self(), p.value});
      return true;
    },
                               [](stop) { return false; });
    if (!more) return;
  }
}

/// Stop p (an echo) and wait until it has exited.
void stop_and_wait(ember::pid p) {
  auto ref = ember::monitor(p);
  ember::send(p, stop{});
  ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
}

/// A pid that is dead for sure.
ember::pid dead_pid() {
  auto [p, ref] = ember::spawn_monitor([] {});
  ember::receive(ember::when([ref = ref](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
  return p;
}

bool mailbox_empty() {
  return ember::receive([](const ember::down&) { return false; }, [](pong) { return false; },
                        [](got_tick) { return false; }, ember::after(0ms, [] { return true; }));
}

// ---- servers ----------------------------------------------------------------

struct inc {};
struct get {};
struct whoami {};
struct add {
  long by;
};

struct counter : gs::behaviour<counter> {
  long n = 0;
  long handle_call(inc) { return ++n; }
  long handle_call(get) { return n; }
  void handle_cast(add a) { n += a.by; }
  using info = gs::types<ping>;
  void handle_info(ping p) { ember::send(p.from, pong{ember::self(), int(n)}); }
};

/// Counts how many objects were built and how many are alive.
struct census {
  std::atomic<int> built{0};
  std::atomic<int> live{0};
};

struct limiter : gs::behaviour<limiter> {
  std::shared_ptr<census> c;
  explicit limiter(std::shared_ptr<census> cs) : c(std::move(cs)) {
    c->built.fetch_add(1);
    c->live.fetch_add(1);
  }
  limiter(const limiter&) = delete;
  ~limiter() { c->live.fetch_sub(1); }
  ember::pid handle_call(whoami) { return ember::self(); }
};

struct picky {
  explicit picky(int how) : how_(how) {
    if (how_ == 1) throw std::runtime_error("no config");
  }
  gs::next<picky> init() {
    if (how_ == 2) return gs::next<picky>::stopping(ember::exit_reason::error("refused"));
    return {};
  }
  int handle_call(get) { return how_; }
  int how_;
};

struct outcome {
  bool ok;
  bool already;
  ember::pid pid;
};
}  // namespace

// ---- unique keys --------------------------------------------------------------

TEST_CASE("registry: unique keys: register, whereis, lookup, keys, count, unregister", "[registry]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    str_registry reg(ember::registry_keys::unique);
    REQUIRE(reg.key_mode() == ember::registry_keys::unique);
    REQUIRE(reg.count() == 0);
    REQUIRE_FALSE(reg.whereis("a"));

    auto p = ember::spawn(echo);
    reg.register_name("a", p);                   // explicit pid
    reg.register_name(std::string("b"), p);      // a process may hold many keys
    reg.register_name(std::string_view("me"));   // the caller
    REQUIRE(reg.whereis("a") == p);
    REQUIRE(reg.whereis(std::string("b")) == p);
    REQUIRE(reg.whereis("me") == ember::self());
    REQUIRE(reg.pids("a") == std::vector<ember::pid>{p});
    REQUIRE(reg.lookup("nothing").empty());
    REQUIRE(reg.count() == 3);
    auto ks = reg.keys(p);
    std::sort(ks.begin(), ks.end());
    REQUIRE(ks == std::vector<std::string>{"a", "b"});
    REQUIRE(reg.keys(ember::self()) == std::vector<std::string>{"me"});

    // A copy of the handle shares the table.
    str_registry copy = reg;
    REQUIRE(copy.whereis("a") == p);

    REQUIRE(reg.unregister_name("a", p));
    REQUIRE_FALSE(reg.unregister_name("a", p));
    REQUIRE_FALSE(reg.whereis("a"));
    REQUIRE(reg.keys(p) == std::vector<std::string>{"b"});
    REQUIRE(reg.unregister_name("me"));
    REQUIRE_FALSE(reg.unregister_name("me"));
    REQUIRE_FALSE(reg.unregister_name("b", ember::self()));  // not the holder
    REQUIRE(reg.whereis("b") == p);
    REQUIRE(reg.count() == 1);

    // A freed key can go to another process; the old holder lives on.
    reg.register_name("a");
    REQUIRE(reg.whereis("a") == ember::self());
    ember::send(p, ping{ember::self(), 5});
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 5);
    REQUIRE(reg.dispatch("b", ping{ember::self(), 6}) == 1);
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 6);
    REQUIRE(reg.dispatch("nothing", ping{ember::self(), 7}) == 0);
    stop_and_wait(p);
  });
}

TEST_CASE("registry: keys of any hashable type", "[registry]") {
  in_process(2, [] {
    ember::registry<int> reg(ember::registry_keys::unique, 2);
    auto p = ember::spawn(echo);
    reg.register_name(7, p);
    REQUIRE(reg.whereis(7) == p);
    REQUIRE_FALSE(reg.whereis(8));
    try {
      reg.register_name(7, ember::self());
      FAIL("a taken int key was registered");
    } catch (const ember::registration_error& e) {
      REQUIRE_THAT(e.what(), Catch::Contains("key 7") && Catch::Contains(fmt::format("{}", p)));
    }
    REQUIRE(reg.keys(p) == std::vector<int>{7});
    ember::send(ember::via(reg, 7), ping{ember::self(), 1});
    REQUIRE(ember::receive([](pong r) { return r.who; }) == p);
    stop_and_wait(p);
    REQUIRE_FALSE(reg.whereis(7));
    REQUIRE(reg.count() == 0);
  });
}

TEST_CASE("registry: a taken unique key is refused with registration_error naming the holder", "[registry]") {
  in_process(2, [] {
    str_registry reg(ember::registry_keys::unique);
    auto holder = ember::spawn(echo);
    auto other = ember::spawn(echo);
    reg.register_name("taken", holder);
    try {
      reg.register_name("taken", other);
      FAIL("registering a taken key did not throw");
    } catch (const ember::registration_error& e) {
      REQUIRE_THAT(e.what(), Catch::Contains("\"taken\"") && Catch::Contains(fmt::format("{}", holder)));
    }
    // The holder registering it again is refused too, naming itself.
    REQUIRE_THROWS_WITH(reg.register_name("taken", holder), Catch::Contains(fmt::format("{}", holder)));
    REQUIRE(reg.whereis("taken") == holder);
    REQUIRE(reg.keys(other).empty());
    REQUIRE(reg.keys(holder) == std::vector<std::string>{"taken"});
    REQUIRE(reg.count() == 1);
    stop_and_wait(holder);
    stop_and_wait(other);
  });
}

// ---- exit -------------------------------------------------------------------

TEST_CASE("registry: keys vanish when their process exits, before monitors and links hear of it", "[registry]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    str_registry uniq(ember::registry_keys::unique);
    str_registry dup(ember::registry_keys::duplicate);
    for (int i = 0; i < 30; ++i) {
      // Normal exit, seen by a monitor.
      auto p = ember::spawn(echo);
      uniq.register_name("k", p);
      uniq.register_name("k2", p);
      dup.register_name("t", p);
      dup.register_name("t", ember::self());
      stop_and_wait(p);
      REQUIRE_FALSE(uniq.whereis("k"));
      REQUIRE_FALSE(uniq.whereis("k2"));
      REQUIRE(dup.pids("t") == std::vector<ember::pid>{ember::self()});
      REQUIRE(uniq.keys(p).empty());
      REQUIRE(uniq.count() == 0);
      REQUIRE(dup.count() == 1);
      REQUIRE(dup.unregister_name("t"));
      REQUIRE_THROWS_AS(ember::send(ember::via(uniq, "k"), ping{ember::self(), i}), ember::no_such_name);
      // The key is free for the next process at once.
      auto q = ember::spawn(echo);
      uniq.register_name("k", q);
      REQUIRE(uniq.whereis("k") == q);
      stop_and_wait(q);
    }
    // A crash, seen by a monitor: the process registered itself.
    auto [c, ref] = ember::spawn_monitor([uniq]() mutable {
      uniq.register_name("crasher");
      ember::receive([](go) {});
      throw std::runtime_error("down it goes");
    });
    ember::send(c, go{});
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.reason == ember::exit_reason::error("down it goes"));
    REQUIRE_FALSE(uniq.whereis("crasher"));
    (void)ref;
    // A linked process, seen through a trapped exit signal; and a kill.
    ember::process_flag(ember::trap_exit, true);
    auto l = ember::spawn_link(echo);
    uniq.register_name("linked", l);
    ember::send(l, stop{});
    auto m = ember::receive([](ember::exit_message m) { return m; });
    REQUIRE(m.from == l);
    REQUIRE_FALSE(uniq.whereis("linked"));
    auto k = ember::spawn_link(echo);
    uniq.register_name("killed", k);
    ember::exit(k, ember::exit_reason::kill());
    auto km = ember::receive([](ember::exit_message m) { return m; });
    REQUIRE(km.reason == ember::exit_reason::killed());
    REQUIRE_FALSE(uniq.whereis("killed"));
    REQUIRE(uniq.count() == 0);
  });
}

TEST_CASE("registry: a control block reused by a new process does not inherit keys", "[registry]") {
  in_process(1, [] {
    str_registry uniq(ember::registry_keys::unique);
    str_registry dup(ember::registry_keys::duplicate);
    auto old = ember::spawn(echo);
    uniq.register_name("k", old);
    dup.register_name("t", old);
    stop_and_wait(old);
    // Find the process that got the old block (one worker: freed blocks are
    // reused first).
    ember::pid reused;
    std::vector<ember::pid> others;
    for (int i = 0; i < 1000 && reused.is_null(); ++i) {
      auto p = ember::spawn(echo);
      if (p.block() == old.block()) reused = p;
      else others.push_back(p);
    }
    REQUIRE_FALSE(reused.is_null());
    REQUIRE(reused != old);
    REQUIRE_FALSE(uniq.whereis("k"));
    REQUIRE(dup.lookup("t").empty());
    REQUIRE(uniq.keys(reused).empty());
    REQUIRE(dup.keys(reused).empty());
    REQUIRE(uniq.keys(old).empty());
    REQUIRE(uniq.dispatch("k", ping{ember::self(), 1}) == 0);
    REQUIRE_FALSE(uniq.unregister_name("k", old));
    // The new process takes keys of its own, and the stale pid none.
    uniq.register_name("k", reused);
    REQUIRE(uniq.whereis("k") == reused);
    REQUIRE_THROWS_AS(uniq.register_name("other", old), ember::registration_error);
    REQUIRE_FALSE(uniq.unregister_name("k", old));
    REQUIRE(uniq.whereis("k") == reused);
    stop_and_wait(reused);
    for (auto p : others) stop_and_wait(p);
    REQUIRE(uniq.count() == 0);
    REQUIRE(dup.count() == 0);
  });
}

// ---- duplicate keys ---------------------------------------------------------

TEST_CASE("registry: duplicate keys hold many processes, dispatch sends a copy to each", "[registry]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    str_registry topics(ember::registry_keys::duplicate, 4);
    REQUIRE(topics.partitions() == 4);
    const auto me = ember::self();
    constexpr int n = 20;
    std::vector<ember::pid> subs;
    for (int i = 0; i < n; ++i)
      subs.push_back(ember::spawn([me, topics]() mutable {
        topics.register_name("prices");
        if (ember::self().serial() % 2 == 0) topics.register_name("news");
        ember::send(me, ready{ember::self()});
        for (;;) {
          bool more = ember::receive([&](tick t) {
            ember::send(me, got_tick{ember::self(), t.n});
            return true;
          },
                                     [](stop) { return false; });
          if (!more) return;
        }
      }));
    for (int i = 0; i < n; ++i) ember::receive([](ready) {});
    REQUIRE(topics.count() >= std::size_t(n));
    auto all = topics.pids("prices");
    REQUIRE(std::set<ember::pid>(all.begin(), all.end()) == std::set<ember::pid>(subs.begin(), subs.end()));

    REQUIRE(topics.dispatch("prices", tick{1}) == std::size_t(n));
    std::set<ember::pid> heard;
    for (int i = 0; i < n; ++i) {
      auto g = ember::receive([](got_tick g) { return g; });
      REQUIRE(g.n == 1);
      heard.insert(g.who);
    }
    REQUIRE(heard.size() == std::size_t(n));
    REQUIRE(mailbox_empty());  // one copy each, no more

    // A process may be under the same key more than once (as in Elixir);
    // unregister_name removes all of its registrations there.
    topics.register_name("prices", subs[0]);
    REQUIRE(topics.lookup("prices").size() == std::size_t(n + 1));

    // Unregister one, and let another exit: neither hears the next tick.
    REQUIRE(topics.unregister_name("prices", subs[0]));
    REQUIRE_FALSE(topics.unregister_name("prices", subs[0]));
    auto ref = ember::monitor(subs[1]);
    ember::send(subs[1], stop{});
    ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
    REQUIRE(topics.keys(subs[1]).empty());
    REQUIRE(topics.dispatch("prices", tick{2}) == std::size_t(n - 2));
    heard.clear();
    for (int i = 0; i < n - 2; ++i) heard.insert(ember::receive([](got_tick g) { return g.who; }));
    REQUIRE(heard.size() == std::size_t(n - 2));
    REQUIRE_FALSE(heard.count(subs[0]));
    REQUIRE_FALSE(heard.count(subs[1]));
    REQUIRE(mailbox_empty());

    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (i == 1) continue;
      auto r = ember::monitor(subs[i]);
      ember::send(subs[i], stop{});
      ember::receive(ember::when([&](const ember::down& d) { return d.ref == r; }, [](ember::down) {}));
    }
    REQUIRE(topics.lookup("news").empty());
    REQUIRE(topics.lookup("prices").empty());
    REQUIRE(topics.count() == 0);
  });
}

// ---- via-names --------------------------------------------------------------

TEST_CASE("registry: via-names name gen_servers in start, start_link, call, cast, stop and send", "[registry]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    str_registry reg(ember::registry_keys::unique);
    const ember::via_name v = ember::via(reg, "counter");
    REQUIRE(v);
    REQUIRE_THAT(v.to_string(), Catch::Contains("counter"));

    auto s = gs::start<counter>(v);
    REQUIRE(s);
    REQUIRE(reg.whereis("counter") == s.pid());
    REQUIRE(gs::call<counter>(v, inc{}) == 1);
    REQUIRE(gs::call<counter>(ember::via(reg, "counter"), inc{}) == 2);  // a fresh via_name
    gs::server<counter> srv(v);
    REQUIRE(srv.pid() == s.pid());
    REQUIRE(srv.via());
    gs::cast(srv, add{40});
    REQUIRE(gs::call(srv, get{}) == 42);
    ember::send(v, ping{ember::self(), 0});  // to handle_info
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 42);

    gs::stop(srv);
    // Gone with the server, before stop returned.
    REQUIRE_FALSE(reg.whereis("counter"));
    REQUIRE(srv.pid().is_null());
    REQUIRE_THROWS_AS(gs::call(srv, get{}), ember::call_noproc);
    REQUIRE_THROWS_AS(gs::stop(srv), ember::call_noproc);
    REQUIRE_THROWS_AS(ember::send(v, ping{ember::self(), 0}), ember::no_such_name);
    gs::cast(srv, add{1});  // dropped, as a cast to an absent name is

    // start_link: linked to the starter, under the same (now free) key.
    auto l = gs::start_link<counter>(ember::via(reg, "counter"));
    REQUIRE(l);
    REQUIRE(reg.whereis("counter") == l.pid());
    auto info = ember::process_info(ember::self());
    REQUIRE(std::find(info->links.begin(), info->links.end(), l.pid()) != info->links.end());
    REQUIRE(gs::call(srv, inc{}) == 1);  // the old server<S> finds the new holder
    ember::unlink(l.pid());
    gs::stop(srv, ember::exit_reason::shutdown());
    REQUIRE(reg.count() == 0);
  });
}

TEST_CASE("registry: a second start under a taken via-name returns already_started with the holder's pid",
          "[registry]") {
  in_process(2, [] {
    str_registry reg(ember::registry_keys::unique);
    auto a = gs::start<counter>(ember::via(reg, "one"));
    REQUIRE(a);
    auto b = gs::start<counter>(ember::via(reg, "one"));
    REQUIRE_FALSE(b);
    REQUIRE(b.already_started());
    REQUIRE(b.pid() == a.pid());
    REQUIRE(b.error() == ember::exit_reason::error("already started"));
    auto c = gs::start_link<counter>(ember::via(reg, "one"));
    REQUIRE(c.already_started());
    REQUIRE(c.pid() == a.pid());
    // A key held by a plain process counts too.
    reg.register_name("plain");
    auto d = gs::start<counter>(ember::via(reg, "plain"));
    REQUIRE(d.already_started());
    REQUIRE(d.pid() == ember::self());
    REQUIRE(reg.count() == 2);
    gs::stop<counter>(a.pid());
  });
}

TEST_CASE("registry: a server whose init fails gives its via key back", "[registry]") {
  in_process(2, [] {
    str_registry reg(ember::registry_keys::unique);
    for (int how : {1, 2}) {
      auto s = gs::start_link<picky>(ember::via(reg, "picky"), how);
      REQUIRE_FALSE(s);
      REQUIRE_FALSE(s.already_started());
      REQUIRE(s.error() == (how == 1 ? ember::exit_reason::error("no config") : ember::exit_reason::error("refused")));
      REQUIRE_FALSE(reg.whereis("picky"));  // released before start returned
      REQUIRE(reg.count() == 0);
    }
    auto ok = gs::start<picky>(ember::via(reg, "picky"), 0);
    REQUIRE(ok);
    REQUIRE(reg.whereis("picky") == ok.pid());
    REQUIRE(gs::call<picky>(ember::via(reg, "picky"), get{}) == 0);
  });
}

TEST_CASE("registry: of 100 concurrent first requests for one key exactly one starts a server", "[registry]") {
  unsigned workers = GENERATE(2u, 4u, 8u);
  const int rounds = int(scaled(50, 10));
  constexpr int requests = 100;
  in_process(workers, [&] {
    str_registry reg(ember::registry_keys::unique);
    const auto me = ember::self();
    for (int round = 0; round < rounds; ++round) {
      auto c = std::make_shared<census>();
      std::vector<ember::pid> requesters;
      for (int i = 0; i < requests; ++i)
        requesters.push_back(ember::spawn([me, reg, c] {
          ember::receive([](go) {});
          auto r = gs::start<limiter>(ember::via(reg, "api-key-42"), c);
          ember::send(me, outcome{bool(r), r.already_started(), r.pid()});
        }));
      for (auto& p : requesters) ember::send(p, go{});
      int ok = 0;
      std::vector<outcome> got;
      for (int i = 0; i < requests; ++i) got.push_back(ember::receive([](outcome o) { return o; }));
      ember::pid winner;
      for (const auto& o : got)
        if (o.ok) {
          ++ok;
          winner = o.pid;
        }
      REQUIRE(ok == 1);
      for (const auto& o : got) {
        if (o.ok) continue;
        REQUIRE(o.already);
        REQUIRE(o.pid == winner);
      }
      REQUIRE(c->built == 1);  // no other server got as far as its object
      REQUIRE(c->live == 1);
      REQUIRE(reg.whereis("api-key-42") == winner);
      REQUIRE(reg.count() == 1);
      REQUIRE(gs::call<limiter>(ember::via(reg, "api-key-42"), whoami{}) == winner);
      gs::stop<limiter>(ember::via(reg, "api-key-42"));
      REQUIRE(c->live == 0);
      REQUIRE_FALSE(reg.whereis("api-key-42"));
    }
  });
}

// ---- threads ----------------------------------------------------------------

TEST_CASE("registry: register, look up and dispatch from threads outside the runtime", "[registry]") {
  ember::runtime rt(opts(2));
  str_registry reg(ember::registry_keys::unique);
  auto m = rt.spawn_monitor([] {
    int v = ember::receive<int>();
    ember::exit(ember::exit_reason::shutdown("got " + std::to_string(v)));
  });
  reg.register_name("outside", m.pid);
  REQUIRE(reg.whereis("outside") == m.pid);
  CHECK_THROWS_AS(reg.register_name("outside", m.pid), ember::registration_error);
  CHECK_THROWS_AS(reg.register_name("x"), ember::not_in_process);
  CHECK_THROWS_AS(reg.unregister_name("x"), ember::not_in_process);
  REQUIRE(reg.dispatch("outside", 42) == 1);
  CHECK(m.wait() == ember::exit_reason::shutdown("got 42"));
  // Released before exit waiters are.
  CHECK_FALSE(reg.whereis("outside"));
  CHECK(reg.count() == 0);
  CHECK_THROWS_AS(ember::send(ember::via(reg, "outside"), 1), ember::no_such_name);
}

namespace {
struct probe {
  int key;
};
}  // namespace

TEST_CASE("registry: lookups from plain threads while processes come and go", "[registry][stress]") {
  const unsigned workers = GENERATE(2u, 4u);
  const int total = int(scaled(20000, 1500));
  constexpr int keys = 8;
  constexpr int batch = 64;
  ember::runtime rt(opts(workers));
  str_registry uniq(ember::registry_keys::unique, 2);  // few partitions: more contention
  str_registry dup(ember::registry_keys::duplicate, 2);
  auto key = [](int k) { return "k" + std::to_string(k); };
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::atomic<long> found{0};

  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&, t] {
      int k = t;
      while (!done.load(std::memory_order_relaxed)) {
        k = (k + 1) % keys;
        const std::string name = key(k);
        if (auto p = uniq.whereis(name)) {
          found.fetch_add(1, std::memory_order_relaxed);
          ember::send(*p, probe{k});
          auto ks = uniq.keys(*p);  // empty if it has exited since
          if (!ks.empty() && ks != std::vector<std::string>{name}) wrong.fetch_add(1);
        }
        for (auto p : dup.pids(name)) {
          auto ks = dup.keys(p);
          if (!ks.empty() && ks != std::vector<std::string>{name}) wrong.fetch_add(1);
        }
        dup.dispatch(name, probe{k});
        // The root waits for each batch to exit before it starts the next.
        if (dup.count() > std::size_t(batch) || uniq.count() > std::size_t(keys)) wrong.fetch_add(1);
      }
    });

  auto root = rt.spawn_monitor([&] {
    for (int started = 0; started < total; started += batch) {
      std::vector<ember::monitor_ref> refs;
      for (int i = 0; i < batch; ++i) {
        const int k = (started + i) % keys;
        auto child = ember::spawn_monitor([&, k] {
          const std::string name = key(k);
          try {
            uniq.register_name(name);
          } catch (const ember::registration_error&) {
            // taken by a sibling: fine
          }
          dup.register_name(name);
          // Every probe that reaches this process is for its own key.  (A
          // bounded number each time: the readers may send faster than
          // this drains.)
          for (int j = 0; j < 3; ++j) {
            ember::yield();
            for (int m = 0; m < 32; ++m) {
              const bool got = ember::receive([&](probe p) {
                if (p.key != k) wrong.fetch_add(1);
                return true;
              },
                                              ember::after(0ms, [] { return false; }));
              if (!got) break;
            }
          }
        });
        refs.push_back(child.second);
      }
      for (std::size_t i = 0; i < refs.size(); ++i) ember::receive([](ember::down) {});
    }
  });
  auto r = root.wait();
  done = true;
  for (auto& t : readers) t.join();
  INFO("root exit: " << r);
  REQUIRE(r.is_normal());
  CHECK(wrong == 0);
  CHECK(uniq.count() == 0);
  CHECK(dup.count() == 0);
  for (int k = 0; k < keys; ++k) {
    CHECK_FALSE(uniq.whereis(key(k)));
    CHECK(dup.lookup(key(k)).empty());
  }
  (void)found;
}

// ---- lifetime and misuse ----------------------------------------------------

TEST_CASE("registry: a handle dropped while processes hold keys is safe, a via_name keeps the table",
          "[registry]") {
  in_process(2, [] {
    ember::pid p = ember::spawn(echo);
    ember::via_name v;
    {
      str_registry reg(ember::registry_keys::unique);
      reg.register_name("kept", p);
      reg.register_name("gone", ember::spawn(echo));
      v = ember::via(reg, "kept");
    }  // the last handle goes; the processes still hold their keys
    REQUIRE(v.whereis() == p);
    ember::send(v, ping{ember::self(), 3});
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 3);
    stop_and_wait(p);  // its exit hook runs on the table the via_name shares
    REQUIRE(v.whereis().is_null());
  });  // the runtime stops: the other process exits, last reference to its table
}

TEST_CASE("registry: misuse gives typed errors", "[registry][misuse]") {
  in_process(2, [] {
    str_registry uniq(ember::registry_keys::unique);
    str_registry dup(ember::registry_keys::duplicate);

    SECTION("registering the null pid or a dead pid") {
      try {
        uniq.register_name("k", ember::pid{});
        FAIL("the null pid was registered");
      } catch (const ember::registration_error& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("null pid"));
      }
      const ember::pid dead = dead_pid();
      try {
        uniq.register_name("k", dead);
        FAIL("a dead pid was registered");
      } catch (const ember::registration_error& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("not alive") && Catch::Contains(fmt::format("{}", dead)));
      }
      REQUIRE_THROWS_AS(dup.register_name("k", dead), ember::registration_error);
      REQUIRE(uniq.count() == 0);
      REQUIRE(dup.count() == 0);
      // The refusals left nothing behind: the key is free.
      uniq.register_name("k");
      REQUIRE(uniq.whereis("k") == ember::self());
    }
    SECTION("whereis and via on a duplicate-key registry") {
      REQUIRE_THROWS_AS(dup.whereis("k"), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::via(dup, "k"), ember::bad_argument);
    }
    SECTION("too many partitions") {
      REQUIRE_THROWS_AS(str_registry(ember::registry_keys::unique, 100000), ember::bad_argument);
      REQUIRE(str_registry(ember::registry_keys::unique, 3).partitions() == 4);
      REQUIRE(str_registry(ember::registry_keys::unique, 1).partitions() == 1);
      auto n = str_registry(ember::registry_keys::unique).partitions();
      REQUIRE(n >= 1);
      REQUIRE((n & (n - 1)) == 0);
    }
    SECTION("send, call, stop and cast to a via-name nobody holds") {
      const auto v = ember::via(uniq, "absent");
      try {
        ember::send(v, 1);
        FAIL("send to an absent via-name did not throw");
      } catch (const ember::no_such_name& e) {
        REQUIRE_THAT(e.name(), Catch::Contains("absent"));
      }
      try {
        gs::call<counter>(v, get{});
        FAIL("call to an absent via-name did not throw");
      } catch (const ember::call_noproc& e) {
        REQUIRE_THAT(e.what(), Catch::Contains("absent"));
      }
      REQUIRE_THROWS_AS(gs::stop<counter>(v), ember::call_noproc);
      gs::cast<counter>(v, add{1});  // silent
      REQUIRE(mailbox_empty());
    }
    SECTION("the empty via_name") {
      ember::via_name empty;
      REQUIRE_FALSE(empty);
      REQUIRE(empty.whereis().is_null());
      REQUIRE_THROWS_AS(gs::start<counter>(empty), ember::bad_argument);
      REQUIRE_THROWS_AS(gs::start_link<counter>(empty), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send(empty, 1), ember::bad_argument);
      REQUIRE_THROWS_AS(empty.register_name(ember::self()), ember::bad_argument);
      REQUIRE_THROWS_AS(gs::call<counter>(empty, get{}), ember::call_noproc);
    }
  });
}
