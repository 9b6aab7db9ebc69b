// ember::registry with values (include/ember/registry.hpp), after Elixir's
// Registry: register/3 with a value, lookup as (pid, value) entries,
// update_value, values/3, a process under one duplicate key more than
// once, unregister removing all, match/count_match/unregister_match with a
// predicate, count, select/count_select, dispatch/3 with a function,
// listeners, and via-names that carry a value.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;
namespace gs = ember::gen_server;

namespace {
struct stop {};
struct registered {
  ember::pid who;
};

/// A process that registers under topic with value v, says so, then waits
/// for stop.
ember::pid subscriber(ember::registry<std::string, int> r, std::string topic, int v) {
  const ember::pid me = ember::self();
  ember::pid p = ember::spawn([r, topic, v, me]() mutable {
    r.register_name(topic, v);
    ember::send(me, registered{ember::self()});
    ember::receive<stop>();
  });
  ember::receive([](registered) {});
  return p;
}

void stop_and_wait(ember::pid p) {
  auto m = ember::monitor(p);
  ember::send(p, stop{});
  ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
}

template <class E>
std::vector<E> sorted(std::vector<E> v) {
  std::sort(v.begin(), v.end(), [](const E& a, const E& b) { return a.value < b.value; });
  return v;
}

struct held {
  int handle_call(int) { return 0; }
};
}  // namespace

TEST_CASE("registry: register with a value, lookup gives (pid, value) entries, values(key, pid) reads them",
          "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, std::string> r(ember::registry_keys::unique);
    const ember::pid me = ember::self();
    r.register_name("me", std::string("meta"));
    REQUIRE(r.lookup("me") == std::vector<ember::registry_entry<std::string>>{{me, "meta"}});
    REQUIRE(r.values("me", me) == std::vector<std::string>{"meta"});
    REQUIRE(r.values("me", ember::pid{}).empty());
    REQUIRE(r.values("nothing", me).empty());
    REQUIRE(r.pids("me") == std::vector<ember::pid>{me});
    REQUIRE(r.whereis("me") == me);
    // Any thread, for any live process.
    ember::pid other = ember::spawn([] { ember::receive<stop>(); });
    r.register_name("other", other, std::string("x"));
    REQUIRE(r.lookup("other").at(0).value == "x");
    // A registry without values keeps no_value.
    ember::registry<std::string> plain(ember::registry_keys::unique);
    plain.register_name("k");
    REQUIRE(plain.lookup("k") == std::vector<ember::registry_entry<ember::no_value>>{{me, {}}});
    stop_and_wait(other);
    REQUIRE(r.lookup("other").empty());
  });
}

TEST_CASE("registry: update_value changes the caller's value under a unique key and returns the new and the old "
          "one",
          "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, int> r(ember::registry_keys::unique);
    r.register_name("n", 1);
    auto u = r.update_value("n", [](const int& v) { return v + 41; });
    REQUIRE(u == std::pair(42, 1));
    REQUIRE(r.lookup("n").at(0).value == 42);
    REQUIRE_FALSE(r.update_value("nothing", [](const int& v) { return v; }));
    // Only the owner: another process finds nothing to update.
    const ember::pid me = ember::self();
    ember::spawn([r, me]() mutable {
      bool none = !r.update_value("n", [](const int&) { return 0; });
      ember::send(me, none);
    });
    REQUIRE(ember::receive<bool>());
    REQUIRE(r.lookup("n").at(0).value == 42);
    ember::registry<std::string, int> dup(ember::registry_keys::duplicate);
    REQUIRE_THROWS_AS(dup.update_value("n", [](const int& v) { return v; }), ember::bad_argument);
  });
  ember::registry<std::string, int> r(ember::registry_keys::unique);
  REQUIRE_THROWS_AS(r.update_value("n", [](const int& v) { return v; }), ember::not_in_process);
  REQUIRE_THROWS_AS(r.register_name("n", 1), ember::not_in_process);
}

