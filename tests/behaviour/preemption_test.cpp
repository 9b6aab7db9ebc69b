// Preemption beyond reductions (docs/guide.md, "Scheduling"): a process in a
// plain C++ loop has its worker handed to another thread; one that calls
// checkpoint() yields by time; busy workers fire their timers on time; a
// runtime call that fails fast still spends; long_schedule reports; stop
// while a hog runs; ember::now() and absolute timers.
//
// The timing tests are structural: a ticker on a fixed 1 ms schedule (with
// absolute due times, so a late tick is caught up at once) counts the ticks
// it handled while the hogs ran.  Without hand-off or time slices it handles
// none of them; the tests ask for half, which holds on a loaded machine.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::opts;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;

namespace {
using steady = std::chrono::steady_clock;

struct hog_done {};
struct stop_ticking {};
struct ticks {
  long during;
};

/// A loop that makes no runtime call until `until` (or, with checkpoints,
/// calls checkpoint() every 1024 iterations).  Returns a value so the loop
/// is not optimised away.
std::uint64_t spin_until(steady::time_point until, bool checkpoint) {
  std::uint64_t x = 1;
  for (std::uint64_t i = 1;; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    if ((i & 1023) == 0) {
      if (checkpoint) ember::checkpoint();
      if (steady::now() >= until) break;
    }
  }
  return x;
}

/// One hog per worker for `d` while a ticker wants to run every 1 ms: the
/// ticks the ticker handled while hogs were running.
long ticks_while_hogs_run(unsigned workers, bool checkpoint, std::chrono::milliseconds d) {
  ember::runtime rt(opts(workers));
  auto running = std::make_shared<std::atomic<int>>(0);
  auto during = std::make_shared<std::atomic<long>>(-1);
  auto root = rt.spawn_monitor([=] {
    const ember::pid me = ember::self();
    const ember::pid ticker = ember::spawn([running, me] {
      long n = 0;
      ember::time_point due = ember::now();
      for (;;) {
        due += 1ms;
        if (ember::receive([](stop_ticking) { return true; }, ember::after(due, [] { return false; }))) break;
        if (running->load() > 0) ++n;
      }
      ember::send(me, ticks{n});
    });
    const auto until = steady::now() + d;
    for (unsigned i = 0; i < workers; ++i)
      ember::spawn([=] {
        running->fetch_add(1);
        volatile std::uint64_t sink = spin_until(until, checkpoint);
        (void)sink;
        running->fetch_sub(1);
        ember::send(me, hog_done{});
      });
    for (unsigned i = 0; i < workers; ++i) ember::receive<hog_done>();
    ember::send(ticker, stop_ticking{});
    during->store(ember::receive<ticks>().during);
  });
  INFO("root: " << root.wait());
  return during->load();
}
}  // namespace

TEST_CASE("scheduling: a ticker keeps its 1 ms schedule while a plain-loop hog holds every worker", "[scheduler]") {
  for (unsigned w : {1u, 2u, 4u}) {
    const long n = ticks_while_hogs_run(w, false, 1000ms);
    INFO(w << " workers: " << n << " of about 1000 ticks handled while the hogs ran");
    CHECK(n >= 500);
  }
}

TEST_CASE("scheduling: a ticker keeps its 1 ms schedule while a checkpoint hog runs on every worker", "[scheduler]") {
  for (unsigned w : {1u, 2u, 4u}) {
    const long n = ticks_while_hogs_run(w, true, 1000ms);
    INFO(w << " workers: " << n << " of about 1000 ticks handled while the hogs ran");
    CHECK(n >= 500);
  }
}

namespace {
struct back {
  ember::pid who;
};
struct carry_on {};
struct timer_tick {};
}  // namespace

