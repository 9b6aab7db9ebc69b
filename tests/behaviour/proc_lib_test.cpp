// proc_lib (include/ember/proc_lib.hpp): OTP's start handshake for plain
// processes — the starter waits for init_ack, init_fail and early exits
// fail the start and leave no trace, a timeout kills the process, and a
// supervisor's shutdown right after the start finds the child set up.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>

#include "support/supervision.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using namespace ember_test::supervision;
namespace pl = ember::proc_lib;

namespace {
/// No exit_message is waiting in the caller's mailbox.
bool no_exit_message() {
  return ember::receive([](const ember::exit_message&) { return false; }, ember::after(0ms, [] { return true; }));
}
}  // namespace

TEST_CASE("proc_lib: start_link returns once the child has called init_ack, linked to the caller — start does "
          "not link",
          "[proc_lib]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto r = pl::start_link([me](pl::starter& s) {
      REQUIRE(s.parent() == me);
      ember::process_flag(ember::trap_exit, true);
      ember::register_name("ready_one", ember::self());
      s.init_ack();
      ember::receive<go>();
    });
    REQUIRE(r);
    // Everything the child did before init_ack is done.
    REQUIRE(ember::whereis("ready_one") == r.pid());
    REQUIRE(ember::process_info(r.pid())->trap_exit);
    REQUIRE(ember::process_info(r.pid())->links == std::vector<ember::pid>{me});
    ember::send(r.pid(), go{});
    REQUIRE(ember::receive([](ember::exit_message m) { return m; }).from == r.pid());

    auto u = pl::start([](pl::starter& s) {
      s.init_ack();
      ember::receive<go>();
    });
    REQUIRE(u);
    REQUIRE(ember::process_info(u.pid())->links.empty());
    ember::send(u.pid(), go{});
  });
}

TEST_CASE("proc_lib: init_fail, returning or crashing before init_ack fail the start with the reason, after the "
          "child has exited, leaving no exit_message",
          "[proc_lib]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    auto failed = pl::start_link([](pl::starter& s) { s.init_fail(ember::exit_reason::error("port in use")); });
    REQUIRE_FALSE(failed);
    REQUIRE(failed.error() == ember::exit_reason::error("port in use"));
    REQUIRE_FALSE(ember::process_info(failed.pid()));  // gone already
    REQUIRE(no_exit_message());

    auto returned = pl::start_link([](pl::starter&) {});
    REQUIRE_FALSE(returned);
    REQUIRE(returned.error().is_normal());
    REQUIRE(no_exit_message());

    auto threw = pl::start_link([](pl::starter&) { throw std::runtime_error("no config"); });
    REQUIRE_FALSE(threw);
    REQUIRE(threw.error() == ember::exit_reason::error("no config"));
    REQUIRE(no_exit_message());
  });
  // A starter that does not trap exits is not killed by init_fail (the
  // child ends normally).
  in_process(2, [] {
    auto failed = pl::start_link([](pl::starter& s) { s.init_fail(ember::exit_reason::error("nope")); });
    REQUIRE_FALSE(failed);
    REQUIRE(failed.error() == ember::exit_reason::error("nope"));
  });
}

TEST_CASE("proc_lib: a child that does not answer within the timeout is killed and the start fails with "
          "timeout",
          "[proc_lib]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto p = rt.spawn_monitor([] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto r = pl::start_link([me](pl::starter&) {
                               ember::send(me, event{"waiting", "", ember::self()});
                               ember::receive<go>();
                             },
                             pl::options{.timeout = 5s});
    REQUIRE_FALSE(r);
    REQUIRE(r.error() == ember::exit_reason::error("timeout"));
    REQUIRE_FALSE(ember::process_info(r.pid()));
    REQUIRE(no_exit_message());
    REQUIRE(ember::receive([](event e) { return e.what; }) == "waiting");
  });
  clock->advance(4999ms);
  clock->advance(1ms);
  auto r = p.wait();
  INFO(r);
  REQUIRE(r.is_normal());
}

