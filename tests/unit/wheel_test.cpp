// The timing wheel on its own (include/ember/timer/wheel.hpp): every node
// fires exactly once, at the first advance that reaches its tick, never
// before, in due order — including ticks far beyond the wheel's reach of
// 2^36 ms and a wheel that sat empty while time ran on.  And the runtime's
// clock reading (base/fast_clock.hpp) against steady_clock.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "ember/base/fast_clock.hpp"
#include "ember/timer/wheel.hpp"

namespace {
using ember::detail::timer_node;
using ember::detail::timer_pool;
using ember::detail::timer_wheel;

constexpr std::int64_t ns_per_ms = 1'000'000;

/// A wheel fed with nodes due at given ticks, recording when each fires.
struct harness {
  timer_pool pool{nullptr};
  timer_wheel wheel;
  std::map<timer_node*, std::uint64_t> due;  // node → its tick
  std::vector<std::pair<std::uint64_t, std::uint64_t>> fired;  // (tick due, wheel position when fired)
  std::uint64_t now = 0;

  timer_node* add(std::uint64_t tick) {
    timer_node* n = pool.get();
    n->head().deadline.store(std::int64_t(tick) * ns_per_ms, std::memory_order_relaxed);
    wheel.insert(n);
    due[n] = tick;
    return n;
  }
  void advance_to(std::uint64_t t) {
    now = t;
    wheel.advance(t, [&](timer_node* n) {
      fired.emplace_back(due.at(n), now);
      due.erase(n);
      pool.put(n);
    });
  }
};
}  // namespace

TEST_CASE("wheel: nodes fire at the first advance that reaches their tick, in due order, at every level", "[wheel]") {
  harness h;
  std::mt19937_64 rng(42);
  // Ticks spread over every level (1 ms .. 2^35 ms), and a burst in one slot.
  for (int i = 0; i < 2000; ++i) {
    const unsigned bits = 1 + unsigned(rng() % 35);
    h.add(1 + rng() % (std::uint64_t{1} << bits));
  }
  for (int i = 0; i < 50; ++i) h.add(777);
  const std::size_t total = h.due.size();
  std::uint64_t t = 0;
  while (!h.due.empty()) {
    // Steps of random size, from 1 ms to about a level's width.
    const unsigned bits = unsigned(rng() % 34);
    t += 1 + rng() % (std::uint64_t{1} << bits);
    h.advance_to(t);
    for (auto& [n, tick] : h.due) REQUIRE(tick > t);  // nothing due was left behind
  }
  REQUIRE(h.fired.size() == total);
  std::uint64_t prev_due = 0;
  std::uint64_t prev_at = 0;
  for (auto [tick, at] : h.fired) {
    REQUIRE(tick <= at);  // never early
    REQUIRE(tick >= prev_due);  // in due order
    REQUIRE(at >= prev_at);
    prev_due = tick;
    prev_at = at;
  }
  REQUIRE(h.wheel.empty());
}

TEST_CASE("wheel: a node due beyond the wheel's 2^36 ms reach waits and fires on its tick, not in a loop", "[wheel]") {
  harness h;
  const std::uint64_t horizon = timer_wheel::horizon;
  SECTION("from tick 0") {
    h.add(horizon + 5);
    h.add(3 * horizon + 12345);
    h.add(horizon - 1);
    h.add(1);
    h.advance_to(1);
    REQUIRE(h.fired.size() == 1);
    h.advance_to(horizon - 2);
    REQUIRE(h.fired.size() == 1);
    h.advance_to(horizon - 1);
    REQUIRE(h.fired.size() == 2);
    h.advance_to(horizon + 4);
    REQUIRE(h.fired.size() == 2);
    h.advance_to(horizon + 5);
    REQUIRE(h.fired.size() == 3);
    h.advance_to(3 * horizon + 12344);
    REQUIRE(h.fired.size() == 3);
    h.advance_to(3 * horizon + 12345);
    REQUIRE(h.fired.size() == 4);
  }
  SECTION("from the middle of a top-level slot, one tick short of and past a full turn") {
    const std::uint64_t start = (std::uint64_t{5} << 30) + 7;
    h.advance_to(start);
    h.add(start + horizon - 1);  // lands in the current top slot's turn-around
    h.add(start + horizon);
    h.add(start + horizon + 1);
    h.advance_to(start + horizon - 2);
    REQUIRE(h.fired.empty());
    h.advance_to(start + horizon - 1);
    REQUIRE(h.fired.size() == 1);
    h.advance_to(start + horizon + 1);
    REQUIRE(h.fired.size() == 3);
  }
  SECTION("one jump far past everything fires all, in due order") {
    for (std::uint64_t k = 1; k <= 5; ++k) h.add(k * horizon + k);
    h.advance_to(100 * horizon);
    REQUIRE(h.fired.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) REQUIRE(h.fired[i].first == (i + 1) * horizon + i + 1);
  }
}

TEST_CASE("wheel: an empty wheel caught up to the present places new nodes from there", "[wheel]") {
  harness h;
  h.wheel.catch_up(std::uint64_t{1} << 40);  // time ran on with nothing pending
  REQUIRE(h.wheel.elapsed() == std::uint64_t{1} << 40);
  h.add((std::uint64_t{1} << 40) + 1);
  h.wheel.catch_up(std::uint64_t{1} << 41);  // not empty: no effect
  REQUIRE(h.wheel.elapsed() == std::uint64_t{1} << 40);
  h.advance_to((std::uint64_t{1} << 40) + 1);
  REQUIRE(h.fired.size() == 1);
}

TEST_CASE("fast_clock: never goes back on a thread and stays within a few microseconds of steady_clock", "[clock]") {
  using ember::detail::fast_clock::now_ns;
  using ember::detail::fast_clock::steady_ns;
  // Long enough for the counter's rate to be measured (2 ms) and for
  // several 1 ms re-anchorings; a busy loop, since time passing is the point.
  const std::int64_t until = steady_ns() + 20 * ns_per_ms;
  std::int64_t prev = now_ns();
  std::int64_t worst = 0;
  long reads = 0;
  while (true) {
    const std::int64_t before = steady_ns();
    const std::int64_t v = now_ns();
    const std::int64_t after = steady_ns();
    REQUIRE(v >= prev);
    // v was taken between `before` and `after`; allow 50 µs of error.
    worst = std::max({worst, before - v, v - after});
    prev = v;
    ++reads;
    if (after >= until) break;
  }
  INFO("worst distance from steady_clock: " << worst << " ns over " << reads << " reads");
  REQUIRE(worst < 50'000);
}
