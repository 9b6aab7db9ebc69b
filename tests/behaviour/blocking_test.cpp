// ember::blocking (include/ember/blocking.hpp): blocking work off the
// schedulers.  The sections here really block — on a std::atomic's wait,
// released by the test — so a section that held its worker would stall
// every process queued behind it.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;

namespace {
struct about {};
struct entered {};
struct done {
  int value = 0;
};
struct ping {
  ember::pid from;
  int n;
};

/// Blocks its thread until the gate opens.
void wait_for(const std::shared_ptr<std::atomic<bool>>& gate) { gate->wait(false); }
void open(const std::shared_ptr<std::atomic<bool>>& gate) {
  gate->store(true);
  gate->notify_all();
}
}  // namespace

TEST_CASE("blocking: more blocking sections than workers and than blocking_threads — other processes keep answering",
          "[blocking]") {
  for (unsigned w : {1u, 2u, 4u}) {
    INFO(w << " workers");
    auto o = opts(w);
    o.blocking_threads = 2;
    ember::runtime rt(o);
    const int sections = int(3 * w + 2);
    auto gate = std::make_shared<std::atomic<bool>>(false);
    auto root = rt.spawn_monitor([=, &rt] {
      const ember::pid me = ember::self();
      for (int i = 0; i < sections; ++i)
        ember::spawn([=] {
          ember::send(me, about{});
          int r = ember::blocking([&] {
            ember::send(me, entered{});  // send works off the schedulers
            wait_for(gate);
            return 7;
          });
          ember::send(me, done{r});
        });
      // Two sections block two threads; the others wait their turn without
      // holding a worker.
      for (int i = 0; i < sections; ++i) ember::receive<about>();
      ember::receive<entered>();
      ember::receive<entered>();
      const ember::pid echo = ember::spawn([] {
        for (;;) {
          ping p = ember::receive<ping>();
          ember::send(p.from, p.n);
        }
      });
      for (int i = 0; i < 1000; ++i) {
        ember::send(echo, ping{me, i});
        REQUIRE(ember::receive<int>() == i);
      }
      CHECK(ember::receive([](entered) { return true; }, ember::after(0ms, [] { return false; })) == false);
      const ember::scheduler_stats s = rt.scheduler();
      CHECK(s.off_scheduler == 2);
      CHECK(s.threads <= w + 2 + s.spare_threads);
      open(gate);
      for (int i = 0; i < sections - 2; ++i) ember::receive<entered>();
      for (int i = 0; i < sections; ++i) CHECK(ember::receive<done>().value == 7);
      ember::exit(echo, ember::exit_reason::kill());
    });
    const ember::exit_reason r = root.wait();
    INFO("root: " << r);
    CHECK(r.is_normal());
  }
}

TEST_CASE("blocking: an exit signal that arrives during a blocking section takes effect when the section returns",
          "[blocking]") {
  for (unsigned w : {1u, 2u, 4u}) {
    INFO(w << " workers");
    in_process(w, [] {
      auto gate = std::make_shared<std::atomic<bool>>(false);
      auto finished = std::make_shared<std::atomic<bool>>(false);
      auto after = std::make_shared<std::atomic<bool>>(false);
      const ember::pid me = ember::self();
      auto [p, m] = ember::spawn_monitor([=] {
        ember::blocking([&] {
          ember::send(me, entered{});
          wait_for(gate);
          finished->store(true);
        });
        after->store(true);
      });
      ember::receive<entered>();
      ember::exit(p, ember::exit_reason::error("stop it"));
      // It is still in its section: not dead yet.
      CHECK(ember::receive([](ember::down) { return true; }, ember::after(20ms, [] { return false; })) == false);
      open(gate);
      ember::down d = ember::receive<ember::down>();
      CHECK(d.ref == m);
      CHECK(d.reason == ember::exit_reason::error("stop it"));
      CHECK(finished->load());
      CHECK_FALSE(after->load());
    });
  }
}

TEST_CASE("blocking: returns the function's value, rethrows its exception, and nests", "[blocking]") {
  in_process(2, [] {
    CHECK(ember::blocking([] { return std::string("read"); }) == "read");
    CHECK_THROWS_WITH(ember::blocking([]() -> int { throw std::runtime_error("disk on fire"); }), "disk on fire");
    int inner = ember::blocking([] { return ember::blocking([] { return 3; }) + 1; });
    CHECK(inner == 4);
    // Back on a worker: ordinary calls work again.
    ember::send(ember::self(), 5);
    CHECK(ember::receive<int>() == 5);
  });
}

TEST_CASE("blocking: what would wait or needs a worker inside a section is an error — the rest works", "[blocking]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    ember::blocking([&] {
      CHECK(ember::self() == me);
      ember::send(me, 1);
      CHECK(ember::receive<int>() == 1);  // a message that is there: no wait
      CHECK_THROWS_AS(ember::receive<double>(), ember::error);
      CHECK_THROWS_AS(ember::send_after(me, 1ms, 2), ember::error);
      ember::yield();
      ember::checkpoint();
      ember::pid child = ember::spawn([] {});
      CHECK_FALSE(child.is_null());
    });
    // The section is over: timers work again.
    ember::send_after(me, 1ms, 3);
    CHECK(ember::receive<int>() == 3);
  });
}

TEST_CASE("blocking: a blocking section that waits for a thread can be killed while it waits", "[blocking]") {
  // One worker, and no preemption but by reductions: after the root
  // yields, the waiter has run until it waits.
  auto o = opts(1);
  o.blocking_threads = 1;
  o.time_slice = 0us;
  o.handoff_after = 0us;
  ember::runtime rt(o);
  auto gate = std::make_shared<std::atomic<bool>>(false);
  auto root = rt.spawn_monitor([=, &rt] {
    const ember::pid me = ember::self();
    ember::spawn([=] {
      ember::blocking([&] {
        ember::send(me, entered{});
        wait_for(gate);
      });
      ember::send(me, done{});
    });
    ember::receive<entered>();
    auto [waiter, m] = ember::spawn_monitor([] { ember::blocking([] {}); });
    ember::yield();
    const ember::scheduler_stats st = rt.scheduler();
    INFO("off " << st.off_scheduler << " threads " << st.threads << " handoffs " << st.handoffs << " spare "
                << st.spare_threads << " preemptions " << st.preemptions);
    REQUIRE(st.blocking_waits == 1);
    ember::exit(waiter, ember::exit_reason::kill());
    CHECK(ember::receive<ember::down>().reason == ember::exit_reason::killed());
    open(gate);
    ember::receive<done>();
    // The place it waited for went to nobody: a new section runs at once.
    CHECK(ember::blocking([] { return 1; }) == 1);
    CHECK(rt.scheduler().blocking_waits == 1);
    CHECK(rt.scheduler().off_scheduler == 0);
  });
  const ember::exit_reason r = root.wait();
  INFO("root: " << r);
  CHECK(r.is_normal());
}
