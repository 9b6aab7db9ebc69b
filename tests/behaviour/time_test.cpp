// The runtime's clock (include/ember/clock.hpp): ember::now() in and out of
// processes, absolute deadlines for send_after, start_timer and receive,
// and zero delays that deliver at once.  On the manual clock, so every
// time is exact.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::manual_opts;
using ember_test::opts;

namespace {
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

struct a {};
struct b {};
struct c {};


/// What the process saw, and when (on the manual clock).
struct record {
  std::mutex mu;
  std::vector<std::pair<char, nanoseconds>> seen;
  void add(char what, nanoseconds at) {
    std::lock_guard lk(mu);
    seen.emplace_back(what, at);
  }
  std::vector<std::pair<char, nanoseconds>> get() {
    std::lock_guard lk(mu);
    return seen;
  }
};
}  // namespace

TEST_CASE("time: now() reads the runtime's clock in and out of processes", "[time]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  clock->advance(7ms);
  CHECK(ember::now().time_since_epoch() == 7ms);
  CHECK(rt.now().time_since_epoch() == 7ms);
  auto seen = std::make_shared<std::atomic<std::int64_t>>(-1);
  auto p = rt.spawn_monitor([seen] { seen->store(ember::now().time_since_epoch().count()); });
  clock->settle();
  CHECK(p.wait().is_normal());
  CHECK(*seen == nanoseconds(7ms).count());
  CHECK(ember::runtime_clock::now() == ember::now());
}

TEST_CASE("time: on the system clock now() follows steady_clock from the runtime's epoch", "[time]") {
  ember::runtime rt(opts(1));
  const auto before = std::chrono::steady_clock::now();
  const ember::time_point t = rt.now();
  const auto after = std::chrono::steady_clock::now();
  const auto as_steady = rt.epoch() + t.time_since_epoch();
  // Within the fast clock's extrapolation error (well under a millisecond).
  CHECK(as_steady >= before - 1ms);
  CHECK(as_steady <= after + 1ms);
}

TEST_CASE("time: send_after, start_timer and receive take absolute times on the runtime's clock", "[time]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto rec = std::make_shared<record>();
  auto ref_ok = std::make_shared<std::atomic<bool>>(false);
  auto p = rt.spawn_monitor([clock, rec, ref_ok] {
    const ember::time_point t0 = ember::now();
    ember::send_after(ember::self(), t0 + 5ms, a{});
    ember::timer_ref r = ember::start_timer(ember::self(), t0 + 3ms, b{});
    ref_ok->store(ember::read_timer(r) == std::optional<milliseconds>(3ms));
    ember::receive([&](ember::timeout<b> t) { ref_ok->store(ref_ok->load() && t.ref == r); });
    rec->add('b', clock->now());
    ember::receive([](a) {});
    rec->add('a', clock->now());
    // A receive that ends at an absolute time, not after a duration.
    ember::receive([](c) {}, ember::after(t0 + 9ms, [&] { rec->add('t', clock->now()); }));
    // A time already passed: the timer delivers at once, the receive
    // times out at once.
    ember::send_after(ember::self(), t0, c{});
    ember::receive([&](c) { rec->add('c', clock->now()); }, ember::after(0ms, [] { FAIL("not delivered at once"); }));
    ember::receive([](a) {}, ember::after(t0, [&] { rec->add('p', clock->now()); }));
  });
  clock->advance(20ms);
  CHECK(p.wait().is_normal());
  CHECK(ref_ok->load());
  using v = std::vector<std::pair<char, nanoseconds>>;
  CHECK(rec->get() == v{{'b', 3ms}, {'a', 5ms}, {'t', 9ms}, {'c', 9ms}, {'p', 9ms}});
}

TEST_CASE("time: send_after with 0 delivers at once and its reference is never pending", "[time]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto ok = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([ok] {
    ember::timer_ref r = ember::send_after(ember::self(), 0ms, a{});
    ember::send(ember::self(), b{});
    CHECK_FALSE(ember::cancel_timer(r));
    CHECK_FALSE(ember::read_timer(r));
    // Delivered before the send that followed it, with time standing still.
    ember::receive([&](a) { ++*ok; }, [](b) { FAIL("b came first"); });
    ember::receive([&](b) { ++*ok; });
    ember::timer_ref s = ember::start_timer(ember::self(), 0ms, 9);
    ember::receive([&](ember::timeout<int> t) {
      if (t.ref == s && t.msg == 9) ++*ok;
    });
    CHECK_FALSE(s == r);
    // To a name nobody holds: nothing, and no error.
    ember::send_after("nobody", 0ms, a{});
  });
  clock->settle();
  CHECK(p.wait().is_normal());
  CHECK(*ok == 3);
}

TEST_CASE("time: an absolute time more than max_timer_delay ahead is bad_argument — now() with no runtime is an error",
          "[time]") {
  {
    auto clock = std::make_shared<ember::manual_clock>();
    ember::runtime rt(manual_opts(clock));
    auto p = rt.spawn_monitor([] {
      const auto far = ember::now() + ember::max_timer_delay + 1ms;
      CHECK_THROWS_AS(ember::send_after(ember::self(), far, a{}), ember::bad_argument);
      CHECK_THROWS_AS(ember::start_timer(ember::self(), far, a{}), ember::bad_argument);
      ember::send_after(ember::self(), ember::now() + ember::max_timer_delay, a{});  // the limit itself is fine
    });
    clock->settle();
    CHECK(p.wait().is_normal());
  }
  CHECK_THROWS_AS(ember::now(), ember::error);
}