TEST_CASE("registry: a process may register under one duplicate key more than once — unregister_name removes "
          "all of its registrations there",
          "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, int> r(ember::registry_keys::duplicate);
    const ember::pid me = ember::self();
    r.register_name("t", 1);
    r.register_name("t", 2);
    r.register_name("u", 3);
    REQUIRE(r.count() == 3);
    REQUIRE(sorted(r.lookup("t")) == std::vector<ember::registry_entry<int>>{{me, 1}, {me, 2}});
    auto vs = r.values("t", me);
    std::sort(vs.begin(), vs.end());
    REQUIRE(vs == std::vector<int>{1, 2});
    auto ks = r.keys(me);
    std::sort(ks.begin(), ks.end());
    REQUIRE(ks == std::vector<std::string>{"t", "t", "u"});
    REQUIRE(r.unregister_name("t"));
    REQUIRE(r.lookup("t").empty());
    REQUIRE(r.keys(me) == std::vector<std::string>{"u"});
    REQUIRE(r.count() == 1);
    REQUIRE_FALSE(r.unregister_name("t"));
  });
}

TEST_CASE("registry: match, count_match and unregister_match select by a predicate on the value", "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, int> r(ember::registry_keys::duplicate);
    const ember::pid me = ember::self();
    std::vector<ember::pid> subs;
    for (int v : {5, 10, 15, 20}) subs.push_back(subscriber(r, "prices", v));
    r.register_name("prices", 7);
    r.register_name("prices", 30);
    auto big = [](const int& v) { return v >= 15; };
    REQUIRE(r.count_match("prices", big) == 3);
    auto m = sorted(r.match("prices", big));
    REQUIRE(m.size() == 3);
    REQUIRE(m[0] == ember::registry_entry<int>{subs[2], 15});
    REQUIRE(m[2] == ember::registry_entry<int>{me, 30});
    REQUIRE(r.count_match("nothing", big) == 0);
    // unregister_match removes the caller's matching registrations only.
    REQUIRE(r.unregister_match("prices", big) == 1);
    REQUIRE(r.values("prices", me) == std::vector<int>{7});
    REQUIRE(r.count_match("prices", big) == 2);  // the subscribers' are still there
    REQUIRE(r.keys(me) == std::vector<std::string>{"prices"});
    REQUIRE(r.unregister_match("prices", [](const int&) { return false; }) == 0);
    for (auto p : subs) stop_and_wait(p);
  });
}

TEST_CASE("registry: count, select and count_select look at every registration", "[registry]") {
  in_process(2, [] {
    ember::registry<int, std::string> r(ember::registry_keys::unique, 4);
    const ember::pid me = ember::self();
    for (int k = 0; k < 50; ++k) r.register_name(k, me, k % 2 ? std::string("odd") : std::string("even"));
    REQUIRE(r.count() == 50);
    auto odd = r.select([](const int&, ember::pid, const std::string& v) { return v == "odd"; });
    REQUIRE(odd.size() == 25);
    for (const auto& m : odd) {
      REQUIRE(m.key % 2 == 1);
      REQUIRE(m.pid == me);
    }
    REQUIRE(r.count_select([me](const int& k, ember::pid p, const std::string&) { return k < 10 && p == me; }) == 10);
    REQUIRE(r.select([](const int&, ember::pid, const std::string&) { return false; }).empty());
  });
}

TEST_CASE("registry: dispatch(key, fn) calls fn once with the entries, outside the registry's locks — dispatch "
          "(key, msg) still sends a copy to each",
          "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, int> r(ember::registry_keys::duplicate);
    std::vector<ember::pid> subs;
    for (int v : {1, 2, 3}) subs.push_back(subscriber(r, "t", v));
    int calls = 0;
    std::size_t seen = 0;
    const std::size_t n = r.dispatch("t", [&](const std::vector<ember::registry_entry<int>>& es) {
      ++calls;
      seen = es.size();
      // Outside the locks: the registry may be used from here.
      REQUIRE(r.count_match("t", [](const int& v) { return v > 1; }) == 2);
      for (const auto& [pid, v] : es) REQUIRE(std::find(subs.begin(), subs.end(), pid) != subs.end());
    });
    REQUIRE(n == 3);
    REQUIRE(calls == 1);
    REQUIRE(seen == 3);
    REQUIRE(r.dispatch("nothing", [&](const auto&) { ++calls; }) == 0);
    REQUIRE(calls == 1);  // not called when there is nobody
    for (auto p : subs) stop_and_wait(p);
  });
}

