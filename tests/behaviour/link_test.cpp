// Links, exit signals and trap_exit — OTP's rules for link/1, unlink/1,
// spawn_link/1, exit/2 and process_flag(trap_exit).  docs/signals.md points
// at each test by name.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <thread>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::scaled;

namespace {
struct go {};
struct ping {
  ember::pid from;
};
struct pong {};
struct ready {
  ember::pid who;
};

/// A process that waits for go, then exits with r.
ember::pid exits_on_go(ember::exit_reason r) {
  return ember::spawn([r] {
    ember::receive([](go) {});
    ember::exit(r);
  });
}

/// The next down for ref (waits up to 5 s, then fails the test).
ember::down down_of(const ember::monitor_ref& ref) {
  return ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; },
                                    [](ember::down d) { return d; }),
                        ember::after(5s, []() -> ember::down { throw std::runtime_error("no down within 5 s"); }));
}

/// The next exit_message from `from` (waits up to 5 s, then fails).
ember::exit_message exit_from(ember::pid from) {
  return ember::receive(
      ember::when([&](const ember::exit_message& m) { return m.from == from; },
                  [](ember::exit_message m) { return m; }),
      ember::after(5s, []() -> ember::exit_message { throw std::runtime_error("no exit_message within 5 s"); }));
}

/// True when p answers a ping (it is alive and receiving).
bool answers(ember::pid p) {
  ember::send(p, ping{ember::self()});
  return ember::receive([](pong) { return true; }, ember::after(5s, [] { return false; }));
}

/// Serve pings until told to exit; never traps unless asked.
void pinger(bool trap) {
  if (trap) ember::process_flag(ember::trap_exit, true);
  for (;;) {
    bool more = ember::receive([](ping p) { ember::send(p.from, pong{}); return true; },
                               [](go) { return false; });
    if (!more) return;
  }
}

/// A process that links to `to` and then serves pings.
ember::pid linked_pinger(ember::pid to, bool trap) {
  ember::pid me = ember::self();
  auto p = ember::spawn([to, trap, me] {
    if (trap) ember::process_flag(ember::trap_exit, true);
    ember::link(to);
    ember::send(me, ready{ember::self()});
    pinger(false);
  });
  ember::receive(ember::when([&](const ready& r) { return r.who == p; }, [](ready) {}));
  return p;
}
}  // namespace

// ---- links ------------------------------------------------------------------

TEST_CASE("links: an abnormal exit kills every linked process that does not trap exits, with the same reason",
          "[links]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto a = exits_on_go(ember::exit_reason::error("disk on fire"));
    auto b = linked_pinger(a, false);
    auto c = linked_pinger(a, false);
    auto rb = ember::monitor(b);
    auto rc = ember::monitor(c);
    ember::send(a, go{});
    REQUIRE(down_of(rb).reason == ember::exit_reason::error("disk on fire"));
    REQUIRE(down_of(rc).reason == ember::exit_reason::error("disk on fire"));
  });
}

TEST_CASE("links: a link is bidirectional", "[links]") {
  in_process(2, [] {
    // The process that called link dies when the other one crashes...
    auto a = exits_on_go(ember::exit_reason::error("a failed"));
    auto b = linked_pinger(a, false);  // b called link(a)
    auto rb = ember::monitor(b);
    ember::send(a, go{});
    REQUIRE(down_of(rb).reason == ember::exit_reason::error("a failed"));
    // ...and the one it linked to dies when the caller crashes.
    auto c = ember::spawn([] { pinger(false); });
    auto rc = ember::monitor(c);
    auto d = ember::spawn([c] {
      ember::link(c);
      ember::receive([](go) {});
      ember::exit(ember::exit_reason::error("d failed"));
    });
    ember::send(d, go{});
    REQUIRE(down_of(rc).reason == ember::exit_reason::error("d failed"));
  });
}

