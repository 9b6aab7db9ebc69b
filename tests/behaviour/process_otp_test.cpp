// Processes, monitors and kills against OTP's rules that the conformance
// run found broken: a swallowed exit still ends the process, monitors by
// name, self-monitors, demonitor's typed option, a kill that is final (a
// process unwinding for it never waits; runtime::stop and the application
// give up on one that will not die), and crash reasons that keep the
// thrown value.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace gs = ember::gen_server;
namespace app = ember::application;

TEST_CASE("exit signals: a swallowed exit signal still ends the process with its reason when its function returns",
          "[signals][otp]") {
  in_process(2, [] {
    auto [a, ma] = ember::spawn_monitor([] {
      try {
        ember::exit(ember::self(), ember::exit_reason::error("told to go"));
      } catch (...) {  // swallowed, and the function returns
      }
    });
    REQUIRE(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::error("told to go"));
    const ember::pid me = ember::self();
    auto [b, mb] = ember::spawn_monitor([me] {
      try {
        ember::send(me, 1);
        ember::receive([](int) {});  // killed while waiting here
      } catch (...) {
      }
    });
    REQUIRE(ember::receive<int>() == 1);
    ember::exit(b, ember::exit_reason::kill());
    REQUIRE(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::killed());
    (void)a, (void)ma, (void)mb;
  });
}

TEST_CASE("monitor: monitoring a registered name watches its holder and the down names it — a name nobody holds "
          "gives noproc at once",
          "[monitor][otp]") {
  in_process(2, [] {
    ember::pid svc = ember::spawn([] { ember::receive([](int) {}); });
    ember::register_name("svc", svc);
    auto ref = ember::monitor("svc");
    REQUIRE(ref.target == svc);
    ember::exit(svc, ember::exit_reason::shutdown());
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.ref == ref);
    REQUIRE(d.who == svc);
    REQUIRE(d.name == "svc");
    REQUIRE(d.reason == ember::exit_reason::shutdown());

    auto none = ember::monitor("nobody");
    auto n = ember::receive([](ember::down d) { return d; });
    REQUIRE(n.ref == none);
    REQUIRE(n.who.is_null());
    REQUIRE(n.name == "nobody");
    REQUIRE(n.reason == ember::exit_reason::noproc());

    // A monitor by pid carries no name.
    auto [p, m] = ember::spawn_monitor([] {});
    auto pd = ember::receive([](ember::down d) { return d; });
    REQUIRE(pd.name.empty());
    (void)p, (void)m;
    REQUIRE_THROWS_AS(ember::monitor(std::string_view()), ember::bad_argument);
  });
}

TEST_CASE("monitor: monitoring a via-name watches the key's holder and the down names the via-name",
          "[monitor][otp]") {
  in_process(2, [] {
    ember::registry<std::string> reg(ember::registry_keys::unique);
    ember::pid w = ember::spawn([] { ember::receive([](int) {}); });
    reg.register_name("worker-1", w);
    const ember::via_name v = ember::via(reg, std::string("worker-1"));
    auto ref = ember::monitor(v);
    ember::exit(w, ember::exit_reason::kill());
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.ref == ref);
    REQUIRE(d.who == w);
    REQUIRE(d.reason == ember::exit_reason::killed());
    REQUIRE(d.name == v.to_string());
    // The key is free now: noproc at once.
    ember::monitor(v);
    auto n = ember::receive([](ember::down d) { return d; });
    REQUIRE(n.reason == ember::exit_reason::noproc());
    REQUIRE(n.name == v.to_string());
    REQUIRE_THROWS_AS(ember::monitor(ember::via_name()), ember::bad_argument);
  });
}

TEST_CASE("monitor: a monitor on yourself shows in process_info and demonitor returns true", "[monitor][otp]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    auto ref = ember::monitor(me);
    auto info = ember::process_info(me);
    REQUIRE(info);
    REQUIRE(info->monitors == std::vector<ember::pid>{me});
    REQUIRE(info->monitored_by == std::vector<ember::pid>{me});
    REQUIRE(ember::demonitor(ref));
    REQUIRE_FALSE(ember::demonitor(ref));
    REQUIRE(ember::process_info(me)->monitors.empty());
    // One left in place never fires (a process cannot see its own exit),
    // and the process exits cleanly with it.
    ember::monitor(me);
    auto [p, m] = ember::spawn_monitor([] { ember::monitor(ember::self()); });
    REQUIRE(ember::receive([](ember::down d) { return d.reason; }).is_normal());
    (void)p, (void)m;
  });
}

