// Every public duration is checked where it is given: rejected with
// bad_argument (or invalid_option for options) naming the parameter, or
// saturated to a documented infinity — never left to overflow later.  Each
// API gets max(), min(), NaN and ±inf; the suite runs under UBSan, which
// would report any overflow.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;
namespace app = ember::application;

namespace {
using dsec = std::chrono::duration<double>;
const dsec nan_s{std::nan("")};
const dsec inf_s{INFINITY};
const dsec minus_inf_s{-INFINITY};
struct tick {};

/// what() of the bad_argument f throws ("" if none).
template <class F>
std::string bad_argument_text(F&& f) {
  try {
    f();
  } catch (const ember::bad_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("durations: send_after and start_timer reject max(), min(), NaN, ±inf and negative delays, naming the "
          "delay",
          "[duration][timer]") {
  in_process(1, [] {
    const ember::pid me = ember::self();
    auto rejects = [&](auto d) {
      CHECK(bad_argument_text([&] { ember::send_after(me, d, tick{}); }).find("ember::send_after: delay = ") == 0);
      CHECK(bad_argument_text([&] { ember::start_timer(me, d, tick{}); }).find("ember::start_timer: delay = ") == 0);
      CHECK_THROWS_AS(ember::send_after("someone", d, tick{}), ember::bad_argument);
      CHECK_THROWS_AS(ember::start_timer("someone", d, tick{}), ember::bad_argument);
    };
    rejects(std::chrono::hours::max());
    rejects(std::chrono::seconds::max());
    rejects(std::chrono::milliseconds::max());
    rejects(std::chrono::nanoseconds::max());
    rejects(std::chrono::hours::min());
    rejects(std::chrono::milliseconds::min());
    rejects(-1ms);
    rejects(nan_s);
    rejects(inf_s);
    rejects(minus_inf_s);
    rejects(ember::max_timer_delay + 1ms);
    CHECK(bad_argument_text([&] { ember::send_after(me, nan_s, tick{}); }).find("delay = NaN ms") !=
          std::string::npos);
    // The bounds themselves are fine, in any unit.
    CHECK(ember::cancel_timer(ember::send_after(me, ember::max_timer_delay, tick{})));
    CHECK(ember::cancel_timer(ember::send_after(me, dsec(3600.0), tick{})));
    // 0 is accepted and delivers at once: nothing is left to cancel.
    CHECK_FALSE(ember::cancel_timer(ember::start_timer(me, 0ns, tick{})));
    CHECK(ember::receive([](ember::timeout<tick>) { return true; }, ember::after(0ms, [] { return false; })));
  });
}

TEST_CASE("durations: receive's after() polls for negative values and min(), takes max() and +inf as the longest "
          "timeout, and rejects NaN",
          "[duration][receive]") {
  in_process(1, [] {
    CHECK(ember::receive([](tick) { return 0; }, ember::after(std::chrono::hours::min(), [] { return 1; })) == 1);
    CHECK(ember::receive([](tick) { return 0; }, ember::after(minus_inf_s, [] { return 1; })) == 1);
    ember::send(ember::self(), tick{});
    CHECK(ember::receive([](tick) { return 0; }, ember::after(std::chrono::hours::max(), [] { return 1; })) == 0);
    ember::send(ember::self(), tick{});
    CHECK(ember::receive([](tick) { return 0; }, ember::after(inf_s, [] { return 1; })) == 0);
    CHECK(bad_argument_text([] { (void)ember::after(nan_s, [] {}); }) == "ember::after: timeout = NaN: not a duration");
  });
}

namespace {
struct set_after {
  std::chrono::duration<double, std::milli> t;
};
struct get {};
/// Counts its timeouts in a shared counter, so the test can watch them
/// without sending it a message (which would end the timeout).
struct waiter : gs::behaviour<waiter> {
  std::shared_ptr<std::atomic<int>> fired;
  explicit waiter(std::shared_ptr<std::atomic<int>> f = std::make_shared<std::atomic<int>>(0)) : fired(std::move(f)) {}
  int handle_call(get) { return fired->load(); }
  call_reply<int> handle_call(set_after a) { return reply_with(0).after(a.t); }
  void handle_info(gs::server_timeout) { fired->fetch_add(1); }
};
}  // namespace

TEST_CASE("durations: a handler's after(t) rejects negative t and NaN in the handler, takes infinity and max() as no "
          "timeout, and waits out a timeout longer than a timer's longest delay",
          "[duration][gen_server]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto fired = std::make_shared<std::atomic<int>>(0);
  auto step = std::make_shared<std::atomic<int>>(0);
  auto driver = rt.spawn_monitor([fired, step] {
    // Negative, NaN, -inf: the handler throws bad_argument, so the server
    // crashes with it and the caller sees it.
    for (double bad : {-2.0, std::nan(""), -double(INFINITY)}) {
      auto s = gs::start<waiter>();
      try {
        gs::call(s.server(), set_after{std::chrono::duration<double, std::milli>(bad)});
        FAIL("no error");
      } catch (const ember::call_exited& e) {
        CHECK(e.reason().text().find("ember::gen_server::next::after: timeout = ") == 0);
      }
    }
    auto s = gs::start<waiter>(fired);
    for (double inf : {-1.0, double(INFINITY), double(std::chrono::milliseconds::max().count())}) {
      gs::call(s.server(), set_after{std::chrono::duration<double, std::milli>(inf)});
      step->fetch_add(1);
      ember::receive([](tick) {});  // the test moves the clock 40 years
    }
    gs::call(s.server(), set_after{std::chrono::duration<double, std::milli>(60.0 * 86400 * 1000)});
    step->fetch_add(1);
    ember::receive([](tick) {});
  });
  for (int i = 1; i <= 3; ++i) {
    clock->settle();
    REQUIRE(step->load() == i);
    clock->advance(std::chrono::hours(24 * 365 * 40));  // an infinite timeout never fires
    CHECK(fired->load() == 0);
    ember::send(driver.pid, tick{});
  }
  clock->settle();
  REQUIRE(step->load() == 4);
  // 60 days: longer than one timer can wait (max_timer_delay, ~49.7 days).
  clock->advance(std::chrono::hours(24 * 60) - 1ms);
  CHECK(fired->load() == 0);
  clock->advance(1ms);
  CHECK(fired->load() == 1);
  ember::send(driver.pid, tick{});
  CHECK(driver.wait().is_normal());
}

TEST_CASE("durations: shutdown_spec::timeout rejects negative t and NaN, and takes anything beyond the longest "
          "timer delay as infinity",
          "[duration][supervisor]") {
  CHECK(sup::shutdown_spec::timeout(std::chrono::milliseconds::max()).is_infinity());
  CHECK(sup::shutdown_spec::timeout(std::chrono::hours::max()).is_infinity());
  CHECK(sup::shutdown_spec::timeout(inf_s).is_infinity());
  CHECK(sup::shutdown_spec::timeout(ember::max_timer_delay + 1ms).is_infinity());
  CHECK(sup::shutdown_spec::timeout(ember::max_timer_delay).time() == ember::max_timer_delay);
  CHECK(sup::shutdown_spec::timeout(1500us).time() == 2ms);  // rounded up: never killed early
  CHECK(sup::shutdown_spec::timeout(0ms).time() == 0ms);
  CHECK_THROWS_AS(sup::shutdown_spec::timeout(-1ms), ember::bad_argument);
  try {
    (void)sup::shutdown_spec::timeout(-1ms);
  } catch (const sup::spec_error& e) {
    CHECK(e.field() == sup::spec_field::shutdown);  // the field, as data
  }
  CHECK_THROWS_AS(sup::shutdown_spec::timeout(-1ms), sup::spec_error);
  CHECK_THROWS_AS(sup::shutdown_spec::timeout(std::chrono::milliseconds::min()), ember::bad_argument);
  CHECK_THROWS_AS(sup::shutdown_spec::timeout(std::chrono::hours::min()), ember::bad_argument);
  CHECK_THROWS_AS(sup::shutdown_spec::timeout(minus_inf_s), ember::bad_argument);
  CHECK(bad_argument_text([] { sup::shutdown_spec::timeout(nan_s); })
            .find("ember::supervisor::shutdown_spec::timeout: t = NaN ms") == 0);
}

namespace {
struct idle : gs::behaviour<idle> {
  int handle_call(get) { return 1; }
};
}  // namespace

TEST_CASE("durations: a restart_backoff longer than the longest timer delay is rejected at start — a period of max() "
          "is taken as 2^62 ns",
          "[duration][supervisor]") {
  in_process(2, [] {
    auto spec = sup::worker<idle>("w");
    spec.backoff = sup::restart_backoff{100ms, ember::max_timer_delay + 1ms};
    CHECK(bad_argument_text([&] { (void)sup::start_link({}, {spec}); }).find("the backoff's max (4294967296 ms) is over max_timer_delay") !=
          std::string::npos);
    spec.backoff = sup::restart_backoff{100ms, std::chrono::milliseconds::max()};
    CHECK_THROWS_AS(sup::start_link({}, {spec}), ember::bad_argument);
    spec.backoff = sup::restart_backoff{100ms, ember::max_timer_delay};
    auto ok = sup::start({}, {spec});
    REQUIRE(ok);
    gs::stop(ok.server());
    // period max(): one restart allowed in "all time"; the second stops it.
    auto s = sup::start({.strategy = sup::one_for_one, .intensity = 1, .period = std::chrono::milliseconds::max()},
                        {sup::worker<idle>("w")});
    REQUIRE(s);
    auto m = ember::monitor(s.pid());
    const ember::pid first = sup::which_children(s.server())[0].pid;
    ember::exit(first, ember::exit_reason::kill());
    ember::pid second;
    do second = sup::which_children(s.server())[0].pid;  // until the supervisor has restarted it
    while (second == first || second.is_null());
    ember::exit(second, ember::exit_reason::kill());
    CHECK(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::shutdown());
    (void)m;
  });
}

TEST_CASE("durations: options: application shutdown_timeout below zero (other than infinity) and runtime "
          "stop_timeout out of range are invalid_option — manual_clock::advance rejects max() and NaN",
          "[duration]") {
  app::options o;
  o.runtime = ember_test::opts(1);
  o.handle_signals = false;
  o.shutdown_timeout = -5ms;
  CHECK_THROWS_AS(app::run([] { return ember::pid{}; }, o), ember::invalid_option);
  o.shutdown_timeout = std::chrono::milliseconds::min();
  CHECK_THROWS_AS(app::run([] { return ember::pid{}; }, o), ember::invalid_option);
  o.shutdown_timeout = std::chrono::milliseconds::max();
  CHECK_THROWS_AS(app::run([] { return ember::pid{}; }, o), ember::invalid_option);

  auto r = ember_test::opts(1);
  r.stop_timeout = 0ms;
  CHECK_THROWS_AS(ember::runtime(r), ember::invalid_option);
  r.stop_timeout = std::chrono::milliseconds::max();
  CHECK_THROWS_AS(ember::runtime(r), ember::invalid_option);
  r.stop_timeout = std::chrono::milliseconds::min();
  CHECK_THROWS_AS(ember::runtime(r), ember::invalid_option);

  auto clock = std::make_shared<ember::manual_clock>();
  auto c = ember_test::opts(1);
  c.clock = clock;
  ember::runtime rt(c);
  CHECK_THROWS_AS(clock->advance(std::chrono::hours::max()), ember::bad_argument);
  CHECK_THROWS_AS(clock->advance(std::chrono::nanoseconds::max()), ember::bad_argument);
  CHECK_THROWS_AS(clock->advance(nan_s), ember::bad_argument);
  CHECK_THROWS_AS(clock->advance(inf_s), ember::bad_argument);
  CHECK_THROWS_AS(clock->advance(std::chrono::hours::min()), ember::bad_argument);
  clock->advance(std::chrono::hours(24 * 365 * 100));
  CHECK_THROWS_AS(clock->advance(std::chrono::hours(24 * 365 * 50)), ember::bad_argument);  // past 2^62 ns in all
  CHECK(clock->now() == std::chrono::hours(24 * 365 * 100));
}
