// supervisor (include/ember/supervisor.hpp), named after OTP's rules: start
// order and failed starts, each strategy, each restart type, the restart
// intensity, shutdown order and times, brutal_kill, child management, the
// restart backoff, nested supervisors, reports and misuse.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/supervision.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;

using namespace ember_test::supervision;

TEST_CASE("supervisor: children start in list order and stop in reverse order, on stop and on the parent's "
          "shutdown",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto s = sup::start_link({}, abc(ember::self()));
    REQUIRE(s);
    REQUIRE(events(3) == strs{"start a", "start b", "start c"});
    const auto kids = sup::which_children(s.server());
    REQUIRE(kids.size() == 3);
    REQUIRE(kids[0].id == "a");
    REQUIRE(kids[2].status == sup::child_status::running);
    gs::stop(s.server(), ember::exit_reason::shutdown());
    REQUIRE(events(3) == strs{"stop:shutdown c", "stop:shutdown b", "stop:shutdown a"});
    REQUIRE(ember::receive([](ember::exit_message m) { return m.from; }) == s.pid());

    // The parent's exit signal (what an application or a parent supervisor sends).
    auto s2 = sup::start_link({}, abc(ember::self()));
    REQUIRE(events(3) == strs{"start a", "start b", "start c"});
    ember::exit(s2.pid(), ember::exit_reason::shutdown());
    REQUIRE(events(3) == strs{"stop:shutdown c", "stop:shutdown b", "stop:shutdown a"});
    auto m = ember::receive([](ember::exit_message m) { return m; });
    REQUIRE(m.from == s2.pid());
    REQUIRE(m.reason == ember::exit_reason::shutdown());
  });
}

TEST_CASE("supervisor: a child whose start fails stops the ones started, in reverse, and the supervisor's start "
          "fails with failed_to_start_child",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto s = sup::start_link({}, {sup::worker<member>("a", me, "a"), sup::worker<member>("b", me, "b"),
                                  sup::worker<broken>("db", 1), sup::worker<member>("c", me, "c")});
    REQUIRE_FALSE(s);
    REQUIRE(s.error().what() == ember::exit_reason::kind::shutdown);
    const auto* f = s.error().value<sup::failed_to_start_child>();
    REQUIRE(f);
    REQUIRE(f->id == "db");
    REQUIRE(f->reason.text() == "no database");
    REQUIRE(events(4) == strs{"start a", "start b", "stop:shutdown b", "stop:shutdown a"});
    // c never started; nothing is left running but this process.
    REQUIRE(ember::receive([](event e) { return e.what; }, ember::after(0ms, [] { return std::string("none"); })) ==
            "none");
  });
}

TEST_CASE("supervisor: a supervisor whose start fails leaves no exit_message in a trapping starter's mailbox",
          "[supervisor]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto s = sup::start_link({}, {sup::worker<member>("a", me, "a", false), sup::worker<broken>("db", 1)});
    REQUIRE_FALSE(s);
    REQUIRE(events(1) == strs{"start a"});
    auto left = ember::receive([](const ember::exit_message& m) { return m.from; },
                               ember::after(0ms, [] { return ember::pid{}; }));
    REQUIRE(left.is_null());
  });
}

TEST_CASE("supervisor: one_for_one restarts only the child that exited", "[supervisor]") {
  in_process(2, [] {
    auto s = sup::start_link({.strategy = sup::one_for_one}, abc(ember::self()));
    REQUIRE(events(3).size() == 3);
    const ember::pid a = pid_of(s.server(), "a"), b = pid_of(s.server(), "b"), c = pid_of(s.server(), "c");
    kill_and_wait(b);
    REQUIRE(events(1) == strs{"start b"});
    REQUIRE(pid_of(s.server(), "a") == a);
    REQUIRE(pid_of(s.server(), "c") == c);
    const ember::pid b2 = pid_of(s.server(), "b");
    REQUIRE_FALSE(b2.is_null());
    REQUIRE(b2 != b);
    REQUIRE(gs::call<member>(b2, whoami{}) == "b");
  });
}

