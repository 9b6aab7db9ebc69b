// Timers — send_after, start_timer, cancel_timer, read_timer (OTP's
// erlang:send_after/3, start_timer/3, cancel_timer/1, read_timer/1) and the
// manual clock that drives them in tests.  The rules are those listed at the
// top of include/ember/timer.hpp and include/ember/clock.hpp: a timer
// delivers once, never early, unless cancelled; a cancel that returns a
// value means the message never arrives, nullopt means it was (or will be)
// delivered; due timers fire in due order (same millisecond: start order);
// a name is looked up when the timer is due; a timer to an exited process is
// dropped; bad delays are bad_argument; a pending timer owns its message.
//
// Most tests run on a manual clock (one worker, deterministic): a process
// starts timers, the test thread moves time with advance()/settle() and,
// the runtime being idle when those return, checks what the processes
// recorded.  A few run on the real clock (cancel precision, short delays,
// and the cancel/expiry race across 4 workers).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::manual_opts;
using ember_test::opts;
using ember_test::scaled;

namespace {
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using steady = std::chrono::steady_clock;

struct fired {
  int id;
};
struct tick {};
struct go {};
struct stop {};


/// What a recorder saw: the ids of the fired{} messages it received, in
/// arrival order, with the clock's time at each arrival.  Written by a
/// process, read by the test thread once the runtime is idle (after
/// advance/settle); the mutex keeps that well defined either way.
struct journal {
  std::mutex mu;
  std::vector<int> ids;
  std::vector<nanoseconds> at;
  void add(int id, nanoseconds t) {
    std::lock_guard lk(mu);
    ids.push_back(id);
    at.push_back(t);
  }
  std::vector<int> id_list() {
    std::lock_guard lk(mu);
    return ids;
  }
  std::vector<nanoseconds> times() {
    std::lock_guard lk(mu);
    return at;
  }
};

/// A process body that records every fired{} it gets (with clock->now())
/// until it gets stop{}.
auto recorder(std::shared_ptr<ember::manual_clock> clock, std::shared_ptr<journal> l) {
  return [clock = std::move(clock), l = std::move(l)] {
    for (;;) {
      bool more = ember::receive([&](fired f) { l->add(f.id, clock->now()); return true; },
                                 [](stop) { return false; });
      if (!more) return;
    }
  };
}

/// A value set by a process and read by the test thread.
template <class T>
struct box {
  std::mutex mu;
  std::optional<T> v;
  void set(T x) {
    std::lock_guard lk(mu);
    v = std::move(x);
  }
  std::optional<T> get() {
    std::lock_guard lk(mu);
    return v;
  }
};

/// A message that counts its live copies, so a test can see the runtime
/// destroyed every message it held (a delivered, cancelled or dropped
/// timer's message, a pending timer's message at runtime teardown).  Pad
/// and NothrowMove choose how a timer keeps it: small and nothrow-movable
/// fits in the timer node itself; big, or possibly throwing on move, goes
/// in a separate envelope.
template <std::size_t Pad, bool NothrowMove>
struct counted_msg {
  std::shared_ptr<std::atomic<long>> live;
  int id;
  std::array<unsigned char, Pad> pad{};
  counted_msg(std::shared_ptr<std::atomic<long>> l, int i) : live(std::move(l)), id(i) { live->fetch_add(1); }
  counted_msg(const counted_msg& o) : live(o.live), id(o.id), pad(o.pad) { live->fetch_add(1); }
  counted_msg(counted_msg&& o) noexcept(NothrowMove) : live(o.live), id(o.id), pad(o.pad) { live->fetch_add(1); }
  counted_msg& operator=(const counted_msg&) = delete;
  counted_msg& operator=(counted_msg&&) = delete;
  ~counted_msg() { live->fetch_sub(1); }
};
using counted = counted_msg<1, true>;         // 24 bytes: kept inside the timer node
using counted_big = counted_msg<100, true>;   // too big for the node: an envelope
using counted_throwing_move = counted_msg<1, false>;  // may throw on move: an envelope

/// A message whose copy throws (its move does not).
template <std::size_t Pad>
struct copy_refused {
  int id;
  std::array<unsigned char, Pad> pad{};
  explicit copy_refused(int i) : id(i) {}
  copy_refused(const copy_refused&) { throw std::runtime_error("copy refused"); }
  copy_refused(copy_refused&&) noexcept = default;
  copy_refused& operator=(const copy_refused&) = delete;
  copy_refused& operator=(copy_refused&&) = delete;
};

/// "Start send_after(to, delay, fired{id})", sent to a starter process.
struct start_cmd {
  ember::pid to;
  nanoseconds delay;
  int id;
};
/// A process body that starts a timer for each start_cmd (in the order the
/// commands arrive) until it gets stop{}.
auto starter() {
  return [] {
    for (;;) {
      bool more = ember::receive(
          [](std::vector<start_cmd> cmds) {
            for (const auto& c : cmds) ember::send_after(c.to, c.delay, fired{c.id});
            return true;
          },
          [](stop) { return false; });
      if (!more) return;
    }
  };
}

/// Wait for a process the test knows has finished; require a normal exit.
void require_normal_exit(ember::runtime::monitored& m) {
  auto r = m.wait();
  INFO("exit reason: " << r);
  REQUIRE(r.is_normal());
}
}  // namespace

// ---- the manual clock ------------------------------------------------------------

