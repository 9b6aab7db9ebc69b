// Stress: many processes messaging at random across workers; spawn storms.
#include <catch2/catch.hpp>

#include <atomic>
#include <random>
#include <vector>

#include "support/support.hpp"

using ember_test::opts;
using ember_test::scaled;

TEST_CASE("stress: random many-to-many messaging delivers every message once", "[stress]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int n = 200;
  const int per = int(scaled(500, 50));
  ember::runtime rt(opts(workers));
  std::atomic<long> received{0};
  std::atomic<long> sum{0};
  auto root = rt.spawn_monitor([&] {
    auto me = ember::self();
    std::vector<ember::pid> ps;
    for (int i = 0; i < n; ++i)
      ps.push_back(ember::spawn([&, me] {
        // Receive until told the expected count, then report.
        long got = 0, s = 0;
        for (;;) {
          bool stop = ember::receive([&](int v) { ++got; s += v; return false; },
                                     [](std::pair<int, int>) { return true; });
          if (stop) break;
        }
        received += got;
        sum += s;
        ember::send(me, 1);
      }));
    auto peers = ps;
    std::vector<ember::pid> senders;
    for (int i = 0; i < n; ++i)
      senders.push_back(ember::spawn([peers, per, me, i] {
        std::minstd_rand rng(unsigned(i + 1));
        for (int k = 0; k < per; ++k) ember::send(peers[rng() % peers.size()], 1);
        ember::send(me, 2);
      }));
    for (int i = 0; i < n; ++i) ember::receive([](int v) { return v == 2; });
    for (auto& p : ps) ember::send(p, std::pair<int, int>{0, 0});
    int stopped = 0;
    while (stopped < n) stopped += ember::receive<int>();
  });
  CHECK(root.wait().is_normal());
  CHECK(received == long(n) * per);
  CHECK(sum == long(n) * per);
}

TEST_CASE("stress: a spawn tree (skynet) sums correctly", "[stress]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const long leaves = long(scaled(100000, 1000));
  ember::runtime rt(opts(workers));
  std::atomic<long> total{-1};
  struct node {
    static void run(ember::pid parent, long num, long size) {
      if (size == 1) {
        ember::send(parent, num);
        return;
      }
      auto me = ember::self();
      for (long i = 0; i < 10; ++i) {
        long n = num + i * (size / 10), s = size / 10;
        ember::spawn([me, n, s] { run(me, n, s); });
      }
      long sum = 0;
      for (int i = 0; i < 10; ++i) sum += ember::receive<long>();
      ember::send(parent, sum);
    }
  };
  auto root = rt.spawn_monitor([&] {
    auto me = ember::self();
    ember::spawn([me, leaves] { node::run(me, 0, leaves); });
    total = ember::receive<long>();
  });
  CHECK(root.wait().is_normal());
  CHECK(total == leaves * (leaves - 1) / 2);
}

TEST_CASE("stress: repeated runtimes start and stop cleanly", "[stress]") {
  for (int round = 0; round < int(scaled(50, 10)); ++round) {
    ember::runtime rt(opts(unsigned(1 + round % 4)));
    std::atomic<int> n{0};
    for (int i = 0; i < 100; ++i)
      rt.spawn([&] {
        ++n;
        ember::receive<int>();
      });
    rt.stop();
    CHECK(rt.process_count() == 0);
  }
}