TEST_CASE("links: a trapping process receives an exit_message with the sender's pid and reason", "[links]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    auto a = exits_on_go(ember::exit_reason::error("boom"));
    ember::link(a);
    ember::send(a, go{});
    auto m = exit_from(a);
    REQUIRE(m.from == a);
    REQUIRE(m.reason == ember::exit_reason::error("boom"));
    // A normal exit reaches a trapping process too, as a message.
    auto b = exits_on_go(ember::exit_reason::normal());
    ember::link(b);
    ember::send(b, go{});
    REQUIRE(exit_from(b).reason.is_normal());
  });
}

TEST_CASE("links: a normal exit does not kill linked processes", "[links]") {
  in_process(2, [] {
    auto a = exits_on_go(ember::exit_reason::normal());
    auto b = linked_pinger(a, false);
    auto ra = ember::monitor(a);
    ember::send(a, go{});
    REQUIRE(down_of(ra).reason.is_normal());
    REQUIRE(answers(b));  // still alive after a's exit was delivered
    // shutdown is abnormal for links (only normal is ignored).
    auto c = exits_on_go(ember::exit_reason::shutdown());
    auto d = linked_pinger(c, false);
    auto rd = ember::monitor(d);
    ember::send(c, go{});
    REQUIRE(down_of(rd).reason == ember::exit_reason::shutdown());
    ember::send(b, go{});
  });
}

TEST_CASE("links: links are idempotent and linking to yourself does nothing", "[links]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto a = exits_on_go(ember::exit_reason::error("once"));
    ember::link(a);
    ember::link(a);
    ember::link(ember::self());
    auto info = ember::process_info(ember::self());
    REQUIRE(info);
    REQUIRE(info->links == std::vector<ember::pid>{a});
    REQUIRE(ember::process_info(a)->links == std::vector<ember::pid>{ember::self()});
    // One unlink removes the (single) link.
    ember::unlink(a);
    REQUIRE(ember::process_info(ember::self())->links.empty());
    REQUIRE(ember::process_info(a)->links.empty());
    ember::link(a);
    auto ra = ember::monitor(a);
    ember::send(a, go{});
    down_of(ra);
    REQUIRE(exit_from(a).reason == ember::exit_reason::error("once"));
    // Exactly one exit_message, though link was called three times.
    bool extra = ember::receive([](const ember::exit_message&) { return true; }, ember::after(0ms, [] { return false; }));
    REQUIRE_FALSE(extra);
  });
}

TEST_CASE("links: linking to a dead process raises noproc_error when not trapping exits", "[links]") {
  in_process(2, [] {
    auto [a, ra] = ember::spawn_monitor([] {});
    down_of(ra);
    REQUIRE_THROWS_AS(ember::link(a), ember::noproc_error);
    REQUIRE_THROWS_AS(ember::link(ember::pid{}), ember::noproc_error);
    REQUIRE(ember::process_info(ember::self())->links.empty());
    // Uncaught, it ends the caller like any error.
    auto [b, rb] = ember::spawn_monitor([a] { ember::link(a); });
    auto d = down_of(rb);
    REQUIRE(d.reason.what() == ember::exit_reason::kind::error);
    REQUIRE(d.reason.text().find("noproc") != std::string::npos);
    (void)b;
  });
}

TEST_CASE("links: linking to a dead process gives exit_message with noproc when trapping exits", "[links]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto [a, ra] = ember::spawn_monitor([] {});
    down_of(ra);
    ember::link(a);  // no exception
    auto m = exit_from(a);
    REQUIRE(m.reason == ember::exit_reason::noproc());
    REQUIRE(ember::process_info(ember::self())->links.empty());
  });
}