TEST_CASE("supervisor: one_for_all stops the others in reverse order, then starts all in order", "[supervisor]") {
  in_process(2, [] {
    auto s = sup::start_link({.strategy = sup::one_for_all}, abc(ember::self()));
    REQUIRE(events(3).size() == 3);
    const ember::pid a = pid_of(s.server(), "a");
    kill_and_wait(pid_of(s.server(), "b"));
    REQUIRE(events(5) == strs{"stop:shutdown c", "stop:shutdown a", "start a", "start b", "start c"});
    REQUIRE(pid_of(s.server(), "a") != a);
    REQUIRE(sup::count_children(s.server()).active == 3);
  });
}

TEST_CASE("supervisor: rest_for_one restarts the child and those started after it", "[supervisor]") {
  in_process(2, [] {
    auto s = sup::start_link({.strategy = sup::rest_for_one}, abc(ember::self()));
    REQUIRE(events(3).size() == 3);
    const ember::pid a = pid_of(s.server(), "a"), c = pid_of(s.server(), "c");
    kill_and_wait(pid_of(s.server(), "b"));
    REQUIRE(events(3) == strs{"stop:shutdown c", "start b", "start c"});
    REQUIRE(pid_of(s.server(), "a") == a);
    REQUIRE(pid_of(s.server(), "c") != c);
  });
}

TEST_CASE("supervisor: restart types: permanent always, transient only after an abnormal exit, temporary never "
          "(and its spec is removed)",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    std::vector<sup::child_spec> v{sup::worker<member>("p", me, "p"), sup::worker<member>("t", me, "t"),
                                   sup::worker<member>("tmp", me, "tmp")};
    v[1].restart = sup::transient;
    v[2].restart = sup::temporary;
    auto s = sup::start_link({.intensity = 10}, std::move(v));
    REQUIRE(events(3).size() == 3);

    gs::cast<member>(pid_of(s.server(), "p"), quit{ember::exit_reason::normal()});
    REQUIRE(events(2) == strs{"stop:normal p", "start p"});  // permanent: even after normal

    const ember::pid t = pid_of(s.server(), "t");
    gs::cast<member>(t, quit{ember::exit_reason::error("boom")});
    REQUIRE(events(2) == strs{"stop:boom t", "start t"});  // transient, abnormal: restarted
    quit_and_wait(pid_of(s.server(), "t"), ember::exit_reason::shutdown("done"));
    REQUIRE(events(1) == strs{"stop:{shutdown,done} t"});
    // transient after {shutdown, T}: kept, not running
    auto kids = sup::which_children(s.server());
    REQUIRE(kids.size() == 3);
    REQUIRE(kids[1].status == sup::child_status::stopped);
    REQUIRE(kids[1].pid.is_null());

    kill_and_wait(pid_of(s.server(), "tmp"));  // temporary, abnormal: not restarted, spec gone
    kids = sup::which_children(s.server());
    REQUIRE(kids.size() == 2);
    REQUIRE(kids[0].id == "p");
    REQUIRE(kids[1].id == "t");
    const auto n = sup::count_children(s.server());
    REQUIRE(n.specs == 2);
    REQUIRE(n.active == 1);
    REQUIRE(n.workers == 2);
    REQUIRE(n.supervisors == 0);
  });
}

