// Registered names: register_name / whereis / send by name / unregister_name
// (erlang:register/2, whereis/1, Name ! Msg, unregister/1): one name per
// process and one process per name, names released on exit, no_such_name
// instead of a silent drop, the runtime's API from outside any process, and
// a race for one name.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;

namespace {
struct go {};
struct stop {};
struct ping {
  ember::pid from;
  int value;
};
struct pong {
  int value;
};
/// A contender's report in the race for one name.
struct claim {
  ember::pid who;
  bool won;
};

/// A process that answers every ping with a pong of the same value until it
/// gets stop.
void echo() {
  for (;;) {
    bool more = ember::receive([](ping p) {
      ember::send(p.from, pong{p.value});
      return true;
    },
                               [](stop) { return false; });
    if (!more) return;
  }
}

/// Ask p (an echo) to answer; true when it did with the same value.
bool answers(ember::pid p, int value) {
  ember::send(p, ping{ember::self(), value});
  return ember::receive([](pong r) { return r.value; }) == value;
}

/// Stop p and wait until it has exited.
void stop_and_wait(ember::pid p) {
  auto ref = ember::monitor(p);
  ember::send(p, stop{});
  ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
}
}  // namespace

TEST_CASE("names: whereis gives the registered pid and send by name reaches it", "[names]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    auto p = ember::spawn(echo);
    ember::register_name("echo", p);
    auto found = ember::whereis("echo");
    REQUIRE(found);
    REQUIRE(*found == p);
    ember::send("echo", ping{ember::self(), 7});  // const char* overload
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 7);
    ember::send(std::string_view("echo"), ping{ember::self(), 8});
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 8);
    stop_and_wait(p);
  });
}

TEST_CASE("names: registering a taken name throws registration_error and the holder keeps it", "[names]") {
  in_process(2, [] {
    auto holder = ember::spawn(echo);
    auto other = ember::spawn(echo);
    ember::register_name("taken", holder);
    try {
      ember::register_name("taken", other);
      FAIL("registering a taken name did not throw");
    } catch (const ember::registration_error& e) {
      REQUIRE_THAT(e.what(), Catch::Contains("\"taken\""));
    }
    REQUIRE(ember::whereis("taken") == holder);
    // Registering the same pid under the same name again is also refused.
    REQUIRE_THROWS_AS(ember::register_name("taken", holder), ember::registration_error);
    REQUIRE(ember::whereis("taken") == holder);
    // The refused process did not get the name either: it can take another.
    ember::register_name("free", other);
    REQUIRE(ember::whereis("free") == other);
    stop_and_wait(holder);
    stop_and_wait(other);
  });
}

TEST_CASE("names: a process can hold only one name", "[names]") {
  in_process(2, [] {
    auto p = ember::spawn(echo);
    ember::register_name("first", p);
    try {
      ember::register_name("second", p);
      FAIL("a second name for the same process did not throw");
    } catch (const ember::registration_error& e) {
      REQUIRE_THAT(e.what(), Catch::Contains("\"second\"") && Catch::Contains("\"first\""));
    }
    REQUIRE(ember::whereis("first") == p);
    REQUIRE_FALSE(ember::whereis("second"));
    // Registering yourself follows the same rule.
    ember::register_name("me", ember::self());
    REQUIRE_THROWS_AS(ember::register_name("me_again", ember::self()), ember::registration_error);
    REQUIRE(ember::whereis("me") == ember::self());
    REQUIRE_FALSE(ember::whereis("me_again"));
    stop_and_wait(p);
  });
}

TEST_CASE("names: a dead pid, the null pid or an empty name cannot be registered", "[names]") {
  in_process(2, [] {
    auto [dead, ref] = ember::spawn_monitor([] {});
    ember::receive([](ember::down) {});
    REQUIRE_THROWS_AS(ember::register_name("ghost", dead), ember::registration_error);
    REQUIRE_FALSE(ember::whereis("ghost"));
    REQUIRE_THROWS_AS(ember::register_name("nobody", ember::pid{}), ember::registration_error);
    REQUIRE_FALSE(ember::whereis("nobody"));
    REQUIRE_THROWS_AS(ember::register_name("", ember::self()), ember::registration_error);
    REQUIRE_FALSE(ember::whereis(""));
    // None of the refusals left a name behind on the caller.
    ember::register_name("fine", ember::self());
    REQUIRE(ember::whereis("fine") == ember::self());
    (void)ref;
  });
}

TEST_CASE("names: a name is released when its process exits", "[names]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    for (int i = 0; i < 50; ++i) {
      auto p = ember::spawn(echo);
      ember::register_name("short_lived", p);
      REQUIRE(answers(p, i));
      stop_and_wait(p);
      // The down came after the name was released.
      REQUIRE_FALSE(ember::whereis("short_lived"));
      REQUIRE_THROWS_AS(ember::send("short_lived", ping{ember::self(), i}), ember::no_such_name);
      auto next = ember::spawn(echo);
      ember::register_name("short_lived", next);
      REQUIRE(ember::whereis("short_lived") == next);
      ember::send("short_lived", ping{ember::self(), i + 1000});
      REQUIRE(ember::receive([](pong r) { return r.value; }) == i + 1000);
      stop_and_wait(next);
    }
    // A process that crashes releases its name too.
    auto [c, ref] = ember::spawn_monitor([] {
      ember::register_name("crasher", ember::self());
      ember::receive([](go) {});
      throw std::runtime_error("down it goes");
    });
    ember::send(c, go{});  // arrives whether or not it has registered yet
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.reason == ember::exit_reason::error("down it goes"));
    REQUIRE_FALSE(ember::whereis("crasher"));
    ember::register_name("crasher", ember::self());
    REQUIRE(ember::whereis("crasher") == ember::self());
    (void)ref;
  });
}