TEST_CASE("links: after unlink returns, the link has no effect on the caller", "[links]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::pid me = ember::self();
    for (int i = 0; i < 50; ++i) {
      // b links to a, then unlinks; a crashes; b lives on.
      auto a = exits_on_go(ember::exit_reason::error("gone"));
      auto b = ember::spawn([a, me] {
        ember::link(a);
        ember::send(me, ready{ember::self()});
        ember::receive([](go) {});
        ember::unlink(a);
        ember::send(me, ready{ember::self()});
        pinger(false);
      });
      ember::receive([](ready) {});
      ember::send(b, go{});
      ember::receive([](ready) {});
      auto ra = ember::monitor(a);
      ember::send(a, go{});
      down_of(ra);  // links are told before monitors: had the link lived, b would be dying now
      REQUIRE(answers(b));
      ember::send(b, go{});
    }
    // The unlink case: the trapping caller unlinks and must see no exit_message.
    ember::process_flag(ember::trap_exit, true);
    for (int i = 0; i < 50; ++i) {
      auto a = exits_on_go(ember::exit_reason::error("late"));
      ember::link(a);
      auto ra = ember::monitor(a);
      ember::send(a, go{});  // a may be exiting right now
      ember::unlink(a);
      // An exit_message delivered before unlink returned stays: flush it.
      ember::receive(ember::when([&](const ember::exit_message& m) { return m.from == a; },
                                 [](ember::exit_message) {}),
                     ember::after(0ms, [] {}));
      // a tells its links before its monitors, so by the `down` anything
      // a would ever send us is here.
      down_of(ra);
      bool late = ember::receive(ember::when([&](const ember::exit_message& m) { return m.from == a; },
                                             [](ember::exit_message) { return true; }),
                                 ember::after(0ms, [] { return false; }));
      REQUIRE_FALSE(late);
    }
  });
}

TEST_CASE("links: spawn_link links before the child runs, so an immediate exit is never missed", "[links]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    for (int i = 0; i < 200; ++i) {
      auto c = ember::spawn_link([i] { ember::exit(ember::exit_reason::error("child " + std::to_string(i))); });
      auto m = exit_from(c);
      REQUIRE(m.reason == ember::exit_reason::error("child " + std::to_string(i)));
    }
    // And a crash of a spawn_link child takes a non-trapping parent down.
    auto [parent, rp] = ember::spawn_monitor([] {
      ember::spawn_link([] { throw std::runtime_error("child crashed"); });
      ember::receive([](go) {});
    });
    REQUIRE(down_of(rp).reason == ember::exit_reason::error("child crashed"));
    (void)parent;
  });
}

// ---- exit(pid, reason) ---------------------------------------------------------

TEST_CASE("exit signals: kill cannot be trapped, the target exits with killed and its links see killed",
          "[links][exit]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    auto t = ember::spawn([] { pinger(true); });  // traps exits
    REQUIRE(answers(t));
    ember::link(t);
    auto rt = ember::monitor(t);
    ember::exit(t, ember::exit_reason::kill());
    REQUIRE(down_of(rt).reason == ember::exit_reason::killed());
    REQUIRE(exit_from(t).reason == ember::exit_reason::killed());
  });
}

TEST_CASE("exit signals: a kill reaches a process blocked in receive, a busy one, and one not yet started",
          "[links][exit]") {
  in_process(1, [] {  // one worker: we decide who has run
    ember::pid me = ember::self();
    auto blocked = ember::spawn([] { pinger(false); });
    REQUIRE(answers(blocked));  // it has run and waits in receive
    auto busy = ember::spawn([me] {
      ember::send(me, ready{ember::self()});
      for (;;) ember::checkpoint();
    });
    ember::receive([](ready) {});  // it is looping now
    auto rb = ember::monitor(blocked);
    auto ru = ember::monitor(busy);
    ember::exit(blocked, ember::exit_reason::kill());
    ember::exit(busy, ember::exit_reason::kill());
    REQUIRE(down_of(rb).reason == ember::exit_reason::killed());
    REQUIRE(down_of(ru).reason == ember::exit_reason::killed());
    auto ran = std::make_shared<bool>(false);
    auto fresh = ember::spawn([ran] { *ran = true; });
    auto rf = ember::monitor(fresh);
    ember::exit(fresh, ember::exit_reason::kill());  // the only worker is ours: it has not started
    REQUIRE(down_of(rf).reason == ember::exit_reason::killed());
    REQUIRE_FALSE(*ran);
  });
}