TEST_CASE("supervisor: more than intensity restarts within period stop the supervisor with shutdown after "
          "stopping its children, restarts older than period do not count",
          "[supervisor]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto stage = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([stage] {
    ember::process_flag(ember::trap_exit, true);
    auto s = sup::start_link({.intensity = 1, .period = 5s}, abc(ember::self()));  // OTP's defaults
    REQUIRE(events(3).size() == 3);
    kill_and_wait(pid_of(s.server(), "b"));
    REQUIRE(events(1) == strs{"start b"});  // restart 1 at t=0: allowed
    stage->store(1);
    ember::receive([](go) {});  // the test moves the clock 5.001 s on
    kill_and_wait(pid_of(s.server(), "b"));
    REQUIRE(events(1) == strs{"start b"});  // the first is out of the window
    stage->store(2);
    ember::receive([](go) {});  // the test moves the clock 5 s on: restart 2 still counts
    kill_and_wait(pid_of(s.server(), "a"));
    // Two restarts within 5 s: the supervisor stops its children and exits.
    REQUIRE(events(2) == strs{"stop:shutdown c", "stop:shutdown b"});
    auto m = ember::receive([](ember::exit_message m) { return m; });
    REQUIRE(m.from == s.pid());
    REQUIRE(m.reason == ember::exit_reason::shutdown());
  });
  clock->settle();
  REQUIRE(stage->load() == 1);
  clock->advance(5001ms);
  ember::send(p.pid, go{});
  clock->settle();
  REQUIRE(stage->load() == 2);
  clock->advance(5000ms);
  ember::send(p.pid, go{});
  clock->settle();
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("supervisor: intensity 0 lets no restart happen", "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto s = sup::start_link({.intensity = 0}, abc(ember::self()));
    REQUIRE(events(3).size() == 3);
    kill_and_wait(pid_of(s.server(), "c"));
    REQUIRE(events(2) == strs{"stop:shutdown b", "stop:shutdown a"});
    REQUIRE(ember::receive([](ember::exit_message m) { return m.reason; }) == ember::exit_reason::shutdown());
  });
}

TEST_CASE("supervisor: shutdown waits the child's shutdown time, then kills it, brutal_kill kills at once",
          "[supervisor]") {
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = ember_test::opts(1);
  auto lines = std::make_shared<std::ostringstream>();
  o.logger = std::make_shared<spdlog::logger>("cap", std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines));
  o.clock = clock;
  ember::runtime rt(o);
  auto stage = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([stage] {
    const ember::pid me = ember::self();
    std::vector<sup::child_spec> v{sup::worker<member>("a", me, "a"), sup::worker<stubborn>("slow", me),
                                   sup::worker<member>("brutal", me, "brutal")};
    v[1].shutdown = sup::shutdown_spec::timeout(2000ms);
    v[2].shutdown = sup::shutdown_spec::brutal_kill();
    auto s = sup::start({}, std::move(v));
    REQUIRE(events(3).size() == 3);
    const ember::pid slow = pid_of(s.server(), "slow");
    auto m = ember::monitor(s.pid());
    auto ms = ember::monitor(slow);
    ember::spawn([srv = s.server()] { gs::stop(srv, ember::exit_reason::shutdown()); });
    // brutal: killed without terminate; slow: terminate runs and blocks.
    REQUIRE(events(1) == strs{"terminating stubborn"});
    stage->store(1);
    // After 2000 ms the supervisor kills it, then stops a.
    auto d = ember::receive(ember::when([ms](const ember::down& x) { return x.ref == ms; },
                                        [](ember::down x) { return x.reason; }));
    REQUIRE(d == ember::exit_reason::killed());
    REQUIRE(events(1) == strs{"stop:shutdown a"});
    REQUIRE(ember::receive(ember::when([m](const ember::down& x) { return x.ref == m; },
                                       [](ember::down x) { return x.reason; })) == ember::exit_reason::shutdown());
  });
  clock->settle();
  REQUIRE(stage->load() == 1);
  clock->advance(1999ms);
  clock->settle();
  REQUIRE(rt.process_count() > 1);  // still waiting for slow
  clock->advance(1ms);
  REQUIRE(p.wait().is_normal());
  REQUIRE(lines->str().find("child slow") != std::string::npos);
  REQUIRE(lines->str().find("did not stop within 2000 ms; killed") != std::string::npos);
}

