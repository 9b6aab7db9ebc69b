// supervisor and dynamic_supervisor conformance (include/ember/supervisor.hpp,
// dynamic_supervisor.hpp): the cases an OTP or Elixir user hits beyond the
// basic rules — ignore from temporary children, start functions that exit,
// taken names, children waiting to restart, exit signals ahead of queued
// calls, start functions returning the wrong pid, and restart windows that
// would overflow.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/supervision.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using namespace ember_test::supervision;
namespace dyn = ember::dynamic_supervisor;

TEST_CASE("supervisor: a temporary child whose start returns ignore is not kept — other restart types keep it "
          "as stopped",
          "[supervisor]") {
  in_process(2, [] {
    auto ignoring = [](std::string id, sup::restart_type t) {
      sup::child_spec c{std::move(id), [] { return sup::started::ignore(); }};
      c.restart = t;
      return c;
    };
    // At the supervisor's start ...
    auto s = sup::start_link({}, {ignoring("perm", sup::permanent), ignoring("temp", sup::temporary),
                                  ignoring("trans", sup::transient)});
    REQUIRE(s);
    auto kids = sup::which_children(s.server());
    REQUIRE(kids.size() == 2);
    REQUIRE(kids[0].id == "perm");
    REQUIRE(kids[0].status == sup::child_status::stopped);
    REQUIRE(kids[1].id == "trans");
    auto n = sup::count_children(s.server());
    REQUIRE(n.specs == 2);
    REQUIRE(n.workers == 2);
    // ... and through start_child.
    auto r = sup::start_child(s.server(), ignoring("temp2", sup::temporary));
    REQUIRE(r);
    REQUIRE(r.pid().is_null());
    REQUIRE(sup::count_children(s.server()).specs == 2);
    REQUIRE(sup::restart_child(s.server(), "temp2").error() == sup::child_error::not_found);
    // The id is free again.
    REQUIRE(sup::start_child(s.server(), ignoring("temp2", sup::permanent)));
    REQUIRE(sup::count_children(s.server()).specs == 3);
  });
}

TEST_CASE("supervisor: a start function that exits or throws fails that start with its reason — the supervisor "
          "lives on",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto exits = [](std::string id) {
      return sup::child_spec{std::move(id), []() -> sup::started { ember::exit(ember::exit_reason::error("nope")); }};
    };
    auto throws = [](std::string id) {
      return sup::child_spec{std::move(id), []() -> sup::started { throw std::runtime_error("bad config"); }};
    };
    // At the supervisor's start: failed_to_start_child with the reason.
    auto s0 = sup::start_link({}, {exits("x")});
    REQUIRE_FALSE(s0);
    const auto* f = s0.error().value<sup::failed_to_start_child>();
    REQUIRE(f);
    REQUIRE(f->id == "x");
    REQUIRE(f->reason == ember::exit_reason::error("nope"));

    // In start_child, static and dynamic.
    auto s = sup::start_link({}, {});
    REQUIRE(s);
    auto r = sup::start_child(s.server(), exits("x"));
    REQUIRE(r.error() == sup::child_error::start_failed);
    REQUIRE(r.reason() == ember::exit_reason::error("nope"));
    REQUIRE(sup::start_child(s.server(), throws("y")).reason().text() == "bad config");
    REQUIRE(sup::count_children(s.server()).specs == 0);
    auto d = dyn::start_link();
    auto dr = dyn::start_child(d.server(), exits(""));
    REQUIRE(dr.error() == sup::child_error::start_failed);
    REQUIRE(dr.reason() == ember::exit_reason::error("nope"));
    REQUIRE(dyn::count_children(d.server()).specs == 0);

    // In a restart: a start function that exits is a failed restart (retried,
    // counted toward the intensity), not the supervisor's end.
    auto calls = std::make_shared<std::atomic<int>>(0);
    const ember::pid me = ember::self();
    sup::child_spec flaky{"flaky", [calls, me]() -> sup::started {
                            if (calls->fetch_add(1) == 1) ember::exit(ember::exit_reason::error("not yet"));
                            return gs::start_link<member>(me, std::string("flaky"));
                          }};
    auto s2 = sup::start_link({.intensity = 5}, {flaky});
    REQUIRE(events(1) == strs{"start flaky"});
    kill_and_wait(pid_of(s2.server(), "flaky"));
    REQUIRE(events(1) == strs{"start flaky"});
    REQUIRE(calls->load() == 3);
    auto dflaky = flaky;
    calls->store(0);
    auto dc = dyn::start_child(d.server(), dflaky);
    REQUIRE(dc);
    REQUIRE(events(1) == strs{"start flaky"});
    kill_and_wait(dc.pid());
    REQUIRE(events(1) == strs{"start flaky"});
    REQUIRE(calls->load() == 3);

    // Both supervisors are alive and answer.
    REQUIRE(sup::which_children(s.server()).empty());
    REQUIRE(sup::count_children(s2.server()).active == 1);
    REQUIRE(dyn::count_children(d.server()).active == 1);
    REQUIRE(ember::receive([](const ember::exit_message& m) { return m.from; },
                           ember::after(0ms, [] { return ember::pid{}; }))
                .is_null());
  });
}