TEST_CASE("exit signals: exit(pid, normal) is ignored unless the target traps exits or is the caller",
          "[links][exit]") {
  in_process(2, [] {
    auto a = ember::spawn([] { pinger(false); });
    ember::exit(a, ember::exit_reason::normal());
    REQUIRE(answers(a));
    // A trapping target gets it as a message from the sender.
    ember::pid me = ember::self();
    auto t = ember::spawn([me] {
      ember::process_flag(ember::trap_exit, true);
      ember::send(me, ready{ember::self()});
      auto m = ember::receive([](ember::exit_message m) { return m; });
      if (m.from != me || !m.reason.is_normal()) ember::exit(ember::exit_reason::error("wrong exit_message"));
    });
    ember::receive([](ready) {});
    auto rt = ember::monitor(t);
    ember::exit(t, ember::exit_reason::normal());
    REQUIRE(down_of(rt).reason.is_normal());
    // exit(self(), normal) ends the caller, normally.
    auto [s, rs] = ember::spawn_monitor([] {
      ember::exit(ember::self(), ember::exit_reason::normal());
      ember::exit(ember::exit_reason::error("survived exit(self(), normal)"));
    });
    REQUIRE(down_of(rs).reason.is_normal());
    (void)s;
    ember::send(a, go{});
  });
}

TEST_CASE("exit signals: other reasons kill a non-trapping target with that reason (shutdown, shutdown with a term, user text and typed values)",
          "[links][exit]") {
  struct quota {
    std::string key;
    int limit;
    bool operator==(const quota&) const = default;
  };
  in_process(2, [] {
    std::vector<ember::exit_reason> reasons{ember::exit_reason::shutdown(), ember::exit_reason::shutdown("draining"),
                                            ember::exit_reason::shutdown(42), ember::exit_reason::error("bad input"),
                                            ember::exit_reason::error(quota{"k-1", 2000})};
    for (const auto& r : reasons) {
      auto a = ember::spawn([] { pinger(false); });
      auto ra = ember::monitor(a);
      ember::exit(a, r);
      auto d = down_of(ra);
      REQUIRE(d.reason == r);
    }
    auto a = ember::spawn([] { pinger(false); });
    auto ra = ember::monitor(a);
    ember::exit(a, ember::exit_reason::error(quota{"k-2", 60}));
    auto d = down_of(ra);
    REQUIRE(d.reason.what() == ember::exit_reason::kind::error);
    const quota* q = d.reason.value<quota>();
    REQUIRE(q != nullptr);
    REQUIRE(q->key == "k-2");
    REQUIRE(q->limit == 60);
    REQUIRE(d.reason.value<int>() == nullptr);
    REQUIRE(*ember::exit_reason::shutdown(42).value<int>() == 42);
    REQUIRE(ember::exit_reason::shutdown(42).to_string() == "{shutdown,42}");
  });
}

TEST_CASE("exit signals: a trapping target receives exit(pid, reason) as an exit_message", "[links][exit]") {
  in_process(2, [] {
    ember::pid me = ember::self();
    auto t = ember::spawn([me] {
      ember::process_flag(ember::trap_exit, true);
      ember::send(me, ready{ember::self()});
      auto m = ember::receive([](ember::exit_message m) { return m; });
      ember::send(me, m);
      pinger(false);
    });
    ember::receive([](ready) {});
    ember::exit(t, ember::exit_reason::shutdown("please"));
    auto m = ember::receive([](ember::exit_message m) { return m; });
    REQUIRE(m.from == me);
    REQUIRE(m.reason == ember::exit_reason::shutdown("please"));
    REQUIRE(answers(t));
    ember::send(t, go{});
  });
}