TEST_CASE("scheduling: a hog whose worker was handed off carries on at its next runtime call, can be killed, and "
          "leaves no thread off the schedulers",
          "[scheduler]") {
  for (unsigned w : {1u, 2u, 4u}) {
    INFO(w << " workers");
    ember::runtime rt(opts(w));
    auto started = std::make_shared<std::atomic<unsigned>>(0);
    auto release = std::make_shared<std::atomic<bool>>(false);
    auto witness_ran = std::make_shared<std::atomic<bool>>(false);
    auto root = rt.spawn_monitor([=, &rt] {
      const ember::pid me = ember::self();
      std::vector<ember::pid> hogs;
      for (unsigned i = 0; i < w; ++i)
        hogs.push_back(ember::spawn([=] {
          // The last hog to start holds the last free worker: a process
          // made runnable now can run only on a worker handed off.
          if (started->fetch_add(1) + 1 == w)
            ember::spawn([=] {
              witness_ran->store(true);
              release->store(true);
            });
          while (!release->load(std::memory_order_relaxed)) {
          }
          // The first runtime call after the hand-off needs a worker (a
          // timer lives in one).
          ember::send_after(ember::self(), 1ms, timer_tick{});
          ember::receive<timer_tick>();
          ember::send(me, back{ember::self()});
          ember::receive<carry_on>();
          ember::send(me, back{ember::self()});
          ember::receive<carry_on>();  // killed here
        }));
      for (unsigned i = 0; i < w; ++i) ember::receive<back>();
      REQUIRE(witness_ran->load());
      for (auto h : hogs) ember::send(h, carry_on{});
      for (unsigned i = 0; i < w; ++i) ember::receive<back>();
      std::vector<ember::monitor_ref> ms;
      for (auto h : hogs) ms.push_back(ember::monitor(h));
      for (auto h : hogs) ember::exit(h, ember::exit_reason::kill());
      for (std::size_t i = 0; i < hogs.size(); ++i) {
        ember::down d = ember::receive<ember::down>();
        CHECK(d.reason == ember::exit_reason::killed());
      }
      const ember::scheduler_stats s = rt.scheduler();
      CHECK(s.handoffs >= 1);
      CHECK(s.off_scheduler == 0);
      CHECK(s.threads == w + s.spare_threads);
      CHECK(s.spare_threads <= w);
    });
    const ember::exit_reason r = root.wait();
    INFO("root: " << r);
    CHECK(r.is_normal());
  }
}

TEST_CASE("scheduling: stopping the runtime while a hog runs ends every other process at once and returns when the "
          "hog next calls ember",
          "[scheduler]") {
  for (unsigned w : {1u, 2u, 4u}) {
    INFO(w << " workers");
    ember::runtime rt(opts(w));
    auto in_loop = std::make_shared<std::atomic<bool>>(false);
    auto release = std::make_shared<std::atomic<bool>>(false);
    auto went_on = std::make_shared<std::atomic<bool>>(false);
    auto hog = rt.spawn_monitor([=] {
      in_loop->store(true);
      in_loop->notify_all();
      while (!release->load(std::memory_order_relaxed)) {
      }
      ember::checkpoint();  // the kill takes effect here
      went_on->store(true);
    });
    std::vector<ember::runtime::monitored> others;
    for (int i = 0; i < 8; ++i) others.push_back(rt.spawn_monitor([] { ember::receive<carry_on>(); }));
    in_loop->wait(false);
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      rt.stop();
      stopped.store(true);
    });
    for (auto& o : others) CHECK(o.wait() == ember::exit_reason::killed());
    CHECK_FALSE(stopped.load());  // the hog still runs: stop waits for it
    release->store(true);
    stopper.join();
    CHECK(hog.wait() == ember::exit_reason::killed());
    CHECK_FALSE(went_on->load());
  }
}

namespace {
struct crash_me {
  bool crash;
  using reply = int;
};

/// A server that crashes on request.
struct fragile : gs::behaviour<fragile> {
  void handle_cast(int) {}
  int handle_call(crash_me c) {
    if (c.crash) throw std::runtime_error("asked to crash");
    return 1;
  }
};
}  // namespace