TEST_CASE("supervisor: a child whose name is taken by another process gives already_started with the holder's "
          "pid (static and dynamic supervisors)",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto holder = gs::start<member>(gs::name{"db"}, me, std::string("holder"), false);
    REQUIRE(holder);
    REQUIRE(events(1) == strs{"start holder"});
    auto named = [me] { return sup::worker<member>("db", gs::name{"db"}, me, std::string("db"), false); };

    auto s = sup::start_link({}, {});
    auto r = sup::start_child(s.server(), named());
    REQUIRE(r.error() == sup::child_error::already_started);
    REQUIRE(r.pid() == holder.pid());
    REQUIRE(r.message() == fmt::format("the child's name is taken by {}", holder.pid()));
    REQUIRE(sup::count_children(s.server()).specs == 0);  // nothing added

    auto d = dyn::start_link();
    auto dr = dyn::start_child(d.server(), named());
    REQUIRE(dr.error() == sup::child_error::already_started);
    REQUIRE(dr.pid() == holder.pid());
    REQUIRE(dyn::count_children(d.server()).specs == 0);

    // restart_child of a stopped child whose name is now taken: the same.
    gs::stop(holder.server());
    REQUIRE(sup::start_child(s.server(), named()));
    REQUIRE(events(2) == strs{"stop:normal holder", "start db"});
    REQUIRE(sup::terminate_child(s.server(), "db"));
    auto holder2 = gs::start<member>(gs::name{"db"}, me, std::string("holder2"), false);
    REQUIRE(events(1) == strs{"start holder2"});
    auto rr = sup::restart_child(s.server(), "db");
    REQUIRE(rr.error() == sup::child_error::already_started);
    REQUIRE(rr.pid() == holder2.pid());
  });
}

TEST_CASE("supervisor: a period so long that the restart window would overflow still applies the intensity "
          "(static and dynamic)",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    using years = std::chrono::duration<std::int64_t, std::ratio<31556952>>;
    for (std::chrono::milliseconds period :
         {std::chrono::milliseconds::max(), std::chrono::duration_cast<std::chrono::milliseconds>(years(1000))}) {
      auto s = sup::start_link({.intensity = 1, .period = period}, {sup::worker<member>("a", me, "a", false)});
      REQUIRE(events(1) == strs{"start a"});
      kill_and_wait(pid_of(s.server(), "a"));  // restart 1: allowed
      REQUIRE(events(1) == strs{"start a"});
      kill_and_wait(pid_of(s.server(), "a"));  // restart 2 within the period: too many
      auto m = ember::receive([](ember::exit_message m) { return m; });
      REQUIRE(m.from == s.pid());
      REQUIRE(m.reason == ember::exit_reason::shutdown());

      auto d = dyn::start_link({.intensity = 1, .period = period});
      auto c = dyn::start_child(d.server(), sup::worker<member>("", me, "d", false));
      REQUIRE(events(1) == strs{"start d"});
      kill_and_wait(c.pid());
      REQUIRE(events(1) == strs{"start d"});
      kill_and_wait(dyn::which_children(d.server()).at(0).pid);
      auto dm = ember::receive([](ember::exit_message m) { return m; });
      REQUIRE(dm.from == d.pid());
      REQUIRE(dm.reason == ember::exit_reason::shutdown());
    }
    // A shutdown time of centuries is a long wait, not a negative one.
    auto s = sup::start_link({}, {sup::worker<member>("a", me, "a", true)});
    REQUIRE(events(1) == strs{"start a"});
    sup::child_spec slow = sup::worker<member>("slow", me, "slow", true);
    slow.shutdown = sup::shutdown_spec::timeout(std::chrono::milliseconds::max());
    REQUIRE(sup::start_child(s.server(), slow));
    REQUIRE(events(1) == strs{"start slow"});
    REQUIRE(sup::terminate_child(s.server(), "slow"));
    REQUIRE(events(1) == strs{"stop:shutdown slow"});
    // A backoff beyond the longest timer is refused up front.
    sup::child_spec b = sup::worker<member>("b", me, "b");
    b.backoff = sup::restart_backoff{1ms, ember::max_timer_delay + 1ms};
    REQUIRE_THROWS_AS(sup::start_child(s.server(), b), ember::bad_argument);
    gs::stop(s.server());
  });
}