TEST_CASE("supervisor: start_child, terminate_child, restart_child, delete_child and their errors",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto s = sup::start_link({}, {sup::worker<member>("a", me, "a")});
    REQUIRE(events(1).size() == 1);
    const sup::ref r = s.server();

    auto x = sup::start_child(r, sup::worker<member>("x", me, "x"));
    REQUIRE(x);
    REQUIRE(events(1) == strs{"start x"});
    REQUIRE(pid_of(r, "x") == x.pid());
    auto again = sup::start_child(r, sup::worker<member>("x", me, "x"));
    REQUIRE(again.error() == sup::child_error::already_started);
    REQUIRE(again.pid() == x.pid());
    auto bad = sup::start_child(r, sup::worker<broken>("bad", 1));
    REQUIRE(bad.error() == sup::child_error::start_failed);
    REQUIRE(bad.reason().text() == "no database");
    REQUIRE(sup::count_children(r).specs == 2);  // a failed start_child adds nothing

    REQUIRE(sup::delete_child(r, "x").error() == sup::child_error::running);
    REQUIRE(sup::restart_child(r, "x").error() == sup::child_error::running);
    REQUIRE(sup::terminate_child(r, "x"));
    REQUIRE(events(1) == strs{"stop:shutdown x"});
    REQUIRE(sup::which_children(r)[1].status == sup::child_status::stopped);  // kept
    REQUIRE(sup::terminate_child(r, "x"));                                    // not running: fine
    REQUIRE(sup::start_child(r, sup::worker<member>("x", me, "x")).error() == sup::child_error::already_present);
    auto rx = sup::restart_child(r, "x");
    REQUIRE(rx);
    REQUIRE(events(1) == strs{"start x"});
    REQUIRE(pid_of(r, "x") == rx.pid());
    REQUIRE(sup::terminate_child(r, "x"));
    REQUIRE(events(1) == strs{"stop:shutdown x"});
    REQUIRE(sup::delete_child(r, "x"));
    REQUIRE(sup::which_children(r).size() == 1);

    for (auto res : {sup::terminate_child(r, "nope"), sup::restart_child(r, "nope"), sup::delete_child(r, "nope")}) {
      REQUIRE(res.error() == sup::child_error::not_found);
      REQUIRE(res.message() == "no such child");
    }
    // A temporary child's spec goes with terminate_child.
    auto t = sup::worker<member>("t", me, "t");
    t.restart = sup::temporary;
    REQUIRE(sup::start_child(r, t));
    REQUIRE(events(1) == strs{"start t"});
    REQUIRE(sup::terminate_child(r, "t"));
    REQUIRE(events(1) == strs{"stop:shutdown t"});
    REQUIRE(sup::which_children(r).size() == 1);

    // A start function may decline (ignore) or throw.
    sup::child_spec ig{"ig", [] { return sup::started::ignore(); }};
    auto ri = sup::start_child(r, ig);
    REQUIRE(ri);
    REQUIRE(ri.pid().is_null());
    REQUIRE(sup::which_children(r)[1].status == sup::child_status::stopped);
    sup::child_spec th{"th", []() -> sup::started { throw std::runtime_error("bad config"); }};
    auto rt = sup::start_child(r, th);
    REQUIRE(rt.error() == sup::child_error::start_failed);
    REQUIRE(rt.reason().text() == "bad config");
  });
}

TEST_CASE("supervisor: a restart whose start fails is retried at once and counts toward the intensity",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto fails = std::make_shared<std::atomic<int>>(0);
    const ember::pid me = ember::self();
    sup::child_spec flaky{"flaky", [fails, me]() -> sup::started {
                            if (fails->fetch_add(1) == 1) return sup::started::error(ember::exit_reason::error("not yet"));
                            return gs::start_link<member>(me, std::string("flaky"));
                          }};
    auto s = sup::start_link({.intensity = 2}, {flaky});
    REQUIRE(events(1) == strs{"start flaky"});
    kill_and_wait(pid_of(s.server(), "flaky"));  // restart 1 fails, retry (restart 2) works
    REQUIRE(events(1) == strs{"start flaky"});
    REQUIRE(fails->load() == 3);
    kill_and_wait(pid_of(s.server(), "flaky"));  // restart 3 within the period: too many
    REQUIRE(ember::receive([](ember::exit_message m) { return m.reason; }) == ember::exit_reason::shutdown());
  });
}

