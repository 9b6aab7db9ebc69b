// Scheduler: preemption by reductions, yield, work spreading, idle parking.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::opts;

TEST_CASE("a checkpoint loop delays another runnable process by at most one slice", "[scheduler]") {
  auto o = opts(1);
  o.reductions = 1000;
  ember::runtime rt(o);
  std::atomic<long> spins{0};
  std::atomic<long> spins_when_b_ran{-1};
  std::atomic<long> spins_when_b_spawned{-1};
  std::atomic<bool> stop{false};
  auto a = rt.spawn_monitor([&] {
    // Make B runnable from inside the loop, then keep spinning.
    for (;;) {
      ++spins;
      if (spins == 10) {
        spins_when_b_spawned = spins.load();
        ember::spawn([&] { spins_when_b_ran = spins.load(); stop = true; });
      }
      if (stop) return;
      ember::checkpoint();
    }
  });
  a.wait();
  REQUIRE(spins_when_b_ran >= 0);
  // B waited at most one slice of A's checkpoints (1000 reductions; the
  // spawn itself spends 10 of them).
  CHECK(spins_when_b_ran - spins_when_b_spawned <= o.reductions);
}

TEST_CASE("two checkpoint loops on one worker take turns", "[scheduler]") {
  auto o = opts(1);
  o.reductions = 100;
  ember::runtime rt(o);
  std::atomic<int> turn_changes{0};
  std::atomic<int> last{-1};
  std::atomic<int> done{0};
  auto body = [&](int id) {
    for (int i = 0; i < 10000; ++i) {
      if (last.exchange(id) != id) ++turn_changes;
      ember::checkpoint();
    }
    ++done;
  };
  // Both become runnable before either runs: the root spawns them, and with
  // one worker nothing else runs until the root waits.
  auto root = rt.spawn_monitor([&] {
    auto me = ember::self();
    ember::spawn([&, me] { body(0); ember::send(me, 1); });
    ember::spawn([&, me] { body(1); ember::send(me, 1); });
    ember::receive<int>();
    ember::receive<int>();
  });
  root.wait();
  CHECK(done == 2);
  // 20,000 checkpoints in slices of 100: about 200 hand-overs.
  CHECK(turn_changes >= 150);
}

TEST_CASE("yield() lets the next runnable process go first", "[scheduler]") {
  ember::runtime rt(opts(1));
  std::vector<int> order;
  std::mutex mu;
  auto note = [&](int v) {
    std::lock_guard lk(mu);
    order.push_back(v);
  };
  auto root = rt.spawn_monitor([&] {
    auto b = ember::spawn([&] { note(2); });
    (void)b;
    note(1);
    ember::yield();
    note(3);
  });
  root.wait();
  CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("work spreads over every worker", "[scheduler]") {
  unsigned workers = GENERATE(2u, 4u);
  ember::runtime rt(opts(workers));
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::atomic<int> finished{0};
  auto root = rt.spawn_monitor([&] {
    auto me = ember::self();
    const int n = 64;
    for (int i = 0; i < n; ++i)
      ember::spawn([&, me] {
        // Spin until several threads have been seen (or long enough).
        for (int k = 0; k < 200000; ++k) {
          {
            std::lock_guard lk(mu);
            threads.insert(std::this_thread::get_id());
            if (threads.size() >= 2 && k > 1000) break;
          }
          ember::checkpoint();
        }
        ember::send(me, 1);
      });
    for (int i = 0; i < n; ++i) finished += ember::receive<int>();
  });
  root.wait();
  CHECK(finished == 64);
  CHECK(threads.size() >= 2);
}

TEST_CASE("an idle runtime uses almost no CPU", "[scheduler][idle]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  ember::runtime rt(opts(workers));
  auto waiter = rt.spawn_monitor([] { ember::receive<int>(); });
  auto cpu = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  // A measurement window, not a wait for an event: CPU used over 300 ms.
  auto before = cpu();
  std::this_thread::sleep_for(300ms);
  auto used = cpu() - before;
  CHECK(used < 30ms);
  ember::send(waiter.pid, 1);
  CHECK(waiter.wait().is_normal());
}

TEST_CASE("ping-pong pairs run to completion on every worker count", "[scheduler]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  ember::runtime rt(opts(workers));
  const int pairs = 8, rounds = int(ember_test::scaled(20000, 2000));
  std::atomic<int> done{0};
  for (int k = 0; k < pairs; ++k) {
    auto pong = rt.spawn([&] {
      for (int i = 0; i < rounds; ++i) {
        auto [from, v] = ember::receive<std::pair<ember::pid, int>>();
        ember::send(from, v + 1);
      }
    });
    rt.spawn([&, pong] {
      auto me = ember::self();
      int v = 0;
      for (int i = 0; i < rounds; ++i) {
        ember::send(pong, std::pair{me, v});
        v = ember::receive<int>();
      }
      if (v == rounds) ++done;
    });
  }
  while (rt.process_count() > 0) std::this_thread::yield();
  CHECK(done == pairs);
}