TEST_CASE("exit signals: a process exiting with reason kill gives its links an ordinary, trappable kill",
          "[links][exit]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto a = exits_on_go(ember::exit_reason::kill());
    ember::link(a);
    auto b = linked_pinger(a, false);
    auto rb = ember::monitor(b);
    ember::send(a, go{});
    REQUIRE(exit_from(a).reason == ember::exit_reason::kill());  // trapped, not converted
    REQUIRE(down_of(rb).reason == ember::exit_reason::kill());   // non-trapping: exits with kill
  });
}

TEST_CASE("exit signals: exit(pid, reason) works from outside any process", "[links][exit]") {
  ember::runtime rt(ember_test::opts(2));
  auto m = rt.spawn_monitor([] { ember::receive([](go) {}); });
  ember::exit(m.pid, ember::exit_reason::shutdown("from main"));
  REQUIRE(m.wait() == ember::exit_reason::shutdown("from main"));
  auto t = rt.spawn_monitor([] {
    ember::process_flag(ember::trap_exit, true);
    auto msg = ember::receive([](ember::exit_message m) { return m; });
    // The sender is the null pid: not a process.
    if (!msg.from.is_null()) ember::exit(ember::exit_reason::error("from should be null"));
  });
  // It must be trapping before the signal: retry until it is.
  for (int i = 0; i < 1000 && !ember::process_info(t.pid)->trap_exit; ++i) std::this_thread::yield();
  ember::exit(t.pid, ember::exit_reason::error("x"));
  REQUIRE(t.wait().is_normal());
}

TEST_CASE("exit signals: exit(pid, reason) to a process that has exited does nothing (as erlang:exit/2)",
          "[links][exit]") {
  ember::runtime rt(ember_test::opts(2));
  auto dead = rt.spawn_monitor([] {});
  REQUIRE(dead.wait().is_normal());
  // From outside any process.
  REQUIRE_NOTHROW(ember::exit(dead.pid, ember::exit_reason::error("late")));
  REQUIRE_NOTHROW(ember::exit(dead.pid, ember::exit_reason::kill()));
  // From a process, trapping or not: no exception, no message, still alive.
  auto caller = rt.spawn_monitor([d = dead.pid] {
    ember::exit(d, ember::exit_reason::kill());
    ember::process_flag(ember::trap_exit, true);
    ember::exit(d, ember::exit_reason::error("late"));
    const bool got = ember::receive([](ember::exit_message) { return true; }, ember::after(0ms, [] { return false; }));
    if (got) ember::exit(ember::exit_reason::error("an exit_message came back"));
  });
  REQUIRE(caller.wait().is_normal());
  REQUIRE_FALSE(ember::process_info(dead.pid));
}

TEST_CASE("process_flag(trap_exit) returns the previous value", "[links][exit]") {
  in_process(1, [] {
    REQUIRE_FALSE(ember::process_flag(ember::trap_exit, true));
    REQUIRE(ember::process_flag(ember::trap_exit, false));
    REQUIRE_FALSE(ember::process_flag(ember::trap_exit, false));
  });
  REQUIRE_THROWS_AS(ember::process_flag(ember::trap_exit, true), ember::not_in_process);
  REQUIRE_THROWS_AS(ember::link(ember::pid{}), ember::not_in_process);
  REQUIRE_THROWS_AS(ember::unlink(ember::pid{}), ember::not_in_process);
}

// ---- order --------------------------------------------------------------------