TEST_CASE("supervisor: a child waiting to be restarted answers restarting to restart_child and delete_child — "
          "terminate_child cancels its restart (static) or removes it (dynamic)",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    // A backoff of an hour keeps the child waiting for the whole test.
    auto w = sup::worker<member>("w", me, "w", false);
    w.backoff = sup::restart_backoff{std::chrono::hours(1), std::chrono::hours(2)};
    auto s = sup::start_link({.intensity = 10}, {w});
    REQUIRE(events(1) == strs{"start w"});
    kill_and_wait(pid_of(s.server(), "w"));
    auto kids = sup::which_children(s.server());
    REQUIRE(kids.at(0).status == sup::child_status::restarting);
    REQUIRE(kids.at(0).pid.is_null());
    auto r = sup::restart_child(s.server(), "w");
    REQUIRE(r.error() == sup::child_error::restarting);
    REQUIRE(r.message() == "the child is waiting to be restarted");
    REQUIRE(sup::delete_child(s.server(), "w").error() == sup::child_error::restarting);
    REQUIRE(sup::count_children(s.server()).specs == 1);  // still there
    REQUIRE(sup::terminate_child(s.server(), "w"));       // the restart is cancelled
    REQUIRE(sup::which_children(s.server()).at(0).status == sup::child_status::stopped);
    auto again = sup::restart_child(s.server(), "w");
    REQUIRE(again);
    REQUIRE(events(1) == strs{"start w"});
    REQUIRE(pid_of(s.server(), "w") == again.pid());

    // Dynamic: terminate_child with the pid that exited removes the child.
    auto d = dyn::start_link({.intensity = 10});
    auto dw = w;
    dw.id = "dw";
    auto c = dyn::start_child(d.server(), dw);
    REQUIRE(c);
    REQUIRE(events(1) == strs{"start w"});
    kill_and_wait(c.pid());
    REQUIRE(dyn::which_children(d.server()).at(0).status == sup::child_status::restarting);
    REQUIRE(dyn::terminate_child(d.server(), c.pid()));
    REQUIRE(dyn::count_children(d.server()).specs == 0);
    REQUIRE(dyn::terminate_child(d.server(), c.pid()).error() == sup::child_error::not_found);
  });
}