TEST_CASE("scheduling: clients retrying failed calls in a tight loop leave the supervisor room to restart every "
          "server",
          "[scheduler]") {
  const int servers = 100;
  const int calls = int(ember_test::scaled(1000, 300));
  for (unsigned w : {1u, 2u, 4u}) {
    INFO(w << " workers");
    ember::runtime rt(opts(w));
    auto root = rt.spawn_monitor([&] {
      ember::process_flag(ember::trap_exit, true);
      ember::registry<int> reg(ember::registry_keys::unique);
      std::vector<sup::child_spec> specs;
      for (int i = 0; i < servers; ++i)
        specs.push_back({.id = std::to_string(i),
                         .start = [reg, i]() -> sup::started { return gs::start_link<fragile>(ember::via(reg, i)); }});
      auto s = sup::start_link({.strategy = sup::one_for_one, .intensity = 1'000'000, .period = 1000ms}, specs);
      REQUIRE(s);
      const ember::pid me = ember::self();
      for (int c = 0; c < 4; ++c)
        ember::spawn([reg, me, c, calls, servers] {
          std::minstd_rand rng(unsigned(c) + 1);
          long failures = 0;
          int done = 0;
          // A call either succeeds or fails at once: exited when it crashed
          // the server (as asked), noproc while the server restarts — then
          // the client asks the same server again at once.  A retry loop
          // that spent nothing on failures would hold its worker for ever,
          // and the supervisor would never restart anyone.
          while (done < calls && failures < 1'000'000) {
            const int key = int(rng() % servers);
            bool crash = rng() % 10 == 0;
            for (;;) {
              try {
                gs::call<fragile>(gs::server<fragile>(ember::via(reg, key)), crash_me{crash});
                break;
              } catch (const ember::call_exited&) {
                break;  // the crash it asked for
              } catch (const ember::call_noproc&) {
                if (++failures >= 1'000'000) break;
                crash = false;
              }
            }
            ++done;
          }
          ember::send(me, done);
        });
      for (int c = 0; c < 4; ++c) CHECK(ember::receive<int>() == calls);
      // Every server is back under its name once its restart is through.
      // The supervisor handles the exit signals queued before this call
      // first; a restart still due after it (a crash whose signal was
      // still on its way) takes a few more turns of the run queue.
      for (const auto& k : sup::which_children(s.server())) CHECK(k.status == sup::child_status::running);
      for (int i = 0; i < servers; ++i) {
        int answer = 0;
        for (int attempt = 0; attempt < 1'000'000 && answer == 0; ++attempt) {
          try {
            answer = gs::call<fragile>(gs::server<fragile>(ember::via(reg, i)), crash_me{false});
          } catch (const ember::call_noproc&) {
          }
        }
        CHECK(answer == 1);
      }
      gs::stop(s.server(), ember::exit_reason::shutdown());
    });
    const ember::exit_reason r = root.wait();
    INFO("root: " << r);
    CHECK(r.is_normal());
  }
}

TEST_CASE("scheduling: a runtime call that fails fast still spends a reduction, so a retry loop yields", "[scheduler]") {
  // Reductions alone (no time slices, no hand-off, which would rescue such
  // a loop anyway), one worker, 100 reductions a slice: a process made
  // runnable before the loop starts runs within about a slice of failures.
  auto o = opts(1);
  o.reductions = 100;
  o.time_slice = 0us;
  o.handoff_after = 0us;
  auto attempt = [&](const char* what, auto fail) {
    INFO(what);
    ember::runtime rt(o);
    auto r = rt.spawn_monitor([fail]() mutable {
      auto ran = std::make_shared<std::atomic<bool>>(false);
      ember::spawn([ran] { ran->store(true); });
      long n = 0;
      while (!ran->load() && n < 1'000'000) {
        ++n;
        try {
          fail();
        } catch (const ember::error&) {
        }
      }
      CHECK(n <= 110);
    });
    CHECK(r.wait().is_normal());
  };
  attempt("call to a name nobody holds", [] { gs::call<fragile>(gs::server<fragile>("nobody"), crash_me{false}); });
  ember::registry<int> reg(ember::registry_keys::unique);
  attempt("call to a via-name nobody holds",
          [reg] { gs::call<fragile>(gs::server<fragile>(ember::via(reg, 7)), crash_me{false}); });
  attempt("stop of a via-name nobody holds", [reg] { gs::stop<fragile>(gs::server<fragile>(ember::via(reg, 7))); });
  attempt("cast to a name nobody holds", [] { gs::cast<fragile>(gs::server<fragile>("nobody"), 1); });
  attempt("send to a name nobody holds", [] { ember::send("nobody", 1); });
  attempt("whereis", [] { (void)ember::whereis("nobody"); });
  attempt("link to a dead process", [] { ember::link(ember::pid{}); });
  attempt("register a taken name", [] { ember::register_name("", ember::self()); });
  attempt("send_after with a bad delay", [] { ember::send_after(ember::self(), -1ms, 1); });
  attempt("read_timer of nothing", [] { (void)ember::read_timer(ember::timer_ref{}); });
  attempt("registry whereis of a key nobody holds", [reg] { (void)reg.whereis(7); });
  attempt("registry lookup of a key nobody holds", [reg] { (void)reg.lookup(7); });
  attempt("registry register of a null pid", [reg]() mutable { reg.register_name(7, ember::pid{}); });
  attempt("registry unregister of a key it does not hold", [reg]() mutable { (void)reg.unregister_name(7); });
}