TEST_CASE("signals from one process to another keep their order relative to its messages", "[links][order]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    using item = std::variant<int, ember::exit_message, ember::down>;
    auto next = [] {
      return ember::receive([](int v) { return item{v}; }, [](ember::exit_message m) { return item{m}; },
                            [](ember::down d) { return item{d}; });
    };
    ember::process_flag(ember::trap_exit, true);
    ember::pid me = ember::self();
    for (int round = 0; round < 50; ++round) {
      // Messages and exit signals from one sender, interleaved.
      auto s = ember::spawn([me] {
        ember::send(me, 1);
        ember::exit(me, ember::exit_reason::shutdown("a"));
        ember::send(me, 2);
        ember::exit(me, ember::exit_reason::shutdown("b"));
        ember::send(me, 3);
      });
      REQUIRE(std::get<int>(next()) == 1);
      REQUIRE(std::get<ember::exit_message>(next()).reason == ember::exit_reason::shutdown("a"));
      REQUIRE(std::get<int>(next()) == 2);
      REQUIRE(std::get<ember::exit_message>(next()).reason == ember::exit_reason::shutdown("b"));
      REQUIRE(std::get<int>(next()) == 3);
      // A linked sender's last messages arrive before its exit signal.
      auto l = ember::spawn_link([me] {
        for (int i = 10; i < 20; ++i) ember::send(me, i);
        ember::exit(ember::exit_reason::error("done"));
      });
      for (int i = 10; i < 20; ++i) REQUIRE(std::get<int>(next()) == i);
      REQUIRE(std::get<ember::exit_message>(next()).from == l);
      // And a monitored one's before its down.
      auto [m, ref] = ember::spawn_monitor([me] {
        for (int i = 20; i < 30; ++i) ember::send(me, i);
      });
      for (int i = 20; i < 30; ++i) REQUIRE(std::get<int>(next()) == i);
      REQUIRE(std::get<ember::down>(next()).ref == ref);
      (void)s, (void)m;
    }
  });
}

// ---- reliability --------------------------------------------------------------

TEST_CASE("links: exit propagates through a chain of 10,000 linked processes killed from one end",
          "[links][reliability]") {
  const int n = int(scaled(10000, 1500));
  in_process(2, [n] {
    ember::pid me = ember::self();
    // Each process spawn_links the next; the last reports in.
    struct link_chain {
      static void node(int left, ember::pid root) {
        if (left == 0) ember::send(root, ready{ember::self()});
        else ember::spawn_link([left, root] { node(left - 1, root); });
        ember::receive([](go) {});
      }
    };
    auto head = ember::spawn([n, me] { link_chain::node(n - 1, me); });
    auto tail = ember::receive([](ready r) { return r.who; });
    auto rh = ember::monitor(head);
    auto rt = ember::monitor(tail);
    REQUIRE(ember::processes().size() == std::size_t(n) + 1);
    ember::exit(head, ember::exit_reason::kill());
    REQUIRE(down_of(rh).reason == ember::exit_reason::killed());
    REQUIRE(down_of(rt).reason == ember::exit_reason::killed());
  });
}