TEST_CASE("manual clock: a 55-second send_after fires exactly when advance reaches 55 s, in milliseconds of wall time",
          "[timer]") {
  const auto wall0 = steady::now();
  {
    auto clock = std::make_shared<ember::manual_clock>();
    ember::runtime rt(manual_opts(clock));
    REQUIRE(rt.workers() == 1u);
    auto l = std::make_shared<journal>();
    auto r = rt.spawn(recorder(clock, l));
    auto p = rt.spawn_monitor([r] { ember::send_after(r, 55s, fired{1}); });
    clock->settle();
    require_normal_exit(p);
    REQUIRE(clock->now() == 0ns);

    clock->advance(54'999ms);
    REQUIRE(clock->now() == 54'999ms);
    REQUIRE(l->id_list().empty());  // one millisecond early: not yet

    clock->advance(1ms);
    REQUIRE(clock->now() == 55s);
    REQUIRE(l->id_list() == std::vector<int>{1});
    REQUIRE(l->times() == std::vector<nanoseconds>{55s});

    clock->advance(1h);  // delivered once
    REQUIRE(l->id_list().size() == 1u);
  }
  REQUIRE(steady::now() - wall0 < 2s);
}

TEST_CASE("manual clock: cancel_timer returns exactly the time left, and after it the message never arrives",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto l = std::make_shared<journal>();

  SECTION("55 s timer cancelled after 10 s: 45000 ms left; a 56 s timer beside it still arrives") {
    auto left = std::make_shared<box<std::optional<milliseconds>>>();
    auto again = std::make_shared<box<std::optional<milliseconds>>>();
    auto p = rt.spawn_monitor([clock, l, left, again] {
      auto ref = ember::send_after(ember::self(), 55s, fired{1});
      ember::send_after(ember::self(), 56s, fired{2});  // the control: not cancelled
      ember::receive([](go) {});
      left->set(ember::cancel_timer(ref));
      again->set(ember::cancel_timer(ref));
      recorder(clock, l)();
    });
    clock->settle();
    clock->advance(10s);
    ember::send(p.pid, go{});
    clock->settle();
    REQUIRE(left->get());
    REQUIRE(*left->get() == std::optional<milliseconds>(45'000ms));
    REQUIRE(again->get());
    REQUIRE(*again->get() == std::nullopt);  // cancelled before: nullopt
    clock->advance(100s);
    REQUIRE(l->id_list() == std::vector<int>{2});
    REQUIRE(l->times() == std::vector<nanoseconds>{56s});
    ember::send(p.pid, stop{});
    clock->settle();
    require_normal_exit(p);
  }

  SECTION("a timer due but not yet fired (the wheel ticks at whole ms) cancels with 0 ms left and never arrives") {
    auto ref = std::make_shared<box<ember::timer_ref>>();
    auto r = rt.spawn(recorder(clock, l));
    rt.spawn([r, ref] { ref->set(ember::send_after(r, 4'999'500us, fired{1})); });
    clock->settle();
    clock->advance(4'999'700us);  // past the deadline, before the 5000 ms tick
    REQUIRE(l->id_list().empty());
    REQUIRE(ember::read_timer(*ref->get()) == std::optional<milliseconds>(0ms));
    REQUIRE(ember::cancel_timer(*ref->get()) == std::optional<milliseconds>(0ms));
    clock->advance(10s);
    REQUIRE(l->id_list().empty());
  }
}

TEST_CASE("manual clock: read_timer gives the time left as the clock advances, rounded up, and changes nothing",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto l = std::make_shared<journal>();
  auto ref = std::make_shared<box<ember::timer_ref>>();
  auto r = rt.spawn(recorder(clock, l));
  rt.spawn([r, ref] { ref->set(ember::send_after(r, 55s, fired{1})); });
  clock->settle();
  const ember::timer_ref t = *ref->get();
  using left = std::optional<milliseconds>;

  REQUIRE(ember::read_timer(t) == left(55'000ms));
  REQUIRE(ember::read_timer(t) == left(55'000ms));  // reading twice changes nothing
  clock->advance(10s);
  REQUIRE(ember::read_timer(t) == left(45'000ms));
  clock->advance(250us);
  REQUIRE(ember::read_timer(t) == left(44'999ms + 1ms));  // 44999.75 ms rounds up
  clock->advance(44'998ms + 750us);
  REQUIRE(ember::read_timer(t) == left(1ms));
  clock->advance(500us);
  REQUIRE(ember::read_timer(t) == left(1ms));  // 0.5 ms left rounds up to 1
  REQUIRE(l->id_list().empty());
  clock->advance(500us);
  REQUIRE(clock->now() == 55s);
  REQUIRE(ember::read_timer(t) == left());  // fired
  // All that reading neither moved nor duplicated it.
  REQUIRE(l->id_list() == std::vector<int>{1});
  REQUIRE(l->times() == std::vector<nanoseconds>{55s});
}

TEST_CASE("manual clock: timers due during one advance fire in due order, those due in the same millisecond in start "
          "order",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto l = std::make_shared<journal>();
  auto r = rt.spawn(recorder(clock, l));
  auto s = rt.spawn(starter());

  SECTION("started together, fired by one advance") {
    const std::vector<nanoseconds> delays{30s, 10s, 20s, 10'001ms, 10s, 5ms, 0ms, 20s, 10s, 9'999ms, 65'536ms, 4'096ms};
    std::vector<start_cmd> cmds;
    for (int i = 0; i < int(delays.size()); ++i) cmds.push_back({r, delays[std::size_t(i)], i});
    ember::send(s, std::move(cmds));
    clock->settle();
    clock->advance(70s);
    std::vector<int> expected(delays.size());
    std::iota(expected.begin(), expected.end(), 0);
    std::stable_sort(expected.begin(), expected.end(),
                     [&](int a, int b) { return delays[std::size_t(a)] < delays[std::size_t(b)]; });
    REQUIRE(l->id_list() == expected);
    std::vector<nanoseconds> due;
    for (int id : expected) due.push_back(delays[std::size_t(id)]);
    REQUIRE(l->times() == due);  // each at exactly its due time
  }

  SECTION("started at different times (different wheel levels), all due at 10 s") {
    ember::send(s, std::vector<start_cmd>{{r, 10s, 100}});
    clock->settle();
    clock->advance(9'000ms);
    ember::send(s, std::vector<start_cmd>{{r, 1'000ms, 101}, {r, 1'001ms, 102}});
    clock->settle();
    clock->advance(990ms);
    ember::send(s, std::vector<start_cmd>{{r, 10ms, 103}, {r, 9ms, 104}});
    clock->settle();
    REQUIRE(l->id_list().empty());
    clock->advance(60s);
    REQUIRE(l->id_list() == std::vector<int>{104, 100, 101, 103, 102});
    REQUIRE(l->times() == std::vector<nanoseconds>{9'999ms, 10s, 10s, 10s, 10'001ms});
  }

  SECTION("random delays started in rounds: arrival order is (due time, start order), each at its due time") {
    std::mt19937 rng(12345);
    struct started {
      nanoseconds due;
      int seq;
    };
    std::vector<started> all;
    int seq = 0;
    for (int round = 0; round < 20; ++round) {
      std::vector<start_cmd> cmds;
      for (int i = 0; i < 100; ++i) {
        // Whole ms, many collisions, reaching wheel levels 0..2.
        const milliseconds d(rng() % 4 == 0 ? rng() % 64 : rng() % 70'000);
        cmds.push_back({r, d, seq});
        all.push_back({clock->now() + d, seq});
        ++seq;
      }
      ember::send(s, std::move(cmds));
      clock->settle();
      clock->advance(milliseconds(rng() % 3'000));  // some fire between rounds
    }
    clock->advance(80s);
    std::stable_sort(all.begin(), all.end(), [](const started& a, const started& b) { return a.due < b.due; });
    std::vector<int> expected;
    std::vector<nanoseconds> due;
    for (const auto& x : all) expected.push_back(x.seq), due.push_back(x.due);
    REQUIRE(l->id_list() == expected);
    REQUIRE(l->times() == due);
  }
}

TEST_CASE("manual clock: a process that re-arms a timer each time it fires sees every step inside one advance",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto seen = std::make_shared<journal>();
  auto ticker = rt.spawn_monitor([clock, seen] {
    int n = 0;
    ember::send_after(ember::self(), 1s, tick{});
    for (;;) {
      bool more = ember::receive(
          [&](tick) {
            seen->add(++n, clock->now());
            ember::send_after(ember::self(), 1s, tick{});
            return true;
          },
          [](stop) { return false; });
      if (!more) return;
    }
  });
  clock->settle();
  clock->advance(10s);
  REQUIRE(clock->now() == 10s);
  REQUIRE(seen->id_list() == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  REQUIRE(seen->times() == std::vector<nanoseconds>{1s, 2s, 3s, 4s, 5s, 6s, 7s, 8s, 9s, 10s});
  clock->advance(999ms);
  REQUIRE(seen->id_list().size() == 10u);
  clock->advance(1ms);
  REQUIRE(seen->id_list().size() == 11u);
  ember::send(ticker.pid, stop{});
  clock->settle();
  require_normal_exit(ticker);
}

TEST_CASE("manual clock: receive's after() runs on the manual clock, and settle() runs the runtime without moving "
          "time",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));

  SECTION("after(5s) does not time out at 4999 ms and does at 5000 ms") {
    auto result = std::make_shared<box<std::pair<int, nanoseconds>>>();
    auto p = rt.spawn_monitor([clock, result] {
      int r = ember::receive([](fired) { return 1; }, ember::after(5s, [] { return 2; }));
      result->set({r, clock->now()});
    });
    clock->settle();
    REQUIRE(!result->get());
    clock->advance(4'999ms);
    REQUIRE(!result->get());
    clock->advance(1ms);
    REQUIRE(result->get() == std::optional<std::pair<int, nanoseconds>>({2, 5s}));
    require_normal_exit(p);
  }

  SECTION("messages the receive does not take neither end nor extend its timeout") {
    auto result = std::make_shared<box<std::pair<int, nanoseconds>>>();
    auto p = rt.spawn_monitor([clock, result] {
      int r = ember::receive([](fired) { return 1; }, ember::after(5s, [] { return 2; }));
      result->set({r, clock->now()});
    });
    clock->settle();
    for (auto step : {1'000ms, 1'000ms, 2'999ms}) {  // woken at 1 s, 2 s and 4.999 s by a stranger
      clock->advance(step);
      ember::send(p.pid, go{});
      clock->settle();
      REQUIRE(!result->get());
    }
    clock->advance(1ms);
    REQUIRE(result->get() == std::optional<std::pair<int, nanoseconds>>({2, 5s}));
    require_normal_exit(p);
  }

  SECTION("a message before the deadline wins; the timeout armed by that receive never fires later") {
    auto result = std::make_shared<box<std::vector<int>>>();
    auto p = rt.spawn_monitor([result] {
      std::vector<int> got;
      got.push_back(ember::receive([](fired f) { return f.id; }, ember::after(5s, [] { return -1; })));
      // Its 5 s timeout was cancelled on return: this 10 s receive ends at 13 s, not woken at 5 s.
      got.push_back(ember::receive([](fired f) { return f.id; }, ember::after(10s, [] { return -2; })));
      result->set(got);
    });
    clock->settle();
    clock->advance(3s);
    ember::send(p.pid, fired{7});
    clock->settle();
    clock->advance(9'999ms);  // 12.999 s
    REQUIRE(!result->get());
    clock->advance(1ms);
    REQUIRE(result->get() == std::optional<std::vector<int>>({7, -2}));
    require_normal_exit(p);
  }

  SECTION("settle runs every process that can run and fires what is due now, but not what is due later") {
    clock->advance(1s);
    auto hops = std::make_shared<std::atomic<int>>(0);
    auto l = std::make_shared<journal>();
    auto r = rt.spawn(recorder(clock, l));
    // A ring of 50 processes passing a token 1000 hops, and timers of 0 ms and 1 ms.
    rt.spawn([hops, r] {
      ember::send_after(r, 0ms, fired{0});
      ember::send_after(r, 1ms, fired{1});
      const ember::pid me = ember::self();
      std::vector<ember::pid> ring;
      for (int i = 0; i < 50; ++i)
        ring.push_back(ember::spawn([hops, me] {
          const auto next = ember::receive<ember::pid>();
          for (;;) {
            const int left = ember::receive<int>();
            hops->fetch_add(1);
            if (left == 0) return ember::send(me, stop{});
            ember::send(next, left - 1);
          }
        }));
      for (int i = 0; i < 50; ++i) ember::send(ring[std::size_t(i)], ring[std::size_t((i + 1) % 50)]);
      ember::send(ring[0], 999);
      ember::receive([](stop) {});
    });
    clock->settle();
    REQUIRE(clock->now() == 1s);  // time did not move
    REQUIRE(hops->load() == 1000);
    REQUIRE(l->id_list() == std::vector<int>{0});  // due now: fired; due in 1 ms: not
    clock->advance(1ms);
    REQUIRE(l->id_list() == std::vector<int>{0, 1});
  }
}

// ---- cancel, read, start_timer -----------------------------------------------------

TEST_CASE("timers: cancelling a timer that already fired, or twice, or a null ref returns nullopt", "[timer]") {
  SECTION("real clock: fired and received, then cancelled") {
    in_process(1, [] {
      auto ref = ember::send_after(ember::self(), 1ms, fired{7});
      int id = ember::receive([](fired f) { return f.id; }, ember::after(5s, [] { return -1; }));
      REQUIRE(id == 7);
      REQUIRE(!ember::cancel_timer(ref));
      REQUIRE(!ember::read_timer(ref));
      // Cancel twice: a value, then nullopt.
      auto ref2 = ember::send_after(ember::self(), 10s, fired{8});
      auto first = ember::cancel_timer(ref2);
      REQUIRE(first);
      REQUIRE(*first <= 10s);
      REQUIRE(*first > 9s);
      REQUIRE(!ember::cancel_timer(ref2));
      REQUIRE(!ember::read_timer(ref2));
      // A null ref, inside a process.
      REQUIRE(!ember::cancel_timer(ember::timer_ref{}));
      REQUIRE(!ember::read_timer(ember::timer_ref{}));
    });
    // ...and outside any process.
    REQUIRE(!ember::cancel_timer(ember::timer_ref{}));
    REQUIRE(!ember::read_timer(ember::timer_ref{}));
  }

  SECTION("manual clock: fired but not yet received: nullopt, and the message is still delivered") {
    auto clock = std::make_shared<ember::manual_clock>();
    ember::runtime rt(manual_opts(clock));
    auto ref = std::make_shared<box<ember::timer_ref>>();
    auto got = std::make_shared<box<int>>();
    auto p = rt.spawn_monitor([ref, got] {
      ref->set(ember::send_after(ember::self(), 1s, fired{9}));
      ember::receive([](go) {});  // the fired message waits in the mailbox meanwhile
      got->set(ember::receive([](fired f) { return f.id; }, ember::after(0ms, [] { return -1; })));
    });
    clock->settle();
    clock->advance(1s);
    REQUIRE(!ember::cancel_timer(*ref->get()));
    REQUIRE(!ember::cancel_timer(*ref->get()));
    REQUIRE(!ember::read_timer(*ref->get()));
    ember::send(p.pid, go{});
    clock->settle();
    REQUIRE(got->get() == std::optional<int>(9));
    require_normal_exit(p);
  }
}

TEST_CASE("timers: start_timer delivers timeout<T>{ref, msg} with the ref start_timer returned", "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  struct seen {
    bool refs_distinct = false;
    std::optional<milliseconds> cancelled;
    std::vector<std::string> msgs;
    std::vector<bool> ref_matches;
    bool cancelled_one_arrived = true;
  };
  auto out = std::make_shared<box<seen>>();
  auto p = rt.spawn_monitor([out] {
    seen s;
    auto two = ember::start_timer(ember::self(), 2s, std::string("two"));
    auto one = ember::start_timer(ember::self(), 1s, std::string("one"));
    auto three = ember::start_timer(ember::self(), 3s, 42);
    s.refs_distinct = !(two == one) && !(one == three) && !(two == three) && !(one == ember::timer_ref{});
    s.cancelled = ember::cancel_timer(three);
    for (int i = 0; i < 2; ++i) {
      auto t = ember::receive<ember::timeout<std::string>>();
      s.msgs.push_back(t.msg);
      s.ref_matches.push_back(t.ref == (t.msg == "one" ? one : two));
    }
    s.cancelled_one_arrived =
        ember::receive([](ember::timeout<int>) { return true; }, ember::after(10s, [] { return false; }));
    out->set(std::move(s));
  });
  clock->settle();
  clock->advance(2s);
  clock->advance(10s);
  auto s = out->get();
  REQUIRE(s);
  REQUIRE(s->refs_distinct);
  REQUIRE(s->cancelled == std::optional<milliseconds>(3'000ms));
  REQUIRE(s->msgs == std::vector<std::string>{"one", "two"});
  REQUIRE(s->ref_matches == std::vector<bool>{true, true});
  REQUIRE(!s->cancelled_one_arrived);
  require_normal_exit(p);
}

// ---- destinations --------------------------------------------------------------------

TEST_CASE("timers: send_after to a name looks the name up when the timer is due", "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto l = std::make_shared<journal>();
  auto other = std::make_shared<journal>();

  SECTION("registered after the timer started, before it is due: delivered") {
    rt.spawn([] {
      ember::send_after("late", 5s, fired{1});
      ember::start_timer("late", 5s, 2);
    });
    clock->settle();
    clock->advance(1s);
    REQUIRE(!rt.whereis("late"));
    auto got_timeout = std::make_shared<std::atomic<bool>>(false);
    auto r = rt.spawn([clock, l, got_timeout] {
      auto t = ember::receive<ember::timeout<int>>();
      got_timeout->store(t.msg == 2);
      recorder(clock, l)();
    });
    rt.register_name("late", r);
    clock->advance(4s);
    REQUIRE(l->id_list() == std::vector<int>{1});
    REQUIRE(l->times() == std::vector<nanoseconds>{5s});
    REQUIRE(got_timeout->load());
  }

  SECTION("the name moved to another process before the timer was due: the new holder gets it") {
    auto a = rt.spawn(recorder(clock, other));
    auto b = rt.spawn(recorder(clock, l));
    rt.register_name("mover", a);
    rt.spawn([] { ember::send_after("mover", 5s, fired{2}); });
    clock->settle();
    clock->advance(2s);
    REQUIRE(rt.unregister_name("mover"));
    rt.register_name("mover", b);
    clock->advance(3s);
    REQUIRE(l->id_list() == std::vector<int>{2});
    REQUIRE(other->id_list().empty());
  }

  SECTION("nobody holds the name when due: nothing is delivered, and nothing fails") {
    auto g = rt.spawn_monitor([] { ember::receive([](go) {}); });
    rt.register_name("ghost", g.pid);
    auto starter_done = std::make_shared<std::atomic<bool>>(false);
    auto p = rt.spawn_monitor([clock, l, starter_done] {
      ember::send_after("ghost", 5s, fired{3});
      ember::send_after(ember::self(), 5s, fired{4});  // the control: due in the same tick
      starter_done->store(ember::receive([](fired f) { return f.id; }) == 4);
      ember::receive([](stop) {});
    });
    clock->settle();
    ember::send(g.pid, go{});  // the holder exits: the name is released
    clock->settle();
    require_normal_exit(g);
    REQUIRE(!rt.whereis("ghost"));
    clock->advance(5s);
    REQUIRE(starter_done->load());
    // Registered after the due time: it must not get the message either.
    auto h = rt.spawn(recorder(clock, l));
    rt.register_name("ghost", h);
    clock->advance(10s);
    REQUIRE(l->id_list().empty());
    ember::send(p.pid, stop{});
    clock->settle();
    require_normal_exit(p);
  }
}

TEST_CASE("timers: a timer to a process that has exited is dropped, even when its control block is reused",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto live_log = std::make_shared<journal>();
  auto reuse_log = std::make_shared<journal>();
  auto live_msgs = std::make_shared<std::atomic<long>>(0);
  auto reused = std::make_shared<std::atomic<bool>>(false);
  auto p = rt.spawn_monitor([clock, live_log, reuse_log, live_msgs, reused] {
    auto live = ember::spawn(recorder(clock, live_log));
    auto target = ember::spawn([] { ember::receive([](go) {}); });
    auto mon = ember::monitor(target);
    ember::send_after(target, 5s, counted(live_msgs, 1));
    ember::send_after(target, 5s, fired{1});
    ember::send_after(live, 5s, fired{2});
    ember::send(target, go{});
    ember::receive(ember::when([&](const ember::down& d) { return d.ref == mon; }, [](ember::down) {}));
    // New processes: spawned on this worker right after the exit, the first
    // takes the exited process's control block (pid::block()).  They must
    // not get the exited process's timers.
    for (int i = 0; i < 8; ++i) {
      auto q = ember::spawn(recorder(clock, reuse_log));
      if (q.block() == target.block()) reused->store(true);
    }
    ember::receive([](stop) {});
  });
  clock->settle();
  REQUIRE(reused->load());  // precondition: the scenario really reuses the block
  REQUIRE(live_msgs->load() == 1);  // held by the pending timer
  clock->advance(5s);
  REQUIRE(live_log->id_list() == std::vector<int>{2});
  REQUIRE(live_log->times() == std::vector<nanoseconds>{5s});
  REQUIRE(reuse_log->id_list().empty());
  REQUIRE(live_msgs->load() == 0);  // the dropped message was destroyed
  ember::send(p.pid, stop{});
  clock->settle();
  require_normal_exit(p);
}

TEMPLATE_TEST_CASE("timers: a pending timer owns its message, destroyed once it is delivered, cancelled, dropped or "
                   "the runtime stops",
                   "[timer]", counted, counted_big, counted_throwing_move) {
  using msg = TestType;
  auto live = std::make_shared<std::atomic<long>>(0);
  auto received = std::make_shared<std::atomic<int>>(0);
  auto to_cancel_outside = std::make_shared<box<std::vector<ember::timer_ref>>>();
  {
    auto clock = std::make_shared<ember::manual_clock>();
    ember::runtime rt(manual_opts(clock));
    auto dead = rt.spawn_monitor([] {});
    clock->settle();
    require_normal_exit(dead);
    auto p = rt.spawn_monitor([live, received, to_cancel_outside, dead = dead.pid] {
      ember::register_name("owner", ember::self());
      std::vector<ember::timer_ref> mine, outside;
      for (int i = 0; i < 10; ++i) {
        ember::send_after(ember::self(), 1s, msg(live, i));                 // delivered
        ember::start_timer(ember::self(), 1s, msg(live, 100 + i));          // delivered, wrapped
        ember::send_after("owner", 1s, msg(live, 200 + i));                 // delivered by name
        mine.push_back(ember::send_after(ember::self(), 2s, msg(live, 300 + i)));  // cancelled here
        outside.push_back(ember::send_after(ember::self(), 3s, msg(live, 400 + i)));  // cancelled by the test
        ember::send_after(dead, 1s, msg(live, 500 + i));                    // dropped: exited process
        ember::send_after("nobody", 1s, msg(live, 600 + i));                // dropped: no such name
        ember::start_timer("nobody", 1s, msg(live, 700 + i));               // dropped: no such name
        ember::send_after(ember::self(), 100s, msg(live, 800 + i));         // pending at shutdown
      }
      to_cancel_outside->set(outside);
      ember::receive([](go) {});
      for (auto& r : mine) REQUIRE(ember::cancel_timer(r));
      for (;;) {
        bool more = ember::receive([&](msg) { return true; }, [&](ember::timeout<msg>) { return true; },
                                   [](stop) { return false; });
        if (!more) break;
        received->fetch_add(1);
      }
      ember::receive([](go) {});
    });
    clock->settle();
    REQUIRE(live->load() == 90);  // only the timers hold messages now
    ember::send(p.pid, go{});
    clock->settle();
    REQUIRE(live->load() == 80);  // cancelled in the process: destroyed
    auto outside = to_cancel_outside->get();  // (a named copy: the range must outlive the loop)
    REQUIRE(outside);
    for (auto& r : *outside) REQUIRE(ember::cancel_timer(r));
    clock->advance(5s);
    REQUIRE(received->load() == 30);
    // Left: only the ten 100 s timers (delivered ones were consumed;
    // cancelled and dropped ones destroyed).
    REQUIRE(live->load() == 10);
    ember::send(p.pid, stop{});
    clock->settle();
  }
  REQUIRE(live->load() == 0);  // the runtime destroyed the pending timers' messages
}

TEMPLATE_TEST_CASE("timers: when copying the message throws, the exception propagates and no timer is started",
                   "[timer]", copy_refused<1>, copy_refused<100>) {
  using msg = TestType;
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto arrived = std::make_shared<std::atomic<int>>(0);
  auto threw = std::make_shared<std::atomic<int>>(0);
  auto after_ref = std::make_shared<box<ember::timer_ref>>();
  rt.spawn([arrived, threw, after_ref] {
    const msg m(1);
    for (int i = 0; i < 100; ++i) {
      try {
        ember::send_after(ember::self(), 1s, m);
      } catch (const std::runtime_error&) {
        threw->fetch_add(1);
      }
      try {
        ember::start_timer(ember::self(), 1s, m);
      } catch (const std::runtime_error&) {
        threw->fetch_add(1);
      }
      try {
        ember::send_after("me", 1s, m);
      } catch (const std::runtime_error&) {
        threw->fetch_add(1);
      }
    }
    ember::register_name("me", ember::self());
    // Timers started after the refused ones work as usual.
    after_ref->set(ember::send_after(ember::self(), 2s, msg(2)));
    for (;;) {
      ember::receive([&](msg x) { arrived->fetch_add(x.id == 2 ? 1000 : 1); },
                     [&](ember::timeout<msg>) { arrived->fetch_add(1); });
    }
  });
  clock->settle();
  REQUIRE(threw->load() == 300);
  REQUIRE(ember::read_timer(*after_ref->get()) == std::optional<milliseconds>(2'000ms));
  clock->advance(10s);
  REQUIRE(arrived->load() == 1000);  // only the later timer's message
}

// ---- arguments and misuse ------------------------------------------------------------

TEST_CASE("timers: delays outside 0..max_timer_delay are bad_argument, starting outside a process is "
          "not_in_process, cancel/read work from any thread",
          "[timer]") {
  SECTION("bad delays and names") {
    in_process(1, [] {
      const auto me = ember::self();
      REQUIRE_THROWS_AS(ember::send_after(me, -1ms, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after(me, -1ns, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after(me, ember::max_timer_delay + 1ms, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after(me, ember::max_timer_delay + 1ns, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after(me, std::chrono::hours(24 * 50), fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::start_timer(me, -1s, 0), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::start_timer(me, ember::max_timer_delay + 1ms, 0), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after("some_name", -1ms, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::send_after("", 1ms, fired{0}), ember::bad_argument);
      REQUIRE_THROWS_AS(ember::start_timer("", 1ms, 0), ember::bad_argument);
      REQUIRE_THROWS_WITH(ember::send_after(me, -1ms, fired{0}), Catch::Contains("send_after") &&
                                                                     Catch::Contains("4294967295"));
      // The limits themselves are accepted.
      auto longest = ember::send_after(me, ember::max_timer_delay, fired{1});
      auto left = ember::cancel_timer(longest);
      REQUIRE(left);
      REQUIRE(*left <= ember::max_timer_delay);
      REQUIRE(*left > ember::max_timer_delay - 1s);
      ember::send_after(me, 0ms, fired{2});
      REQUIRE(ember::receive([](fired f) { return f.id; }, ember::after(5s, [] { return -1; })) == 2);
    });
  }

  SECTION("starting a timer outside a process throws not_in_process") {
    ember::runtime rt(opts(1));
    auto p = rt.spawn([] { ember::receive([](stop) {}); });
    REQUIRE_THROWS_AS(ember::send_after(p, 1s, fired{0}), ember::not_in_process);
    REQUIRE_THROWS_AS(ember::start_timer(p, 1s, 0), ember::not_in_process);
    REQUIRE_THROWS_AS(ember::send_after("name", 1s, fired{0}), ember::not_in_process);
    ember::send(p, stop{});
  }

  SECTION("cancel_timer/read_timer from the test thread on a ref a process handed over") {
    auto clock = std::make_shared<ember::manual_clock>();
    ember::runtime rt(manual_opts(clock));
    auto l = std::make_shared<journal>();
    auto ref = std::make_shared<box<ember::timer_ref>>();
    auto r = rt.spawn(recorder(clock, l));
    rt.spawn([r, ref] {
      ref->set(ember::send_after(r, 55s, fired{1}));
      ember::send_after(r, 56s, fired{2});  // the control
    });
    clock->settle();
    const auto t = *ref->get();
    REQUIRE(ember::read_timer(t) == std::optional<milliseconds>(55'000ms));
    clock->advance(5s);
    REQUIRE(ember::read_timer(t) == std::optional<milliseconds>(50'000ms));
    REQUIRE(ember::cancel_timer(t) == std::optional<milliseconds>(50'000ms));
    REQUIRE(!ember::cancel_timer(t));
    REQUIRE(!ember::read_timer(t));
    clock->advance(60s);
    REQUIRE(l->id_list() == std::vector<int>{2});
  }
}

TEST_CASE("manual clock: one worker only, one runtime at a time, and advance only from outside its runtime's "
          "processes",
          "[timer]") {
  auto clock = std::make_shared<ember::manual_clock>();

  SECTION("workers = 2 is invalid_option; 0 and 1 give one worker") {
    auto o = manual_opts(clock);
    o.workers = 2;
    REQUIRE_THROWS_AS(ember::runtime(o), ember::invalid_option);
    o.workers = 0;
    {
      ember::runtime rt(o);
      REQUIRE(rt.workers() == 1u);
    }
    o.workers = 1;
    ember::runtime rt(o);
    REQUIRE(rt.workers() == 1u);
  }

  SECTION("a second runtime on the same clock is invalid_option while the first lives; afterwards it is fine") {
    {
      ember::runtime first(manual_opts(clock));
      REQUIRE_THROWS_AS(ember::runtime(manual_opts(clock)), ember::invalid_option);
      clock->advance(1s);  // the first still works
      REQUIRE(clock->now() == 1s);
    }
    ember::runtime second(manual_opts(clock));
    auto l = std::make_shared<journal>();
    auto r = second.spawn(recorder(clock, l));
    second.spawn([r] { ember::send_after(r, 1s, fired{1}); });
    clock->settle();
    clock->advance(1s);
    REQUIRE(l->id_list() == std::vector<int>{1});
    REQUIRE(l->times() == std::vector<nanoseconds>{2s});
  }

  SECTION("advance and settle with no runtime throw ember::error") {
    REQUIRE_THROWS_AS(clock->advance(1s), ember::error);
    REQUIRE_THROWS_AS(clock->settle(), ember::error);
    { ember::runtime rt(manual_opts(clock)); }
    REQUIRE_THROWS_AS(clock->advance(1s), ember::error);  // its runtime is gone
    REQUIRE(clock->now() == 0ns);
  }

  SECTION("a negative advance is bad_argument") {
    ember::runtime rt(manual_opts(clock));
    REQUIRE_THROWS_AS(clock->advance(-1ms), ember::bad_argument);
    REQUIRE(clock->now() == 0ns);
  }

  SECTION("advance from inside one of the runtime's processes throws ember::error") {
    ember::runtime rt(manual_opts(clock));
    auto p = rt.spawn_monitor([clock] {
      try {
        clock->advance(1s);
      } catch (const ember::error& e) {
        ember::exit(ember::exit_reason::error(std::string("caught ember::error: ") + e.what()));
      }
    });
    auto r = p.wait();
    INFO("exit reason: " << r);
    REQUIRE(r.what() == ember::exit_reason::kind::error);
    REQUIRE_THAT(r.text(), Catch::StartsWith("caught ember::error: ") &&
                               Catch::Contains("must not be called from inside"));
    auto q = rt.spawn_monitor([clock] { clock->settle(); });
    auto rq = q.wait();
    REQUIRE(rq.what() == ember::exit_reason::kind::error);
    REQUIRE(clock->now() == 0ns);
  }
}

// ---- the real clock ----------------------------------------------------------------

TEST_CASE("timers: real clock: an immediate cancel returns the delay to within 1 ms", "[timer]") {
  in_process(1, [] {
    int fast = 0;
    for (int i = 0; i < 1000; ++i) {
      const auto t0 = steady::now();
      auto ref = ember::send_after(ember::self(), 10s, fired{i});
      auto left = ember::cancel_timer(ref);
      const auto elapsed = steady::now() - t0;
      REQUIRE(left);
      // The timer started after t0 and was cancelled before t0 + elapsed,
      // and the result is rounded up: 10 s - elapsed <= left <= 10 s.
      REQUIRE(*left <= 10s);
      REQUIRE(*left >= 10s - elapsed);
      if (elapsed < 1ms) {  // the usual case (not preempted in between)
        ++fast;
        REQUIRE(*left >= 9'999ms);
      }
    }
    REQUIRE(fast > 0);
  });
}

TEST_CASE("timers: real clock: a short timer arrives, and not before its delay", "[timer]") {
  const unsigned workers = GENERATE(1u, 4u);
  in_process(workers, [] {
    int id = 0;
    for (milliseconds d : {0ms, 1ms, 5ms, 20ms}) {
      const auto t0 = steady::now();
      ember::send_after(ember::self(), d, fired{++id});
      const int want = id;
      const bool got = ember::receive(ember::when([&](const fired& f) { return f.id == want; }, [](fired) { return true; }),
                                      ember::after(5s, [] { return false; }));
      const auto elapsed = steady::now() - t0;
      INFO("delay " << d.count() << " ms");
      REQUIRE(got);
      REQUIRE(elapsed >= d);
    }
    // start_timer, and a receive timeout, on the real clock.
    auto t0 = steady::now();
    auto ref = ember::start_timer(ember::self(), 20ms, std::string("x"));
    auto t = ember::receive([](ember::timeout<std::string> m) { return std::optional(m); },
                            ember::after(5s, [] { return std::optional<ember::timeout<std::string>>(); }));
    REQUIRE(t);
    REQUIRE(t->ref == ref);
    REQUIRE(steady::now() - t0 >= 20ms);
    t0 = steady::now();
    REQUIRE(ember::receive([](fired) { return false; }, ember::after(20ms, [] { return true; })));
    REQUIRE(steady::now() - t0 >= 20ms);
  });
}

namespace {
/// The cancel/expiry race (below): one batch of timers a starter started.
struct race_batch {
  std::chrono::steady_clock::time_point started;
  std::vector<std::pair<ember::timer_ref, int>> to_cancel;  // the canceller cancels these
  std::vector<int> kept;                                    // never cancelled: must arrive
  std::vector<int> cancelled;                               // the starter cancelled these itself
  std::vector<int> too_late;                                // the starter's cancels that returned nullopt
  ember::pid starter;
};
struct batch_done {};
struct race_finished {};
struct race_report {
  std::size_t cancelled = 0, too_late = 0, kept = 0, arrived = 0;
  std::size_t forbidden = 0, missing = 0, duplicate = 0, unknown = 0;
};

/// Spin (without yielding) until `until`: the cancels land at random
/// moments that overlap the timers' due times.  Not a wait for an event.
void spin_until(steady::time_point until) {
  while (steady::now() < until) {
  }
}

/// Receives the starter's batches and fired{} messages (every timer of the
/// pair is addressed to it), cancels the batch's timers at random moments,
/// and at the end checks every id against the rule.
void race_canceller(ember::pid root, int base, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  // 0: unknown, 1: must arrive, 2: must never arrive.
  std::vector<std::uint8_t> fate(n, 0);
  std::vector<std::uint8_t> arrivals(n, 0);
  race_report rep;
  auto on_fired = [&](fired f) {
    const auto i = std::size_t(f.id - base);
    if (i >= n) ++rep.unknown;
    else if (arrivals[i]++ == 0) ++rep.arrived;
    else ++rep.duplicate;
  };
  for (;;) {
    bool more = ember::receive(
        [&](fired f) {
          on_fired(f);
          return true;
        },
        [&](race_batch b) {
          for (int id : b.kept) fate[std::size_t(id - base)] = 1, ++rep.kept;
          for (int id : b.cancelled) fate[std::size_t(id - base)] = 2, ++rep.cancelled;
          for (int id : b.too_late) fate[std::size_t(id - base)] = 1, ++rep.too_late;
          std::vector<steady::duration> at;
          for (std::size_t i = 0; i < b.to_cancel.size(); ++i) at.push_back(std::chrono::nanoseconds(rng() % 2'000'000));
          std::sort(at.begin(), at.end());
          for (std::size_t i = 0; i < b.to_cancel.size(); ++i) {
            spin_until(b.started + at[i]);
            auto [ref, id] = b.to_cancel[i];
            if (ember::cancel_timer(ref)) fate[std::size_t(id - base)] = 2, ++rep.cancelled;
            else fate[std::size_t(id - base)] = 1, ++rep.too_late;
          }
          ember::send(b.starter, batch_done{});
          return true;
        },
        [](race_finished) { return false; });
    if (!more) break;
  }
  // Every message that must arrive: wait for the ones still missing (the
  // 5 s is a failure guard).
  std::size_t expected = 0, have = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (fate[i] == 1) ++expected, have += arrivals[i] != 0;
  while (have < expected) {
    const int r = ember::receive(
        [&](fired f) {
          const auto i = std::size_t(f.id - base);
          const bool counts = i < n && fate[i] == 1 && arrivals[i] == 0;
          on_fired(f);
          return counts ? 1 : 0;
        },
        ember::after(5s, [] { return -1; }));
    if (r < 0) break;  // the guard expired: what is missing is reported
    have += std::size_t(r);
  }
  // A late forbidden delivery would come now, if at all: 50 ms is only a
  // guard to catch one, not a synchronisation.
  while (ember::receive([&](fired f) { on_fired(f); return true; }, ember::after(50ms, [] { return false; }))) {
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (fate[i] == 2 && arrivals[i]) ++rep.forbidden;
    if (fate[i] == 1 && !arrivals[i]) ++rep.missing;
    if (fate[i] == 0) ++rep.unknown;
  }
  ember::send(root, rep);
}

/// Starts batches of timers (0-2 ms, to the canceller), keeps some, cancels
/// some itself (yielding in between), hands the rest to the canceller.
void race_starter(ember::pid canceller, int base, std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  constexpr std::size_t batch_size = 512;
  for (std::size_t next = 0; next < n;) {
    race_batch b;
    b.starter = ember::self();
    b.started = steady::now();
    std::vector<std::pair<ember::timer_ref, int>> mine;
    for (std::size_t k = 0; k < batch_size && next < n; ++k, ++next) {
      const int id = base + int(next);
      auto ref = ember::send_after(canceller, std::chrono::nanoseconds(rng() % 2'000'001), fired{id});
      switch (rng() % 4) {
        case 0: mine.emplace_back(ref, id); break;
        case 1: b.kept.push_back(id); break;
        default: b.to_cancel.emplace_back(ref, id); break;
      }
    }
    for (auto [ref, id] : mine) {
      for (unsigned y = rng() % 3; y > 0; --y) ember::yield();
      if (ember::cancel_timer(ref)) b.cancelled.push_back(id);
      else b.too_late.push_back(id);
    }
    ember::send(canceller, std::move(b));
    // While this waits, its worker fires the batch's timers as the
    // canceller (usually on another worker) cancels them.
    ember::receive([](batch_done) {});
  }
  ember::send(canceller, race_finished{});
}
}  // namespace

TEST_CASE("timers: cancel vs expiry across 4 workers: a cancel that returned a value means the message never "
          "arrives, nullopt means it does",
          "[timer]") {
  const std::size_t total = scaled(100'000, 20'000);
  constexpr int pairs = 4;
  const std::size_t per_pair = total / pairs;
  in_process(4, [per_pair] {
    const ember::pid root = ember::self();
    for (int k = 0; k < pairs; ++k) {
      const int base = k * int(per_pair);
      auto c = ember::spawn([root, base, per_pair, k] { race_canceller(root, base, per_pair, 1000u + unsigned(k)); });
      ember::spawn([c, base, per_pair, k] { race_starter(c, base, per_pair, 2000u + unsigned(k)); });
    }
    race_report sum;
    for (int k = 0; k < pairs; ++k) {
      auto r = ember::receive([](race_report x) { return std::optional(x); },
                              ember::after(60s, [] { return std::optional<race_report>(); }));
      REQUIRE(r);  // failure guard: a pair never reported
      sum.cancelled += r->cancelled, sum.too_late += r->too_late, sum.kept += r->kept, sum.arrived += r->arrived;
      sum.forbidden += r->forbidden, sum.missing += r->missing, sum.duplicate += r->duplicate,
          sum.unknown += r->unknown;
    }
    INFO("cancelled " << sum.cancelled << ", too late " << sum.too_late << ", kept " << sum.kept << ", arrived "
                      << sum.arrived);
    REQUIRE(sum.cancelled + sum.too_late + sum.kept == pairs * per_pair);
    REQUIRE(sum.forbidden == 0);  // cancelled, yet delivered
    REQUIRE(sum.missing == 0);    // cancel said "fired" (or never cancelled), yet not delivered
    REQUIRE(sum.duplicate == 0);
    REQUIRE(sum.unknown == 0);
    REQUIRE(sum.arrived == sum.too_late + sum.kept);
    // Both outcomes of the race happened, so the race was really run.
    REQUIRE(sum.cancelled > 0);
    REQUIRE(sum.too_late > 0);
  });
}

TEST_CASE("timers: a million timers started and cancelled leave nothing behind", "[timer]") {
  const std::size_t n = scaled(1'000'000, 100'000);
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto live_msgs = std::make_shared<std::atomic<long>>(0);
  auto held_after_start = std::make_shared<std::atomic<long>>(-1);
  auto wrong = std::make_shared<std::atomic<std::size_t>>(0);
  auto arrived = std::make_shared<std::atomic<long>>(-1);
  auto p = rt.spawn_monitor([n, live_msgs, held_after_start, wrong, arrived] {
    std::vector<ember::timer_ref> refs(n);
    auto delay_of = [](std::size_t i) { return milliseconds(1 + (i * 7919) % 10'000); };
    for (std::size_t i = 0; i < n; ++i)
      refs[i] = ember::send_after(ember::self(), delay_of(i), counted(live_msgs, int(i)));
    held_after_start->store(live_msgs->load());
    // Cancel in a scrambled order (stride 7 is coprime with n); time does
    // not move meanwhile, so each cancel returns exactly its delay.
    std::size_t bad = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t i = (j * 7) % n;
      if (ember::cancel_timer(refs[i]) != std::optional<milliseconds>(delay_of(i))) ++bad;
    }
    wrong->store(bad);
    long got = 0;
    while (ember::receive([](counted) { return true; }, ember::after(10'001ms, [] { return false; }))) ++got;
    arrived->store(got);
  });
  clock->settle();
  REQUIRE(held_after_start->load() == long(n));
  REQUIRE(wrong->load() == 0u);
  REQUIRE(live_msgs->load() == 0);  // every cancelled timer's message was destroyed
  clock->advance(11s);
  REQUIRE(arrived->load() == 0);
  require_normal_exit(p);
}

// ---- far deadlines ---------------------------------------------------------------------

TEST_CASE("manual clock: a receive timeout of 800 days (beyond the wheel's 2.2-year turn) ends exactly then, one "
          "beyond max_receive_timeout never does",
          "[timer]") {
  using days = std::chrono::duration<std::int64_t, std::ratio<86400>>;
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  auto result = std::make_shared<box<std::pair<int, nanoseconds>>>();
  auto forever = std::make_shared<box<int>>();
  auto p = rt.spawn_monitor([clock, result] {
    int r = ember::receive([](fired) { return 1; }, ember::after(days(800), [] { return 2; }));
    result->set({r, clock->now()});
  });
  auto q = rt.spawn_monitor([forever] {
    int r = ember::receive([](fired f) { return f.id; }, ember::after(std::chrono::hours::max(), [] { return -1; }));
    forever->set(r);
  });
  clock->settle();
  clock->advance(days(800) - 1ms);
  REQUIRE(!result->get());
  clock->advance(1ms);
  REQUIRE(result->get() == std::optional<std::pair<int, nanoseconds>>({2, days(800)}));
  require_normal_exit(p);
  clock->advance(days(3 * 365));  // q's timeout, ~146 years away, is parked and re-placed on the way
  REQUIRE(!forever->get());
  ember::send(q.pid, fired{5});
  clock->settle();
  REQUIRE(forever->get() == std::optional<int>(5));
  require_normal_exit(q);
}

TEST_CASE("manual clock: after time ran years ahead with no timer pending, new timers fire exactly on time",
          "[timer]") {
  using days = std::chrono::duration<std::int64_t, std::ratio<86400>>;
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(manual_opts(clock));
  clock->advance(days(1000));
  const nanoseconds t0 = clock->now();
  auto l = std::make_shared<journal>();
  auto r = rt.spawn(recorder(clock, l));
  auto s = rt.spawn(starter());
  ember::send(s, std::vector<start_cmd>{{r, 1ms, 1}, {r, ember::max_timer_delay, 2}, {r, 0ms, 0}});
  clock->settle();
  REQUIRE(l->id_list() == std::vector<int>{0});
  clock->advance(1ms);
  REQUIRE(l->id_list() == std::vector<int>{0, 1});
  clock->advance(ember::max_timer_delay - 2ms);
  REQUIRE(l->id_list() == std::vector<int>{0, 1});
  clock->advance(1ms);
  REQUIRE(l->id_list() == std::vector<int>{0, 1, 2});
  REQUIRE(l->times() == std::vector<nanoseconds>{t0, t0 + 1ms, t0 + ember::max_timer_delay});
  ember::send(r, stop{});
  ember::send(s, stop{});
  clock->settle();
}

TEST_CASE("timers: after() saturates: zero and negative poll, huge durations are max_receive_timeout, NaN is "
          "bad_argument",
          "[timer]") {
  in_process(1, [] {
    ember::send(ember::self(), fired{1});
    REQUIRE(ember::receive([](fired f) { return f.id; }, ember::after(-5s, [] { return -1; })) == 1);
    REQUIRE(ember::receive([](fired f) { return f.id; }, ember::after(-5s, [] { return -1; })) == -1);
    REQUIRE(ember::receive([](fired f) { return f.id; }, ember::after(0ms, [] { return -2; })) == -2);
    REQUIRE(ember::receive([](fired f) { return f.id; },
                           ember::after(std::chrono::duration<double>(-1e300), [] { return -3; })) == -3);
    REQUIRE(ember::detail::receive_timeout_of(std::chrono::hours::max()) == ember::max_receive_timeout);
    REQUIRE(ember::detail::receive_timeout_of(std::chrono::duration<double>(1e300)) == ember::max_receive_timeout);
    REQUIRE_THROWS_AS(ember::after(std::chrono::duration<double>(std::nan("")), [] {}), ember::bad_argument);
    REQUIRE(ember::detail::receive_timeout_of(std::chrono::duration<double>(-INFINITY)) == 0ns);
    REQUIRE(ember::detail::receive_timeout_of(std::chrono::duration<double>(INFINITY)) == ember::max_receive_timeout);
    REQUIRE(ember::detail::receive_timeout_of(std::chrono::nanoseconds::min()) == 0ns);
    REQUIRE(ember::detail::receive_timeout_of(1500us) == 1500us);
  });
}

// ---- receive timeouts racing with wake-ups (regression) ----------------------------------

namespace {
struct poke {
  steady::time_point at;
};
struct noise {};
}  // namespace

TEST_CASE("timers: a receive timeout that fires while its process is awake (woken by a message it does not take) "
          "still ends the wait, on 4 workers",
          "[timer]") {
  // Each waiter waits 2 ms for a message that never comes, while its noise
  // partner sends it one message it does not take at a random moment around
  // the deadline.  If the timeout fires (on the worker that armed it) while
  // the waiter is awake on another worker, between reading the clock and
  // blocking, something must still wake it: the timer leaves a wake signal.
  // Without it the waiter would block for ever (nothing else is coming) and
  // never report.  A stress test: that window is a few instructions wide,
  // so a run hits it only now and then; every run checks that no timeout
  // is lost however the wake-ups interleave.
  const std::size_t pairs = scaled(64, 16), rounds = scaled(40, 10);
  in_process(4, [pairs, rounds] {
    const ember::pid root = ember::self();
    for (std::size_t k = 0; k < pairs; ++k) {
      ember::spawn([root, rounds, k] {
        const ember::pid me = ember::self();
        const ember::pid partner = ember::spawn_link([me] {
          for (;;) {
            auto at = ember::receive([](poke p) { return std::optional(p.at); },
                                     [](stop) { return std::optional<steady::time_point>(); });
            if (!at) return;
            while (steady::now() < *at) ember::checkpoint();  // load, not a wait for an event
            ember::send(me, noise{});
          }
        });
        std::mt19937 rng{unsigned(k)};
        std::size_t timeouts = 0;
        for (std::size_t r = 0; r < rounds; ++r) {
          ember::send(partner, poke{steady::now() + std::chrono::microseconds(1500 + rng() % 1000)});
          if (ember::receive([](fired) { return false; }, ember::after(2ms, [] { return true; }))) ++timeouts;
          while (ember::receive([](noise) { return true; }, ember::after(0ms, [] { return false; }))) {
          }
        }
        ember::send(partner, stop{});
        ember::send(root, timeouts);
      });
    }
    for (std::size_t k = 0; k < pairs; ++k) {
      auto n = ember::receive([](std::size_t x) { return std::optional(x); },
                              ember::after(60s, [] { return std::optional<std::size_t>(); }));
      REQUIRE(n);  // a waiter that never reported is stuck in a receive whose timeout was lost
      REQUIRE(*n == rounds);
    }
  });
}