namespace {
template <class T>
concept demonitor_takes = requires(const ember::monitor_ref& r, T t) { ember::demonitor(r, t); };
}  // namespace

TEST_CASE("demonitor: the flush option is a typed demonitor_option, not a bool", "[monitor][otp]") {
  static_assert(demonitor_takes<ember::demonitor_option>);
  static_assert(!demonitor_takes<bool>);
  static_assert(!demonitor_takes<int>);
  static_assert(!demonitor_takes<const char*>);
  in_process(1, [] {
    auto [p, ref] = ember::spawn_monitor([] {});
    ember::receive([](int) {}, ember::after(0ms, [] {}));  // let it exit: its down is queued by then
    while (ember::process_info(p)) ember::yield();
    REQUIRE_FALSE(ember::demonitor(ref, ember::demonitor_option::flush));
    REQUIRE(ember::process_info(ember::self())->message_queue_len == 0);
    REQUIRE_THROWS_AS(ember::demonitor(ref, static_cast<ember::demonitor_option>(7)), ember::bad_argument);
  });
}

namespace {
struct echo : gs::behaviour<echo> {
  int handle_call(int v) { return v; }
  call_reply<int> handle_call(long) { return noreply(); }  // never answered
};

/// Does something in its destructor while its process unwinds for a kill.
struct unwinder {
  int how;
  std::atomic<int>* seen;  // (not owned: an abandoned process's frames are never destroyed)
  ember::pid srv;
  ~unwinder() {
    if (how == 0) {  // a receive with a timeout: times out at once
      ember::receive([](int) {}, ember::after(1h, [this] { seen->store(1); }));
    } else if (how == 1) {  // a call with no timeout: call_timeout at once
      try {
        (void)gs::call<echo>(srv, 1L, gs::infinity);
      } catch (const ember::call_timeout&) {
        seen->store(2);
      }
    } else {  // a receive with no timeout: the process ends here
      seen->store(3);
      ember::receive([](int) {});
      seen->store(4);  // never
    }
  }
};
}  // namespace

TEST_CASE("kill: a process unwinding for its kill never waits: a receive with a timeout times out at once, a call "
          "fails at once, and a receive without a timeout ends the process there",
          "[signals][otp]") {
  ember_test::captured_log log;
  ember::runtime rt(ember_test::opts(2, log));
  for (int how : {0, 1, 2}) {
    std::atomic<int> seen_storage{0};
    std::atomic<int>* seen = &seen_storage;
    auto r = rt.spawn_monitor([how, seen] {
                 auto s = gs::start<echo>();
                 const ember::pid me = ember::self();
                 ember::pid victim = ember::spawn([how, seen, me, srv = s.pid()] {
                   unwinder u{how, seen, srv};
                   ember::send(me, 1);
                   ember::receive([](double) {});  // killed here
                 });
                 auto m = ember::monitor(victim);
                 ember::receive([](int) {});  // it is about to wait
                 ember::exit(victim, ember::exit_reason::kill());
                 auto d = ember::receive([m](ember::down d) {
                   REQUIRE(d.ref == m);
                   return d;
                 });
                 REQUIRE(d.reason == ember::exit_reason::killed());
                 gs::stop(s.server());
               })
                 .wait();
    INFO("how " << how << ": " << r);
    REQUIRE(r.is_normal());
    REQUIRE(seen->load() == how + 1);
  }
  rt.stop();
  REQUIRE(log.contains("waited with no timeout while unwinding for its exit (reason: killed)"));
}

TEST_CASE("runtime::stop gives up on a process that swallows its kill in a catch (...) loop, reports it, and "
          "returns",
          "[signals][otp]") {
  ember_test::captured_log log;
  auto o = ember_test::opts(2, log);
  o.stop_timeout = 200ms;
  auto looping = std::make_shared<std::atomic<bool>>(false);
  ember::pid stubborn;
  {
    ember::runtime rt(o);
    stubborn = rt.spawn([looping] {
      ember::register_name("stubborn", ember::self());
      looping->store(true);
      for (;;) {
        try {
          ember::receive([](int) {});
        } catch (...) {  // swallows every kill
        }
      }
    });
    while (!looping->load()) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    rt.stop();
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(took >= 200ms);
    REQUIRE(took < 10s);
  }  // the runtime is kept, not destroyed (a thread may still use it)
  INFO(log.text());
  REQUIRE(log.contains(fmt::format("runtime::stop: process {} stubborn did not exit within 200 ms of being killed",
                                   stubborn)));
  REQUIRE(log.contains("abandoned"));
}

