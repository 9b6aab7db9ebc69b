#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "ember/scheduler/run_queue.hpp"

using ember::detail::run_queue;

namespace {
struct item {
  int id;
};
}  // namespace

TEST_CASE("run_queue: FIFO for the owner", "[run_queue]") {
  run_queue<item, 8> q;
  std::vector<item> items(5);
  for (int i = 0; i < 5; ++i) {
    items[i].id = i;
    q.push(&items[i], [](item**, std::size_t) { FAIL("no overflow expected"); });
  }
  CHECK(q.len() == 5);
  for (int i = 0; i < 5; ++i) CHECK(q.pop()->id == i);
  CHECK(q.pop() == nullptr);
}

TEST_CASE("run_queue: a full queue moves half of it plus the new item to overflow", "[run_queue]") {
  run_queue<item, 8> q;
  std::vector<item> items(9);
  std::vector<int> spilled;
  for (int i = 0; i < 9; ++i) {
    items[i].id = i;
    q.push(&items[i], [&](item** xs, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k) spilled.push_back(xs[k]->id);
    });
  }
  CHECK(spilled == std::vector<int>{0, 1, 2, 3, 8});
  CHECK(q.len() == 4);
  for (int i = 4; i < 8; ++i) CHECK(q.pop()->id == i);
}

TEST_CASE("run_queue: steal takes half, oldest first", "[run_queue]") {
  run_queue<item, 16> a, b;
  std::vector<item> items(6);
  for (int i = 0; i < 6; ++i) {
    items[i].id = i;
    a.push(&items[i], [](item**, std::size_t) {});
  }
  item* got = a.steal_into(b);
  REQUIRE(got);
  CHECK(got->id == 2);     // ceil(6/2) = 3 stolen: 0,1 queued in b, 2 returned
  CHECK(b.len() == 2);
  CHECK(b.pop()->id == 0);
  CHECK(b.pop()->id == 1);
  CHECK(a.len() == 3);
  CHECK(a.pop()->id == 3);
}

TEST_CASE("run_queue: small-capacity stress, every item exactly once", "[run_queue][stress]") {
  // Capacity 4 makes overflow and concurrent steals constant.
  constexpr int total = 200000;
  run_queue<item, 4> owner_q;
  std::vector<item> items(total);
  std::vector<std::atomic<int>> seen(total);
  std::atomic<int> consumed{0};
  std::atomic<bool> done{false};
  auto take = [&](item* it) {
    seen[it->id].fetch_add(1);
    consumed.fetch_add(1);
  };
  std::vector<std::thread> stealers;
  for (int s = 0; s < 3; ++s)
    stealers.emplace_back([&] {
      run_queue<item, 4> mine;
      while (!done.load()) {
        if (item* it = owner_q.steal_into(mine)) {
          take(it);
          while (item* x = mine.pop()) take(x);
        }
      }
    });
  std::vector<item*> overflow;
  for (int i = 0; i < total; ++i) {
    items[i].id = i;
    owner_q.push(&items[i], [&](item** xs, std::size_t n) { overflow.insert(overflow.end(), xs, xs + n); });
    if (i % 3 == 0)
      if (item* it = owner_q.pop()) take(it);
  }
  while (item* it = owner_q.pop()) take(it);
  for (item* it : overflow) take(it);
  while (consumed.load() < total) std::this_thread::yield();
  done = true;
  for (auto& t : stealers) t.join();
  int bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  CHECK(bad == 0);
  CHECK(consumed.load() == total);
}