TEST_CASE("proc_lib: a negative timeout is bad_argument before anything starts, and max() is no timeout (not an overflow into one that has run out)",
          "[proc_lib][duration]") {
  in_process(2, [] {
    auto started = std::make_shared<std::atomic<int>>(0);
    auto run = [started](pl::starter& s) {
      started->fetch_add(1);
      s.init_ack();
      ember::receive<go>();
    };
    REQUIRE_THROWS_AS(pl::start_link(run, pl::options{.timeout = -5ms}), ember::bad_argument);
    REQUIRE_THROWS_AS(pl::start(run, pl::options{.timeout = std::chrono::duration<double>(std::nan(""))}),
                      ember::bad_argument);
    REQUIRE(started->load() == 0);
    auto r = pl::start_link(run, pl::options{.timeout = std::chrono::milliseconds::max()});
    REQUIRE(r);
    auto q = pl::start_link(run, pl::options{.timeout = std::chrono::hours::max()});
    REQUIRE(q);
    REQUIRE(started->load() == 2);
    ember::send(r.pid(), go{});
    ember::send(q.pid(), go{});
  });
}

TEST_CASE("proc_lib: a second init_ack or init_fail is bad_argument — start outside a process is not_in_process",
          "[proc_lib][misuse]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto r = pl::start_link([me](pl::starter& s) {
      s.init_ack();
      bool twice = false, fail_after = false;
      try {
        s.init_ack();
      } catch (const ember::bad_argument&) {
        twice = true;
      }
      try {
        s.init_fail(ember::exit_reason::error("late"));
      } catch (const ember::bad_argument&) {
        fail_after = true;
      }
      ember::send(me, std::pair<bool, bool>(twice, fail_after));
    });
    REQUIRE(r);
    REQUIRE(ember::receive([](std::pair<bool, bool> p) { return p; }) == std::pair<bool, bool>(true, true));
  });
  REQUIRE_THROWS_AS(pl::start_link([](pl::starter& s) { s.init_ack(); }), ember::not_in_process);
}

TEST_CASE("proc_lib: a supervisor child started with the handshake has set itself up before a shutdown can "
          "reach it — a plain spawn_link child may be killed before it runs",
          "[proc_lib][supervisor]") {
  // One worker: a child spawned by the supervisor has not run when the
  // supervisor's start returns, unless the start waited for it.
  in_process(1, [] {
    const ember::pid me = ember::self();
    auto trapping_body = [me] {
      ember::process_flag(ember::trap_exit, true);
      ember::receive([&](ember::exit_message m) { ember::send(me, event{"cleanup:" + m.reason.to_string(), "", {}}); });
    };
    sup::child_spec handshake{"handshake", [me] {
                                return sup::started(pl::start_link([me](pl::starter& s) {
                                  ember::process_flag(ember::trap_exit, true);
                                  s.init_ack();
                                  ember::receive([&](ember::exit_message m) {
                                    ember::send(me, event{"cleanup:" + m.reason.to_string(), "handshake", {}});
                                  });
                                }));
                              }};
    auto s = sup::start({}, {handshake});
    REQUIRE(s);
    gs::stop(s.server(), ember::exit_reason::shutdown());  // at once
    REQUIRE(events(1) == strs{"cleanup:shutdown handshake"});

    // Without the handshake the same shutdown finds the child not yet set
    // up: it is stopped before it runs, and its cleanup never happens.
    sup::child_spec plain{"plain", [trapping_body] { return sup::started(ember::spawn_link(trapping_body)); }};
    auto s2 = sup::start({}, {plain});
    REQUIRE(s2);
    gs::stop(s2.server(), ember::exit_reason::shutdown());
    REQUIRE(ember::receive([](event e) { return e.what; }, ember::after(0ms, [] { return std::string("none"); })) ==
            "none");
  });
}