TEST_CASE("scheduling: a process that runs past long_schedule without yielding is reported once per episode", "[scheduler]") {
  auto log = std::make_shared<std::ostringstream>();
  auto o = opts(2);
  o.long_schedule = 30ms;
  o.logger = std::make_shared<spdlog::logger>("ls", std::make_shared<spdlog::sinks::ostream_sink_mt>(*log));
  ember::runtime rt(o);
  std::string hog_pid;
  // Reports about the hog (a loaded machine may keep another process's
  // thread off the CPU that long, and that is reported too).
  auto count = [&] {
    const std::string s = log->str();
    const std::string what = "long_schedule: process " + hog_pid + " ";
    std::size_t n = 0;
    for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
  };
  auto root = rt.spawn_monitor([&] {
    const ember::pid me = ember::self();
    const ember::pid hog = ember::spawn([me] {
      for (int episode = 0; episode < 2; ++episode) {
        volatile std::uint64_t sink = spin_until(steady::now() + 100ms, false);
        (void)sink;
        ember::yield();  // the episode ends: the report is made before this returns
        ember::send(me, episode);
        ember::receive<carry_on>();
      }
    });
    std::ostringstream p;
    p << hog;
    hog_pid = p.str();
    CHECK(ember::receive<int>() == 0);
    CHECK(count() == 1);
    ember::send(hog, carry_on{});
    CHECK(ember::receive<int>() == 1);
    CHECK(count() == 2);
    ember::send(hog, carry_on{});
  });
  CHECK(root.wait().is_normal());
  const std::string s = log->str();
  INFO(s);
  CHECK(s.find("without yielding its worker") != std::string::npos);
  CHECK(s.find("handed to another thread after") != std::string::npos);
  CHECK(rt.scheduler().long_schedules >= 2);
}

TEST_CASE("scheduling: the scheduling options are checked", "[scheduler]") {
  auto bad = [](auto set) {
    auto o = opts(1);
    set(o);
    CHECK_THROWS_AS(ember::runtime(o), ember::invalid_option);
  };
  bad([](ember::runtime_options& o) { o.time_slice = 10us; });
  bad([](ember::runtime_options& o) { o.time_slice = 2s; });
  bad([](ember::runtime_options& o) { o.handoff_after = 50us; });
  bad([](ember::runtime_options& o) { o.handoff_after = 11s; });
  bad([](ember::runtime_options& o) { o.long_schedule = -1ms; });
  bad([](ember::runtime_options& o) { o.blocking_threads = 0; });
  bad([](ember::runtime_options& o) { o.blocking_threads = 5000; });
  auto o = opts(1);
  o.time_slice = 0us;
  o.handoff_after = 0us;
  o.long_schedule = 0ms;
  ember::runtime ok(o);  // all off is fine
  CHECK(ok.scheduler().threads == 1);
}