TEST_CASE("links: one process linked to 100,000 takes them all down, and traps all their exits",
          "[links][reliability]") {
  const int n = int(scaled(100000, 2000));
  in_process(2, [n] {
    ember::pid me = ember::self();
    // A hub linked to n children; killing the hub kills every child.
    auto hub = ember::spawn([n, me] {
      std::vector<ember::pid> kids;
      kids.reserve(std::size_t(n));
      for (int i = 0; i < n; ++i) kids.push_back(ember::spawn_link([] { ember::receive([](go) {}); }));
      ember::send(me, std::move(kids));
      ember::receive([](go) {});
    });
    auto kids = ember::receive([](std::vector<ember::pid> v) { return v; });
    REQUIRE(ember::process_info(hub)->links.size() == std::size_t(n));
    std::unordered_map<std::uint64_t, ember::pid> refs;
    for (auto k : kids) refs.emplace(ember::monitor(k).id, k);
    ember::exit(hub, ember::exit_reason::error("hub down"));
    for (int i = 0; i < n; ++i) {
      auto d = ember::receive(ember::when([&](const ember::down& d) { return refs.count(d.ref.id) != 0; },
                                          [](ember::down d) { return d; }),
                              ember::after(10s, []() -> ember::down { throw std::runtime_error("fan: downs missing"); }));
      REQUIRE(d.reason == ember::exit_reason::error("hub down"));
      REQUIRE(refs.erase(d.ref.id) == 1);
    }
    // The other way: a trapping hub gets one exit_message per child.
    ember::process_flag(ember::trap_exit, true);
    std::vector<ember::pid> more;
    for (int i = 0; i < n; ++i) more.push_back(ember::spawn_link([] { ember::receive([](go) {}); }));
    for (auto k : more) ember::send(k, go{});
    std::unordered_set<ember::pid> seen;
    for (int i = 0; i < n; ++i) {
      auto m = ember::receive([](ember::exit_message m) { return m; },
                              ember::after(10s, []() -> ember::exit_message { throw std::runtime_error("fan: exits missing"); }));
      REQUIRE(m.reason.is_normal());
      REQUIRE(seen.insert(m.from).second);
    }
    REQUIRE(ember::process_info(ember::self())->links.empty());
  });
}

namespace {
struct die {
  int how;  // 0 normal, 1 error, 2 killed by exit(kill)
};
struct ops_done {};
struct all_dead {};

/// One storm watcher: random monitor/demonitor/link/unlink/kill against the
/// targets, then checks every expected `down` and exit_message arrived
/// exactly once and none arrived that was not expected.
void storm_watcher(std::vector<ember::pid> targets, ember::pid root, unsigned seed, int ops) {
  ember::process_flag(ember::trap_exit, true);
  std::mt19937 rng(seed);
  std::unordered_map<std::uint64_t, ember::pid> active;  // monitors that must give one down
  std::unordered_set<std::uint64_t> dropped;              // demonitored with flush: no down ever
  // Per target serial, since the last unlink: link calls made, and
  // exit_messages received.  Each link call owes at most one message (its
  // link's exit, or noproc when the target was already dead), so
  // received <= links; and once the target is dead, links > 0 means at
  // least one message comes.
  struct link_count {
    int links = 0;
    int received = 0;
  };
  std::unordered_map<std::uint64_t, link_count> linked;
  auto pick = [&] { return targets[rng() % targets.size()]; };
  auto on_exit_message = [&](const ember::exit_message& m) {
    auto& c = linked[m.from.serial()];
    if (++c.received > c.links) throw std::runtime_error("exit_message without a link");
  };
  auto on_down = [&](const ember::down& d) {
    if (dropped.count(d.ref.id)) throw std::runtime_error("down after demonitor with flush");
    if (active.erase(d.ref.id) != 1) throw std::runtime_error("down not expected (twice?)");
  };
  auto drain = [&] {
    while (ember::receive([&](const ember::exit_message& m) { on_exit_message(m); return true; },
                          [&](const ember::down& d) { on_down(d); return true; },
                          ember::after(0ms, [] { return false; }))) {
    }
  };
  for (int i = 0; i < ops; ++i) {
    switch (rng() % 8) {
      case 0:
      case 1: {
        auto t = pick();
        active.emplace(ember::monitor(t).id, t);
        break;
      }
      case 2:
        if (!active.empty()) {
          auto it = active.begin();
          std::advance(it, long(rng() % active.size()));
          ember::monitor_ref ref{it->first, it->second};
          ember::demonitor(ref, ember::demonitor_option::flush);
          dropped.insert(ref.id);
          active.erase(it);
        }
        break;
      case 3: {
        auto t = pick();
        ember::link(t);  // trapping: a dead target gives exit_message noproc
        ++linked[t.serial()].links;
        break;
      }
      case 4: {
        auto t = pick();
        ember::unlink(t);
        // What arrived before unlink returned stays; take it now.
        while (ember::receive(ember::when([&](const ember::exit_message& m) { return m.from == t; },
                                          [&](const ember::exit_message&) { return true; }),
                              ember::after(0ms, [] { return false; }))) {
        }
        linked[t.serial()] = {};
        break;
      }
      case 5:
        if (rng() % 16 == 0) {
          auto t = pick();
          if (rng() % 2) ember::send(t, die{int(rng() % 2)});
          else ember::exit(t, ember::exit_reason::kill());
        }
        break;
      default:
        drain();
        ember::yield();
    }
  }
  ember::send(root, ops_done{});
  ember::receive([](all_dead) {});
  // Every target is dead: each active monitor owes exactly one down, each
  // live link exactly one exit_message.
  while (!active.empty()) {
    ember::receive([&](const ember::exit_message& m) { on_exit_message(m); },
                   [&](const ember::down& d) { on_down(d); },
                   ember::after(5s, [] { throw std::runtime_error("storm: a down never came"); }));
  }
  for (auto& [serial, c] : linked) {
    while (c.links > 0 && c.received == 0) {
      ember::receive([&](const ember::exit_message& m) { on_exit_message(m); },
                     [&](const ember::down& d) { on_down(d); },
                     ember::after(5s, [] { throw std::runtime_error("storm: an exit_message never came"); }));
    }
  }
  drain();
}
}  // namespace