TEST_CASE("names: send to a name nobody holds throws no_such_name naming it", "[names]") {
  in_process(2, [] {
    try {
      ember::send("nobody_home", 42);
      FAIL("send to an unregistered name did not throw");
    } catch (const ember::no_such_name& e) {
      REQUIRE(e.name() == "nobody_home");
      REQUIRE_THAT(e.what(), Catch::Contains("nobody_home"));
    }
    // Nothing was queued anywhere: the caller's own mailbox is empty.
    REQUIRE(ember::receive([](int) { return true; }, ember::after(0ms, [] { return false; })) == false);
    // no_such_name is an ember::error, so the family catch works.
    REQUIRE_THROWS_AS(ember::send(std::string_view("nobody_home"), 1), ember::error);
  });
}

TEST_CASE("names: unregister_name returns true then false and the process lives on", "[names]") {
  in_process(2, [] {
    auto p = ember::spawn(echo);
    ember::register_name("temp", p);
    REQUIRE(ember::unregister_name("temp"));
    REQUIRE_FALSE(ember::whereis("temp"));
    REQUIRE_FALSE(ember::unregister_name("temp"));
    REQUIRE_FALSE(ember::unregister_name("never_registered"));
    REQUIRE_THROWS_AS(ember::send("temp", ping{ember::self(), 1}), ember::no_such_name);
    REQUIRE(answers(p, 2));  // still alive
    // Without its name the process may take another one, and the old name
    // is free for someone else.
    ember::register_name("renamed", p);
    REQUIRE(ember::whereis("renamed") == p);
    ember::register_name("temp", ember::self());
    REQUIRE(ember::whereis("temp") == ember::self());
    ember::send("renamed", ping{ember::self(), 3});
    REQUIRE(ember::receive([](pong r) { return r.value; }) == 3);
    stop_and_wait(p);
  });
}

TEST_CASE("names: the runtime's name API works from outside any process", "[names]") {
  unsigned workers = GENERATE(1u, 2u);
  ember::runtime rt(opts(workers));
  auto m = rt.spawn_monitor([] {
    int v = ember::receive<int>();
    ember::exit(ember::exit_reason::shutdown("got " + std::to_string(v)));
  });
  rt.register_name("outside", m.pid);
  REQUIRE(rt.whereis("outside") == m.pid);
  CHECK_THROWS_AS(rt.register_name("outside", m.pid), ember::registration_error);
  CHECK_THROWS_AS(rt.register_name("", m.pid), ember::registration_error);

  REQUIRE(rt.unregister_name("outside"));
  CHECK_FALSE(rt.unregister_name("outside"));
  CHECK_FALSE(rt.whereis("outside"));
  CHECK_THROWS_AS(rt.send("outside", 1), ember::no_such_name);

  rt.register_name("outside", m.pid);
  rt.send("outside", 42);
  auto r = m.wait();
  CHECK(r == ember::exit_reason::shutdown("got 42"));
  // The name went with the process (it is released before waiters learn of
  // the exit).
  CHECK_FALSE(rt.whereis("outside"));
  CHECK_THROWS_AS(rt.send("outside", 1), ember::no_such_name);
  CHECK_THROWS_AS(rt.register_name("outside", m.pid), ember::registration_error);
}

TEST_CASE("names: the free functions outside a process throw not_in_process", "[names][misuse]") {
  CHECK_THROWS_AS(ember::register_name("x", ember::pid{}), ember::not_in_process);
  CHECK_THROWS_AS(ember::whereis("x"), ember::not_in_process);
  CHECK_THROWS_AS(ember::unregister_name("x"), ember::not_in_process);
  CHECK_THROWS_AS(ember::send("x", 1), ember::not_in_process);
}

TEST_CASE("names: of processes racing for one name exactly one gets it", "[names]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int rounds = int(scaled(50, 10));
  constexpr int contenders = 8;
  in_process(workers, [&] {
    const auto me = ember::self();
    for (int round = 0; round < rounds; ++round) {
      std::vector<ember::pid> ps;
      for (int i = 0; i < contenders; ++i)
        ps.push_back(ember::spawn([me] {
          ember::receive([](go) {});
          bool won = true;
          try {
            ember::register_name("contested", ember::self());
          } catch (const ember::registration_error&) {
            won = false;
          }
          ember::send(me, claim{ember::self(), won});
          // Stay alive (holding the name, if won) until told.
          ember::receive([](stop) {});
        }));
      for (auto& p : ps) ember::send(p, go{});
      int winners = 0;
      ember::pid winner;
      for (int i = 0; i < contenders; ++i) {
        auto r = ember::receive([](claim c) { return c; });
        if (r.won) {
          ++winners;
          winner = r.who;
        }
      }
      REQUIRE(winners == 1);
      REQUIRE(ember::whereis("contested") == winner);
      // Let them go; wait for the winner so the name is free next round.
      for (auto& p : ps)
        if (p != winner) ember::send(p, stop{});
      auto ref = ember::monitor(winner);
      ember::send(winner, stop{});
      ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
      REQUIRE_FALSE(ember::whereis("contested"));
    }
  });
}