TEST_CASE("supervisor: a start function that returns the supervisor's own pid, another child's pid or a process "
          "not linked to the supervisor fails that start with a clear error",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto s = sup::start_link({.intensity = 10}, {sup::worker<member>("a", me, "a", false)});
    REQUIRE(events(1) == strs{"start a"});
    const ember::pid a = pid_of(s.server(), "a");
    auto loose = std::make_shared<ember::pid>();
    auto bad = [&](std::string id) -> std::vector<sup::child_spec> {
      return {sup::child_spec{id + "-self", [] { return sup::started(ember::self()); }},
              sup::child_spec{id + "-other", [a] { return sup::started(a); }},
              sup::child_spec{id + "-loose", [loose] {
                                *loose = ember::spawn([] { ember::receive<go>(); });
                                return sup::started(*loose);
                              }}};
    };
    const std::vector<std::string> why{"the start function returned the supervisor's own pid",
                                       fmt::format("the start function returned {}, which is child a", a),
                                       "a process not linked to the supervisor"};
    auto specs = bad("s");
    for (std::size_t i = 0; i < specs.size(); ++i) {
      auto r = sup::start_child(s.server(), specs[i]);
      INFO(r.message());
      REQUIRE(r.error() == sup::child_error::start_failed);
      REQUIRE(r.reason().text().find(why[i]) != std::string::npos);
    }
    ember::send(*loose, go{});
    REQUIRE(sup::count_children(s.server()).specs == 1);
    // A linked child that is gone before the supervisor looks is fine: its
    // exit signal is in the supervisor's mailbox and is handled as usual.
    sup::child_spec quick{"quick", [] { return sup::started(ember::spawn_link([] {})); }};
    quick.restart = sup::temporary;
    REQUIRE(sup::start_child(s.server(), quick));

    // The dynamic supervisor refuses the same (another child's pid is
    // checked there too).
    auto d = dyn::start_link();
    auto dc = dyn::start_child(d.server(), sup::worker<member>("", me, "d", false));
    REQUIRE(events(1) == strs{"start d"});
    const ember::pid dpid = dc.pid();
    std::vector<sup::child_spec> dspecs{sup::child_spec{"", [] { return sup::started(ember::self()); }},
                                       sup::child_spec{"", [dpid] { return sup::started(dpid); }},
                                       bad("d")[2]};
    for (auto& spec : dspecs) {
      auto r = dyn::start_child(d.server(), spec);
      INFO(r.message());
      REQUIRE(r.error() == sup::child_error::start_failed);
    }
    ember::send(*loose, go{});
    REQUIRE(dyn::count_children(d.server()).specs == 1);
    // Both supervisors go on supervising: a, d still restart.
    kill_and_wait(a);
    REQUIRE(events(1) == strs{"start a"});
    kill_and_wait(dpid);
    REQUIRE(events(1) == strs{"start d"});
  });
}

TEST_CASE("supervisor: an exit signal is handled before calls queued ahead of it: once a child's down is seen, "
          "which_children no longer reports that pid running",
          "[supervisor]") {
  // One worker: the order of events is exactly the one written here.
  in_process(1, [] {
    const ember::pid me = ember::self();
    auto s = sup::start_link({.intensity = 10}, {sup::worker<member>("c", me, "c", false)});
    REQUIRE(events(1) == strs{"start c"});
    const ember::pid c0 = pid_of(s.server(), "c");
    const sup::ref sr = s.server();
    // 1. Hold the supervisor inside a call: a start function that waits.
    sup::child_spec hold{"hold", [me] {
                           ember::send(me, event{"holding", "hold", ember::self()});
                           ember::receive<go>();
                           return sup::started::ignore();
                         }};
    hold.restart = sup::temporary;
    ember::spawn([sr, hold] { sup::start_child(sr, hold); });
    REQUIRE(events(1) == strs{"holding hold"});
    // 2. A which_children call queues behind it (the caller runs until it
    //    waits for the answer, then this process runs again).
    ember::spawn([sr, me] {
      ember::send(me, event{"asking", "", {}});
      ember::send(me, sup::which_children(sr));
    });
    REQUIRE(events(1) == strs{"asking "});
    // 3. The child dies; its exit signal queues behind the call (a link is
    //    told before a monitor: once our down is in, so is its signal).
    kill_and_wait(c0);
    // 4. Let the supervisor go on.
    ember::send(s.pid(), go{});
    auto kids = ember::receive([](std::vector<sup::child_info> v) { return v; });
    REQUIRE(kids.size() == 1);
    REQUIRE(kids[0].id == "c");
    REQUIRE(kids[0].pid != c0);  // OTP's order would have answered with c0, dead
    REQUIRE(kids[0].status == sup::child_status::running);
    REQUIRE(events(1) == strs{"start c"});
  });
}