TEST_CASE("storm: linking, unlinking, monitoring and dying at random delivers every down exactly once",
          "[links][monitor][stress]") {
  const int targets_n = int(scaled(300, 120));
  const int watchers_n = 8;
  const int ops = int(scaled(4000, 1500));
  in_process(4, [=] {
    ember::pid root = ember::self();
    std::vector<ember::pid> targets;
    std::vector<ember::monitor_ref> target_refs;
    for (int i = 0; i < targets_n; ++i) {
      auto t = ember::spawn([] {
        int how = ember::receive([](die d) { return d.how; });
        if (how == 1) throw std::runtime_error("target crashed");
      });
      targets.push_back(t);
      target_refs.push_back(ember::monitor(t));
    }
    std::vector<ember::monitor_ref> watcher_refs;
    for (int w = 0; w < watchers_n; ++w) {
      auto [p, ref] = ember::spawn_monitor([=] { storm_watcher(targets, root, 1234u + unsigned(w), ops); });
      watcher_refs.push_back(ref);
      (void)p;
    }
    // Short-lived processes that link and monitor at random and then die,
    // some abnormally (taking linked targets with them).
    for (int e = 0; e < targets_n; ++e) {
      ember::spawn([targets, e] {
        std::mt19937 rng{static_cast<unsigned>(e)};
        for (int i = 0; i < 8; ++i) {
          auto t = targets[rng() % targets.size()];
          if (rng() % 2) ember::monitor(t);
          else {
            try {
              ember::link(t);
            } catch (const ember::noproc_error&) {
            }
          }
        }
        if (rng() % 4 == 0) throw std::runtime_error("ephemeral crash");
      });
    }
    for (int w = 0; w < watchers_n; ++w) {
      // A watcher that finds a violation exits with it: report that.
      auto is_watcher = [&](const ember::down& d) {
        return std::find(watcher_refs.begin(), watcher_refs.end(), d.ref) != watcher_refs.end();
      };
      ember::receive([](ops_done) {}, ember::when(is_watcher, [](ember::down d) {
                       throw std::runtime_error("a watcher exited early: " + d.reason.to_string());
                     }));
    }
    for (auto t : targets) ember::exit(t, ember::exit_reason::kill());
    for (auto& r : target_refs) down_of(r);
    for (auto& r : watcher_refs) {
      ember::send(r.target, all_dead{});
    }
    for (auto& r : watcher_refs) {
      auto d = down_of(r);
      INFO("watcher reason: " << d.reason);
      REQUIRE(d.reason.is_normal());
    }
  });
}