TEST_CASE("runtime::stop gives up on a process in plain C++ code that never calls the runtime — it ends at its next "
          "runtime call, on its own thread",
          "[signals][otp]") {
  ember_test::captured_log log;
  auto o = ember_test::opts(2, log);
  o.stop_timeout = 100ms;
  auto running = std::make_shared<std::atomic<bool>>(false);
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::atomic<bool>>(false);
  {
    ember::runtime rt(o);
    rt.spawn([running, release, finished] {
      running->store(true);
      while (!release->load()) {
      }  // plain C++: no runtime call
      finished->store(true);
      ember::checkpoint();  // its kill ends it here
      finished->store(false);
    });
    while (!running->load()) std::this_thread::yield();
    rt.stop();  // returns although the process holds a worker thread
    REQUIRE(log.contains("(in code that does not call the runtime)"));
    release->store(true);
    while (rt.process_count() != 0) std::this_thread::yield();  // it ended, on its own thread
    REQUIRE(finished->load());
  }  // the runtime is kept, not destroyed: the detached thread may still be leaving it
}

TEST_CASE("application: a root that swallows its kill is given up on after the runtime's stop_timeout — run "
          "returns killed",
          "[application][otp]") {
  ember_test::captured_log log;
  app::options o;
  o.runtime = ember_test::opts(2, log);
  o.runtime.stop_timeout = 100ms;
  o.shutdown_timeout = 0ms;  // kill the root at once
  o.handle_signals = false;
  const int status = app::run(
      [] {
        return ember::spawn_link([] {
          app::stop();  // ask for the shutdown ourselves
          for (;;) {
            try {
              ember::receive([](int) {});
            } catch (...) {
            }
          }
        });
      },
      o);
  INFO(log.text());
  REQUIRE(status == app::exit_status::killed);
  REQUIRE(log.contains("did not exit within 100 ms of being killed (runtime_options::stop_timeout); abandoning it"));
}

namespace {
struct custom_failure {
  int code;
};
}  // namespace

TEST_CASE("processes: an exception not derived from std::exception ends the process with a text naming its type, "
          "and the thrown value stays readable from the reason",
          "[signals][otp]") {
  in_process(2, [] {
    ember::spawn_monitor([] { throw 42; });
    auto r = ember::receive([](ember::down d) { return d.reason; });
    REQUIRE(r.text() == "unknown exception of type int (not derived from std::exception)");
    REQUIRE(r.value<int>());
    REQUIRE(*r.value<int>() == 42);
    REQUIRE(r.exception());

    ember::spawn_monitor([] { throw custom_failure{7}; });
    auto c = ember::receive([](ember::down d) { return d.reason; });
    REQUIRE(c.value<custom_failure>());
    REQUIRE(c.value<custom_failure>()->code == 7);
    REQUIRE_FALSE(c.value<int>());

    ember::spawn_monitor([] { throw std::out_of_range("past the end"); });
    auto s = ember::receive([](ember::down d) { return d.reason; });
    REQUIRE(s == ember::exit_reason::error("past the end"));  // compares as the text reason
    REQUIRE(s.value<std::out_of_range>());
    REQUIRE(s.value<std::logic_error>());  // a base class finds it too
    REQUIRE(std::string(s.value<std::exception>()->what()) == "past the end");

    // A gen_server handler's crash keeps it too; the caller sees it in call_exited.
    struct thrower : gs::behaviour<thrower> {
      int handle_call(int) { throw custom_failure{9}; }
    };
    auto t = gs::start<thrower>();
    try {
      gs::call(t.server(), 1);
      FAIL("no exception");
    } catch (const ember::call_exited& e) {
      REQUIRE(e.reason().value<custom_failure>());
      REQUIRE(e.reason().value<custom_failure>()->code == 9);
    }
  });
}