TEST_CASE("registry: listeners hear of each registration (with its value) and each unregistration, not of exits",
          "[registry]") {
  in_process(2, [] {
    using event = ember::registry_event<std::string, int>;
    const ember::pid me = ember::self();
    ember::registry<std::string, int> r(ember::registry_keys::duplicate, ember::registry_options{.listeners = {me}});
    ember::pid p = subscriber(r, "t", 7);
    auto e = ember::receive<event>();
    REQUIRE(e.what == event::kind::registered);
    REQUIRE(e.key == "t");
    REQUIRE(e.pid == p);
    REQUIRE(e.value == 7);
    r.register_name("t", 8);
    r.register_name("t", 9);
    REQUIRE(ember::receive<event>().value == 8);
    REQUIRE(ember::receive<event>().value == 9);
    REQUIRE(r.unregister_match("t", [](const int& v) { return v == 8; }) == 1);
    auto u = ember::receive<event>();
    REQUIRE(u.what == event::kind::unregistered);
    REQUIRE(u.pid == me);
    REQUIRE(r.unregister_name("t"));
    REQUIRE(ember::receive<event>().what == event::kind::unregistered);
    REQUIRE_FALSE(r.unregister_name("t"));  // nothing removed: no event
    stop_and_wait(p);                       // an exit: no event
    REQUIRE(ember::receive([](event) { return true; }, ember::after(0ms, [] { return false; })) == false);
  });
}

TEST_CASE("registry: a via-name may carry the value its server registers with", "[registry]") {
  in_process(2, [] {
    ember::registry<std::string, std::string> r(ember::registry_keys::unique);
    auto s = gs::start<held>(ember::via(r, "db", std::string("primary")));
    REQUIRE(s);
    REQUIRE(r.lookup("db") == std::vector<ember::registry_entry<std::string>>{{s.pid(), "primary"}});
    REQUIRE(gs::call<held>(ember::via(r, "db"), 1) == 0);
    auto again = gs::start<held>(ember::via(r, "db", std::string("replica")));
    REQUIRE(again.already_started());
    REQUIRE(r.values("db", s.pid()) == std::vector<std::string>{"primary"});
    gs::stop(gs::server<held>(ember::via(r, "db")));
    REQUIRE(r.lookup("db").empty());
  });
}

TEST_CASE("registry: every registration of an exiting process, values and repeats included, is gone before its "
          "monitors hear",
          "[registry]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::registry<std::string, int> dup(ember::registry_keys::duplicate);
    ember::registry<std::string, int> uniq(ember::registry_keys::unique);
    const ember::pid me = ember::self();
    ember::pid p = ember::spawn([dup, uniq, me]() mutable {
      for (int i = 0; i < 5; ++i) dup.register_name("t", i);
      uniq.register_name("only", 1);
      ember::send(me, registered{ember::self()});
      ember::receive<stop>();
    });
    ember::receive([](registered) {});
    REQUIRE(dup.lookup("t").size() == 5);
    auto m = ember::monitor(p);
    ember::send(p, stop{});
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [&](ember::down) {
      REQUIRE(dup.lookup("t").empty());
      REQUIRE(uniq.lookup("only").empty());
      REQUIRE(dup.count() == 0);
    }));
  });
}

TEST_CASE("registry: lookups and matches from plain threads while their owners update values", "[registry][stress]") {
  const unsigned workers = GENERATE(2u, 4u);
  ember::runtime rt(opts(workers));
  ember::registry<std::string, long> r(ember::registry_keys::unique, 4);
  const int owners = 8;
  const long rounds = long(scaled(2000, 200));
  std::atomic<bool> done{false};
  std::atomic<long> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&] {
      while (!done.load()) {
        for (int k = 0; k < owners; ++k) {
          const std::string key = "k" + std::to_string(k);
          for (const auto& e : r.lookup(key))
            if (e.value < 0 || e.value > rounds) bad.fetch_add(1);
          (void)r.count_match(key, [](const long& v) { return v % 2 == 0; });
        }
        (void)r.count_select([](const std::string&, ember::pid, const long&) { return true; });
      }
    });
  std::vector<ember::runtime::monitored> ps;
  for (int k = 0; k < owners; ++k)
    ps.push_back(rt.spawn_monitor([r, k, rounds]() mutable {
      const std::string key = "k" + std::to_string(k);
      r.register_name(key, 0L);
      for (long i = 0; i < rounds; ++i) {
        r.update_value(key, [](const long& v) { return v + 1; });
        if (i % 64 == 0) ember::yield();
      }
      if (r.lookup(key).at(0).value != rounds) ember::exit(ember::exit_reason::error("lost an update"));
    }));
  for (auto& p : ps) CHECK(p.wait().is_normal());
  done.store(true);
  for (auto& t : readers) t.join();
  CHECK(bad.load() == 0);
  CHECK(r.count() == 0);
}