TEST_CASE("supervisor: restart_backoff delays restarts, doubling up to the cap, and starts over after a long run",
          "[supervisor]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto running = std::make_shared<std::atomic<bool>>(false);
  auto kills = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([running, kills] {
    auto w = sup::worker<member>("w", ember::self(), "w");
    w.backoff = sup::restart_backoff{100ms, 400ms};
    auto s = sup::start_link({.intensity = 100}, {w});
    for (;;) {
      auto e = ember::receive([](event e) { return e; }, [](go) { return event{"go", "", {}}; });
      if (e.what == "start") {
        running->store(true);
      } else if (e.what == "go") {
        if (running->exchange(false)) {
          kill_and_wait(pid_of(s.server(), "w"));
          REQUIRE(sup::which_children(s.server())[0].status == sup::child_status::restarting);
          kills->fetch_add(1);
        } else {
          return;
        }
      }
    }
  });
  auto kill_now = [&] {
    clock->settle();
    REQUIRE(running->load());
    const int k = kills->load();
    ember::send(p.pid, go{});
    clock->settle();
    REQUIRE(kills->load() == k + 1);
    REQUIRE_FALSE(running->load());
  };
  auto expect_restart_after = [&](std::chrono::milliseconds d) {
    clock->advance(d - 1ms);
    REQUIRE_FALSE(running->load());
    clock->advance(1ms);
    REQUIRE(running->load());
  };
  kill_now();
  expect_restart_after(100ms);
  kill_now();
  expect_restart_after(200ms);
  kill_now();
  expect_restart_after(400ms);
  kill_now();
  expect_restart_after(400ms);  // capped
  clock->advance(400ms);        // it ran for the cap: back to initial
  kill_now();
  expect_restart_after(100ms);
  ember::send(p.pid, go{});  // running: the driver kills once more, then the next go ends it
  clock->settle();
  ember::send(p.pid, go{});
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("supervisor: a supervisor child restarts with its own children, stopping the root stops the tree "
          "depth first in reverse order",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto s = sup::start_link({}, {sup::worker<member>("a", me, "a"),
                                  sup::supervisor_child("inner", {}, {sup::worker<member>("i1", me, "i1"),
                                                                      sup::worker<member>("i2", me, "i2")}),
                                  sup::worker<member>("z", me, "z")});
    REQUIRE(s);
    REQUIRE(events(4) == strs{"start a", "start i1", "start i2", "start z"});
    auto kids = sup::which_children(s.server());
    REQUIRE(kids[1].type == sup::child_type::supervisor);
    REQUIRE(sup::count_children(s.server()).supervisors == 1);
    const ember::pid inner = kids[1].pid;
    REQUIRE(sup::which_children(inner).size() == 2);
    kill_and_wait(inner);  // its children die with it (their parent's exit signal)
    // The old children stop while the new inner supervisor starts its own:
    // those two sequences may interleave, each in its order.
    auto ev = events(4);
    const auto at = [&](const std::string& s) { return std::find(ev.begin(), ev.end(), s) - ev.begin(); };
    REQUIRE(at("stop:killed i1") < 4);
    REQUIRE(at("stop:killed i2") < 4);
    REQUIRE(at("start i1") < at("start i2"));
    REQUIRE(at("start i2") < 4);
    ember::process_flag(ember::trap_exit, true);
    gs::stop(s.server(), ember::exit_reason::shutdown());
    REQUIRE(events(4) == strs{"stop:shutdown z", "stop:shutdown i2", "stop:shutdown i1", "stop:shutdown a"});
  });
}

