// The supervisor API an OTP user reaches for (include/ember/supervisor.hpp,
// child_spec.hpp): an init callback (and ignore), which_child,
// get_childspec, check_childspecs, auto_shutdown with significant children,
// a server type's own child defaults, and spec errors that name the field.
#include <catch2/catch.hpp>

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

namespace {

/// A server that declares its defaults as a child (Elixir's
/// `use GenServer, restart: :temporary, shutdown: :brutal_kill`).
struct scratch : gs::behaviour<scratch> {
  static constexpr sup::child_defaults child_defaults{.restart = sup::temporary,
                                                      .shutdown = sup::shutdown_spec::brutal_kill()};
  ember::pid obs;
  explicit scratch(ember::pid o) : obs(o) {}
  void init() { ember::send(obs, event{"start", "scratch", ember::self()}); }
  int handle_call(whoami) { return 1; }
};

/// A server whose init declines to start.
struct declines : gs::behaviour<declines> {
  next init() { return ignore(); }
  int handle_call(whoami) { return 0; }
};

sup::child_spec significant(sup::child_spec c, sup::restart_type t) {
  c.restart = t;
  c.significant = true;
  return c;
}

ember::exit_message next_exit() {
  return ember::receive([](ember::exit_message m) { return m; },
                        ember::after(10s, [] { return ember::exit_message{{}, ember::exit_reason::error("none")}; }));
}

bool no_exit_message() {
  return ember::receive([](const ember::exit_message&) { return false; }, ember::after(0ms, [] { return true; }));
}

}  // namespace

TEST_CASE("supervisor: an init callback computes the flags and children in the supervisor's process — ignore "
          "starts nothing",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto where = std::make_shared<ember::pid>();
    auto s = sup::start_link([me, where]() -> sup::init_result {
      *where = ember::self();
      return {{.strategy = sup::one_for_all, .intensity = 3}, abc(me)};
    });
    REQUIRE(s);
    REQUIRE(*where == s.pid());  // init ran in the supervisor
    REQUIRE(events(3) == strs{"start a", "start b", "start c"});
    kill_and_wait(pid_of(s.server(), "b"));  // one_for_all, from init's flags
    REQUIRE(events(5) == strs{"stop:shutdown c", "stop:shutdown a", "start a", "start b", "start c"});

    // ignore: start returns ignored(), nothing runs, nothing is left behind.
    auto i = sup::start_link([] { return sup::init_result::ignore(); });
    REQUIRE_FALSE(i);
    REQUIRE(i.ignored());
    REQUIRE(i.pid().is_null());
    REQUIRE(no_exit_message());
    // ... and a gen_server's init may return ignore() too.
    auto g = gs::start_link<declines>();
    REQUIRE_FALSE(g);
    REQUIRE(g.ignored());
    REQUIRE(no_exit_message());

    // As a child, an ignoring supervisor is an ignored child (kept as
    // stopped unless temporary, as OTP).
    auto parent = sup::start_link({}, {sup::supervisor_child("ignoring", [] { return sup::init_result::ignore(); }),
                                       sup::worker<declines>("declines")});
    REQUIRE(parent);
    auto kids = sup::which_children(parent.server());
    REQUIRE(kids.size() == 2);
    REQUIRE(kids[0].status == sup::child_status::stopped);
    REQUIRE(kids[0].type == sup::child_type::supervisor);
    REQUIRE(kids[1].status == sup::child_status::stopped);

    // An init that throws, or returns a bad spec, fails the start with
    // the error's text.
    auto t = sup::start_link([]() -> sup::init_result { throw std::runtime_error("no config"); });
    REQUIRE_FALSE(t);
    REQUIRE(t.error().text() == "no config");
    auto b = sup::start_link([]() -> sup::init_result { return {{.intensity = -1}, {}}; });
    REQUIRE_FALSE(b);
    REQUIRE(b.error().text() == "ember::supervisor: intensity must be >= 0 (got -1)");
    REQUIRE(no_exit_message());
    gs::stop(s.server());
  });
}

TEST_CASE("supervisor: which_child and get_childspec find one child by id", "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto specs = abc(me, sup::transient);
    specs[1].shutdown = sup::shutdown_spec::timeout(1234ms);
    auto s = sup::start_link({}, specs);
    REQUIRE(events(3).size() == 3);
    auto b = sup::which_child(s.server(), "b");
    REQUIRE(b);
    REQUIRE(b->id == "b");
    REQUIRE(b->pid == pid_of(s.server(), "b"));
    REQUIRE(b->status == sup::child_status::running);
    REQUIRE_FALSE(sup::which_child(s.server(), "nope"));

    auto spec = sup::get_childspec(s.server(), "b");
    REQUIRE(spec);
    REQUIRE(spec->id == "b");
    REQUIRE(spec->restart == sup::transient);
    REQUIRE(spec->shutdown == sup::shutdown_spec::timeout(1234ms));
    REQUIRE(spec->type == sup::child_type::worker);
    REQUIRE_FALSE(sup::get_childspec(s.server(), "nope"));
    // The spec is the one the supervisor holds: it can start the child
    // again elsewhere.
    auto s2 = sup::start_link({}, {*spec});
    REQUIRE(events(1) == strs{"start b"});
    gs::stop(s.server());
    gs::stop(s2.server());
  });
}

TEST_CASE("supervisor: check_childspecs and every validation say which field was wrong, as data",
          "[supervisor][misuse]") {
  in_process(1, [] {
    auto ok = [] { return sup::child_spec{"ok", [] { return sup::started::ignore(); }}; };
    auto field_of = [](const std::vector<sup::child_spec>& v, sup::auto_shutdown a = sup::never) {
      auto e = sup::check_childspecs(v, a);
      REQUIRE(e);
      return std::pair(e->field(), e->child_id());
    };
    REQUIRE_FALSE(sup::check_childspecs({ok()}));
    auto no_id = ok();
    no_id.id.clear();
    REQUIRE(field_of({no_id}) == std::pair(sup::spec_field::id, std::string()));
    REQUIRE(field_of({ok(), ok()}) == std::pair(sup::spec_field::id, std::string("ok")));
    auto no_start = ok();
    no_start.start = nullptr;
    REQUIRE(field_of({no_start}) == std::pair(sup::spec_field::start, std::string("ok")));
    auto bad_backoff = ok();
    bad_backoff.backoff = sup::restart_backoff{0ms, 1ms};
    REQUIRE(field_of({bad_backoff}) == std::pair(sup::spec_field::backoff, std::string("ok")));
    auto bad_restart = ok();
    bad_restart.restart = sup::restart_type(7);
    REQUIRE(field_of({bad_restart}) == std::pair(sup::spec_field::restart, std::string("ok")));
    auto bad_type = ok();
    bad_type.type = sup::child_type(7);
    REQUIRE(field_of({bad_type}) == std::pair(sup::spec_field::type, std::string("ok")));
    // Significant children: transient or temporary, under an auto_shutdown.
    auto sig = significant(ok(), sup::transient);
    REQUIRE(field_of({sig}) == std::pair(sup::spec_field::significant, std::string("ok")));
    REQUIRE_FALSE(sup::check_childspecs({sig}, sup::any_significant));
    REQUIRE(field_of({significant(ok(), sup::permanent)}, sup::any_significant) ==
            std::pair(sup::spec_field::significant, std::string("ok")));
    REQUIRE(std::string(sup::to_string(sup::spec_field::significant)) == "significant");

    // start_link and start_child throw the same, as spec_error (a
    // bad_argument), naming the field.
    try {
      (void)sup::start_link({.intensity = -1}, {});
      FAIL("no spec_error");
    } catch (const sup::spec_error& e) {
      REQUIRE(e.field() == sup::spec_field::intensity);
      REQUIRE(e.child_id().empty());
    }
    try {
      (void)sup::start_link({.period = 0ms}, {});
      FAIL("no spec_error");
    } catch (const sup::spec_error& e) {
      REQUIRE(e.field() == sup::spec_field::period);
    }
    REQUIRE_THROWS_AS(sup::start_link({}, {no_start}), ember::bad_argument);
    auto s = sup::start_link({}, {});
    try {
      (void)sup::start_child(s.server(), sig);  // this supervisor's auto_shutdown is never
      FAIL("no spec_error");
    } catch (const sup::spec_error& e) {
      REQUIRE(e.field() == sup::spec_field::significant);
      REQUIRE(e.child_id() == "ok");
    }
    REQUIRE(sup::count_children(s.server()).specs == 0);
    auto d = dyn::start_link();
    try {
      (void)dyn::start_child(d.server(), sig);  // dynamic supervisors have no auto_shutdown
      FAIL("no spec_error");
    } catch (const sup::spec_error& e) {
      REQUIRE(e.field() == sup::spec_field::significant);
    }
    try {
      (void)dyn::start_link({.intensity = -2});
      FAIL("no spec_error");
    } catch (const sup::spec_error& e) {
      REQUIRE(e.field() == sup::spec_field::intensity);
    }
    gs::stop(s.server());
    gs::stop(d.server());
  });
}