TEST_CASE("supervisor: reports: the child's exit with id, pid, reason and action, the intensity reached",
          "[supervisor]") {
  auto lines = std::make_shared<std::ostringstream>();
  auto o = ember_test::opts(2);
  o.logger = std::make_shared<spdlog::logger>("cap", std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines));
  o.logger->set_level(spdlog::level::debug);
  {
    ember::runtime rt(o);
    auto r = rt.spawn_monitor([] {
                 ember::process_flag(ember::trap_exit, true);
                 auto s = sup::start_link(gs::name{"top"}, {}, abc(ember::self()));
                 REQUIRE(events(3).size() == 3);
                 gs::cast<member>(pid_of("top", "b"), quit{ember::exit_reason::error("disk full")});
                 REQUIRE(events(2) == strs{"stop:disk full b", "start b"});
                 kill_and_wait(pid_of("top", "b"));
                 ember::receive([](ember::exit_message) {});
               }).wait();
    REQUIRE(r.is_normal());
  }
  const std::string log = lines->str();
  INFO(log);
  REQUIRE(log.find("supervisor <") != std::string::npos);
  REQUIRE(log.find("(top): child b (") != std::string::npos);
  REQUIRE(log.find("permanent) exited with reason disk full; action: restart") != std::string::npos);
  REQUIRE(log.find("reached the restart intensity; shutting down") != std::string::npos);
  REQUIRE(log.find("[debug] supervisor") != std::string::npos);
  REQUIRE(log.find("started child a (") != std::string::npos);
}

TEST_CASE("supervisor: misuse: bad flags and specs are bad_argument before anything starts", "[supervisor]") {
  in_process(1, [] {
    const ember::pid me = ember::self();
    auto ok = [&] { return sup::worker<member>("a", me, "a"); };
    REQUIRE_THROWS_AS(sup::start_link({.intensity = -1}, {ok()}), ember::bad_argument);
    REQUIRE_THROWS_AS(sup::start_link({.period = 0ms}, {ok()}), ember::bad_argument);
    REQUIRE_THROWS_WITH(sup::start_link({}, {ok(), ok()}), Catch::Contains("two children have the id \"a\""));
    REQUIRE_THROWS_WITH(sup::start_link({}, {sup::child_spec{"", ok().start}}), Catch::Contains("empty id"));
    REQUIRE_THROWS_WITH(sup::start_link({}, {sup::child_spec{"x", {}}}), Catch::Contains("no start function"));
    auto b = ok();
    b.backoff = sup::restart_backoff{0ms, 10ms};
    REQUIRE_THROWS_AS(sup::start_link({}, {b}), ember::bad_argument);
    REQUIRE_THROWS_AS(sup::shutdown_spec::timeout(-1ms), ember::bad_argument);
    REQUIRE(ember::receive([](event) { return 1; }, ember::after(0ms, [] { return 0; })) == 0);  // none started
    auto s = sup::start_link({}, {});
    REQUIRE(s);
    REQUIRE_THROWS_AS(sup::start_child(s.server(), sup::child_spec{"", ok().start}), ember::bad_argument);
    REQUIRE_THROWS_AS(sup::which_children(ember::pid{}), ember::call_noproc);
  });
  REQUIRE_THROWS_AS(sup::start_link({}, {}), ember::not_in_process);
}

TEST_CASE("supervisor: a supervisor and a dynamic supervisor can be named by a via-name", "[supervisor]") {
  in_process(2, [] {
    ember::registry<std::string> reg(ember::registry_keys::unique);
    auto s = sup::start_link(ember::via(reg, "top"), {}, {sup::worker<member>("a", ember::self(), "a")});
    REQUIRE(s);
    REQUIRE(reg.whereis("top") == s.pid());
    REQUIRE(sup::which_children(ember::via(reg, "top")).size() == 1);
    auto again = sup::start_link(ember::via(reg, "top"), {}, {});
    REQUIRE(again.already_started());
    REQUIRE(again.pid() == s.pid());
    auto d = ember::dynamic_supervisor::start_link(ember::via(reg, "dyn"));
    REQUIRE(d);
    REQUIRE(ember::dynamic_supervisor::count_children(ember::via(reg, "dyn")).specs == 0);
    REQUIRE_THROWS_AS(sup::start_link(gs::name{""}, {}, {}), ember::bad_argument);
  });
}