TEST_CASE("supervisor: auto_shutdown any_significant stops the supervisor when a significant child exits by "
          "itself and is not restarted",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto make = [me](sup::restart_type t) {
      return sup::start_link({.intensity = 5, .auto_shutdown = sup::any_significant},
                             {sup::worker<member>("plain", me, "plain"),
                              significant(sup::worker<member>("sig", me, "sig"), t)});
    };
    // transient: an abnormal exit restarts it (no shutdown) ...
    auto s = make(sup::transient);
    REQUIRE(events(2) == strs{"start plain", "start sig"});
    kill_and_wait(pid_of(s.server(), "sig"));
    REQUIRE(events(1) == strs{"start sig"});
    // ... a normal exit ends the supervisor, which stops its other children.
    quit_and_wait(pid_of(s.server(), "sig"), ember::exit_reason::normal());
    REQUIRE(events(2) == strs{"stop:normal sig", "stop:shutdown plain"});
    auto m = next_exit();
    REQUIRE(m.from == s.pid());
    REQUIRE(m.reason == ember::exit_reason::shutdown());

    // temporary: any exit of its own ends it.
    auto t = make(sup::temporary);
    REQUIRE(events(2) == strs{"start plain", "start sig"});
    kill_and_wait(pid_of(t.server(), "sig"));
    REQUIRE(events(1) == strs{"stop:shutdown plain"});
    REQUIRE(next_exit().from == t.pid());

    // An exit the supervisor causes does not count: terminate_child.
    auto u = make(sup::temporary);
    REQUIRE(events(2) == strs{"start plain", "start sig"});
    REQUIRE(sup::terminate_child(u.server(), "sig"));
    REQUIRE(events(1) == strs{"stop:shutdown sig"});
    // A non-significant child's exit does not count either.
    REQUIRE(sup::terminate_child(u.server(), "plain"));
    REQUIRE(events(1) == strs{"stop:shutdown plain"});
    REQUIRE(sup::count_children(u.server()).specs == 1);  // plain stays (permanent), sig went (temporary)
    REQUIRE(no_exit_message());
    gs::stop(u.server());
  });
}

TEST_CASE("supervisor: auto_shutdown all_significant stops the supervisor when the last running significant "
          "child exits by itself",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto s = sup::start_link({.intensity = 5, .auto_shutdown = sup::all_significant},
                             {significant(sup::worker<member>("s1", me, "s1"), sup::temporary),
                              sup::worker<member>("plain", me, "plain"),
                              significant(sup::worker<member>("s2", me, "s2"), sup::transient)});
    REQUIRE(events(3) == strs{"start s1", "start plain", "start s2"});
    kill_and_wait(pid_of(s.server(), "s1"));  // one significant child left running
    REQUIRE(sup::count_children(s.server()).active == 2);
    quit_and_wait(pid_of(s.server(), "s2"), ember::exit_reason::shutdown());  // the last one
    REQUIRE(events(2) == strs{"stop:shutdown s2", "stop:shutdown plain"});
    auto m = next_exit();
    REQUIRE(m.from == s.pid());
    REQUIRE(m.reason == ember::exit_reason::shutdown());
  });
}

TEST_CASE("supervisor: auto_shutdown all_significant counts a significant child waiting to be restarted as "
          "running",
          "[supervisor]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    const ember::pid me = ember::self();
    auto waits = significant(sup::worker<member>("s2", me, "s2"), sup::transient);
    waits.backoff = sup::restart_backoff{std::chrono::hours(1), std::chrono::hours(1)};  // not during the test
    auto s = sup::start_link({.intensity = 5, .auto_shutdown = sup::all_significant},
                             {significant(sup::worker<member>("s1", me, "s1"), sup::temporary), waits});
    REQUIRE(events(2) == strs{"start s1", "start s2"});
    kill_and_wait(pid_of(s.server(), "s2"));  // crashed: its restart waits for the backoff
    REQUIRE(sup::which_child(s.server(), "s2")->status == sup::child_status::restarting);
    quit_and_wait(pid_of(s.server(), "s1"), ember::exit_reason::shutdown());  // by itself, not restarted
    // s2 still counts: the supervisor goes on.
    REQUIRE(sup::count_children(s.server()).specs == 1);
    REQUIRE(sup::which_child(s.server(), "s2")->status == sup::child_status::restarting);
    gs::stop(s.server(), ember::exit_reason::shutdown());
    REQUIRE(next_exit().from == s.pid());
  });
}

TEST_CASE("supervisor: a server type's child_defaults give its restart and shutdown to worker<S> and to the "
          "dynamic supervisor's child<S> and start_child<S>",
          "[supervisor]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto w = sup::worker<scratch>("scratch", me);
    REQUIRE(w.restart == sup::temporary);
    REQUIRE(w.shutdown == sup::shutdown_spec::brutal_kill());
    auto c = dyn::child<scratch>(me);
    REQUIRE(c.restart == sup::temporary);
    auto plain = sup::worker<member>("m", me, "m");
    REQUIRE(plain.restart == sup::permanent);  // no defaults declared: OTP's
    REQUIRE_FALSE(plain.shutdown);

    auto d = dyn::start_link();
    auto r = dyn::start_child<scratch>(d.server(), me);
    REQUIRE(r);
    REQUIRE(events(1) == strs{"start scratch"});
    kill_and_wait(r.pid());  // temporary: gone, not restarted
    REQUIRE(dyn::count_children(d.server()).specs == 0);
    // The defaults are a starting point: a spec's fields can still change.
    auto p = dyn::child<scratch>(me);
    p.restart = sup::permanent;
    auto r2 = dyn::start_child(d.server(), p);
    REQUIRE(events(1) == strs{"start scratch"});
    kill_and_wait(r2.pid());
    REQUIRE(events(1) == strs{"start scratch"});
    gs::stop(d.server());
  });
}
