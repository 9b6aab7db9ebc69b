// examples/driver_timeout/driver_timeout_test.cpp — tests of the
// driver-timeout example (driver_timeout.hpp, status_store.hpp), one per
// rule of docs/examples/driver_timeout.md: the 55 s countdown to the
// millisecond, read_timer's remaining time, a cancel by a message about the
// driver and about no other, a stale due message, the hand-over with exactly
// the remaining time, the drain with no peer, the supervision tree's
// shutdown and restart, and 100,000 countdowns handed over with none lost.
//
// Every test runs on a manual clock (one worker, deterministic): each step
// runs in a fresh process inside the runtime, the test thread waits for it
// and lets the runtime settle, then moves time with advance().  Nothing
// sleeps; a 55 s timeout takes microseconds.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/support.hpp"

#include "driver_timeout.hpp"

using namespace std::chrono_literals;
using std::chrono::milliseconds;
namespace dt = driver_timeout;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;

// Readable values in failure messages.
namespace driver_timeout {
std::ostream& operator<<(std::ostream& os, driver_status s) { return os << to_string(s); }
}  // namespace driver_timeout
namespace Catch {
template <>
struct StringMaker<std::optional<milliseconds>> {
  static std::string convert(const std::optional<milliseconds>& v) {
    return v ? std::to_string(v->count()) + " ms" : std::string("nullopt (no countdown)");
  }
};
}  // namespace Catch

namespace {

const std::string blue = "driver_timeouts.blue";
const std::string green = "driver_timeouts.green";
const std::string store_name(dt::default_store_name);

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("driver_timeout_test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

dt::service_options instance(const std::string& name, const std::string& peer = "") {
  dt::service_options o;
  o.instance = name;
  o.peer = peer;
  o.store = store_name;
  o.logger = quiet();
  return o;
}

/// A runtime on a manual clock, and steps run inside it.
class harness {
public:
  harness() : clock_(std::make_shared<ember::manual_clock>()), rt_(options(clock_)) {}

  /// Run fn in a fresh process; wait for it to end (normally: a step that
  /// throws fails the test) and for the runtime to settle, so every message
  /// the step caused has been handled.  Returns what fn returned.
  template <class F>
  auto run(F fn) {
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<R>) {
      finish(rt_.spawn_monitor(std::move(fn)));
    } else {
      auto out = std::make_shared<std::optional<R>>();
      finish(rt_.spawn_monitor([fn = std::move(fn), out]() mutable { out->emplace(fn()); }));
      return std::move(**out);
    }
  }

  /// Move the clock to t (since the harness started).
  void advance_to(milliseconds t) { clock_->advance(std::chrono::nanoseconds(t) - clock_->now()); }

  ember::runtime& rt() { return rt_; }

  // The common steps.
  void start_store(std::shared_ptr<dt::status_archive> archive = nullptr) {
    run([archive] {
      auto s = gs::start<dt::status_store>(gs::name{store_name}, quiet(), archive);
      if (!s) throw std::runtime_error("the store did not start: " + s.error().to_string());
    });
  }
  void start_service(dt::service_options o) {
    run([o = std::move(o)] {
      auto s = gs::start<dt::timeout_service>(gs::name{o.instance}, o);
      if (!s) throw std::runtime_error("the service did not start: " + s.error().to_string());
    });
  }
  void no_answer(const std::string& svc, dt::driver_id d) {
    run([svc, d] { dt::report_no_answer(svc, d); });
  }
  void event(const std::string& svc, dt::driver_id d, dt::driver_event e) {
    run([svc, d, e] { dt::report_driver_event(svc, d, e); });
  }
  std::optional<milliseconds> time_left(const std::string& svc, dt::driver_id d) {
    return run([svc, d] { return dt::time_left(svc, d); });
  }
  std::size_t pending(const std::string& svc) {
    return run([svc] { return dt::pending_countdowns(svc); });
  }
  dt::driver_status status(dt::driver_id d) {
    return run([d] { return dt::status_of(store_name, d); });
  }
  dt::driver_record record(dt::driver_id d) {
    return run([d] { return dt::record_of(store_name, d); });
  }
  dt::status_tally tally() {
    return run([] { return dt::tally(store_name); });
  }
  /// Stop a service as a supervisor would (it traps exits: the drain runs).
  void stop_service(const std::string& svc) {
    run([svc] { gs::stop(dt::service_ref(svc), ember::exit_reason::shutdown()); });
  }

private:
  void finish(ember::runtime::monitored m) {
    const ember::exit_reason r = m.wait();
    clock_->settle();
    INFO("the step ended with: " << r);
    REQUIRE(r.is_normal());
  }
  static ember::runtime_options options(const std::shared_ptr<ember::manual_clock>& clock) {
    auto o = ember_test::opts(1);
    o.clock = clock;
    return o;
  }

  std::shared_ptr<ember::manual_clock> clock_;
  ember::runtime rt_;
};

using dt::driver_event;
using dt::driver_status;

}  // namespace

TEST_CASE("a driver who does not answer is no_answer until 54 999 ms and idle at 55 000 ms, once",
          "[driver_timeout]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue));

  h.no_answer(blue, 7);
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(10'000ms);
  h.no_answer(blue, 8);  // its own 55 s, from 10 s

  h.advance_to(54'999ms);
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(55'000ms);
  REQUIRE(h.status(7) == driver_status::idle);
  REQUIRE(h.status(8) == driver_status::no_answer);
  h.advance_to(64'999ms);
  REQUIRE(h.status(8) == driver_status::no_answer);
  h.advance_to(65'000ms);
  REQUIRE(h.status(8) == driver_status::idle);

  h.advance_to(600'000ms);
  for (dt::driver_id d : {7, 8}) {
    const dt::driver_record r = h.record(d);
    REQUIRE(r.status == driver_status::idle);
    REQUIRE(r.no_answer_episodes == 1);
    REQUIRE(r.ended_by_countdown == 1);
  }
  REQUIRE(h.pending(blue) == 0);
  REQUIRE(h.tally().refused == 0);
}

TEST_CASE("time_left answers read_timer's remaining time and changes nothing, or nullopt without a countdown",
          "[driver_timeout]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue));

  REQUIRE(h.time_left(blue, 7) == std::nullopt);
  h.no_answer(blue, 7);
  REQUIRE(h.time_left(blue, 7) == 55'000ms);
  h.advance_to(12'345ms);
  REQUIRE(h.time_left(blue, 7) == 42'655ms);
  REQUIRE(h.time_left(blue, 7) == 42'655ms);  // reading it again: the same, nothing moved
  REQUIRE(h.time_left(blue, 8) == std::nullopt);
  h.advance_to(54'999ms);
  REQUIRE(h.time_left(blue, 7) == 1ms);
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(55'000ms);
  REQUIRE(h.time_left(blue, 7) == std::nullopt);
  REQUIRE(h.status(7) == driver_status::idle);
}

TEST_CASE("a message about a driver cancels that driver's countdown and records its status",
          "[driver_timeout]") {
  const driver_event e = GENERATE(driver_event::accepted, driver_event::declined, driver_event::went_offline,
                                  driver_event::available);
  INFO("the driver " << dt::to_string(e));
  harness h;
  h.start_store();
  h.start_service(instance(blue));

  h.no_answer(blue, 7);
  h.no_answer(blue, 8);
  h.advance_to(20'000ms);
  h.event(blue, 7, e);
  REQUIRE(h.status(7) == dt::status_after(e));
  REQUIRE(h.time_left(blue, 7) == std::nullopt);
  REQUIRE(h.time_left(blue, 8) == 35'000ms);

  h.advance_to(55'000ms);
  const dt::driver_record r7 = h.record(7);
  REQUIRE(r7.status == dt::status_after(e));
  REQUIRE(r7.ended_by_driver == 1);
  REQUIRE(r7.ended_by_countdown == 0);
  REQUIRE(h.status(8) == driver_status::idle);
  REQUIRE(h.tally().refused == 0);  // no expiry reached the store for 7
}

TEST_CASE("regression: messages about other drivers neither cancel nor restart a driver's countdown",
          "[driver_timeout][regression]") {
  // The bug: a message about any one driver cancelled (or reset) every
  // driver's countdown — what happens when the countdown is one timer for
  // the whole service, or the gen_server timeout (next.after(t)), which any
  // message cancels.
  harness h;
  h.start_store();
  h.start_service(instance(blue));

  // Drivers 1..10 go silent one second apart: deadlines 55 s .. 64 s.
  for (dt::driver_id d = 1; d <= 10; ++d) {
    h.advance_to(milliseconds((d - 1) * 1000));
    h.no_answer(blue, d);
  }
  // A stream of messages about other drivers, and one about driver 5.
  h.advance_to(20'000ms);
  h.run([] {
    const dt::service_ref svc(blue);
    for (dt::driver_id other = 100; other < 400; ++other) {
      dt::report_driver_event(svc, other, static_cast<driver_event>(other % 4));
      if (other % 3 == 0) dt::report_no_answer(svc, other);
    }
    dt::report_driver_event(svc, 5, driver_event::accepted);
  });

  for (dt::driver_id d = 1; d <= 10; ++d) {
    if (d == 5) continue;
    const milliseconds deadline(55'000 + (d - 1) * 1000);
    INFO("driver " << d);
    REQUIRE(h.time_left(blue, d) == deadline - 20'000ms);
  }
  REQUIRE(h.time_left(blue, 5) == std::nullopt);

  for (dt::driver_id d = 1; d <= 10; ++d) {
    if (d == 5) continue;
    const milliseconds deadline(55'000 + (d - 1) * 1000);
    INFO("driver " << d);
    h.advance_to(deadline - 1ms);
    REQUIRE(h.status(d) == driver_status::no_answer);
    h.advance_to(deadline);
    REQUIRE(h.status(d) == driver_status::idle);
  }
  REQUIRE(h.status(5) == driver_status::busy);
  h.advance_to(300'000ms);
  const dt::status_tally t = h.tally();
  REQUIRE(t.refused == 0);
  REQUIRE(t.consistent());
  REQUIRE(t.ended_by_countdown == 9 + 100);  // 1..10 but 5, and the others reported silent (every third)
}

TEST_CASE("a second no-answer report for a driver starts its countdown over", "[driver_timeout]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue));

  h.no_answer(blue, 7);
  h.advance_to(30'000ms);
  h.no_answer(blue, 7);
  REQUIRE(h.time_left(blue, 7) == 55'000ms);
  h.advance_to(55'000ms);  // the first countdown's deadline: cancelled
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(84'999ms);
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(85'000ms);
  const dt::driver_record r = h.record(7);
  REQUIRE(r.status == driver_status::idle);
  REQUIRE(r.no_answer_episodes == 1);
  REQUIRE(r.ended_by_countdown == 1);
  REQUIRE(h.tally().refused == 0);
}

TEST_CASE("a due message that lost the race with a cancel is ignored, even when the driver has a newer countdown",
          "[driver_timeout]") {
  // On several workers a timer can fire while the service cancels it:
  // cancel_timer then returns nullopt and the due message still arrives.
  // The test delivers that message by hand (generations count from 1).
  harness h;
  h.start_store();
  h.start_service(instance(blue));
  auto late_due = [&](std::uint64_t generation) {
    h.run([generation] { ember::send(std::string_view(blue), dt::timeout_service::countdown_due{7, generation}); });
  };

  h.no_answer(blue, 7);  // generation 1
  h.advance_to(10'000ms);
  h.event(blue, 7, driver_event::accepted);
  late_due(1);
  REQUIRE(h.status(7) == driver_status::busy);

  h.advance_to(20'000ms);
  h.no_answer(blue, 7);  // generation 2
  late_due(1);
  REQUIRE(h.status(7) == driver_status::no_answer);
  REQUIRE(h.time_left(blue, 7) == 55'000ms);
  h.advance_to(74'999ms);
  REQUIRE(h.status(7) == driver_status::no_answer);
  h.advance_to(75'000ms);
  const dt::driver_record r = h.record(7);
  REQUIRE(r.status == driver_status::idle);
  REQUIRE(r.no_answer_episodes == 2);
  REQUIRE(r.ended_by_driver == 1);
  REQUIRE(r.ended_by_countdown == 1);
  REQUIRE(h.tally().refused == 0);
}

TEST_CASE("stopping with a peer hands every countdown over, and the peer re-arms each with exactly its remaining time",
          "[driver_timeout][hand-over]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue, green));
  h.start_service(instance(green, blue));

  h.no_answer(blue, 1);  // deadline 55 s
  h.advance_to(10'000ms);
  h.no_answer(blue, 2);  // 65 s
  h.advance_to(30'000ms);
  h.no_answer(blue, 3);   // 85 s
  h.no_answer(green, 4);  // green's own: 85 s
  h.advance_to(40'000ms);
  h.stop_service(blue);

  REQUIRE_FALSE(h.rt().whereis(blue));
  REQUIRE(h.pending(green) == 4);
  REQUIRE(h.time_left(green, 1) == 15'000ms);
  REQUIRE(h.time_left(green, 2) == 25'000ms);
  REQUIRE(h.time_left(green, 3) == 45'000ms);
  for (dt::driver_id d : {1, 2, 3}) REQUIRE(h.record(d).countdown_owner == green);

  // At the boundary millisecond, on the peer.
  const std::vector<std::pair<dt::driver_id, milliseconds>> deadlines{{1, 55'000ms}, {2, 65'000ms}, {3, 85'000ms}};
  for (const auto& [d, deadline] : deadlines) {
    INFO("driver " << d);
    h.advance_to(deadline - 1ms);
    REQUIRE(h.status(d) == driver_status::no_answer);
    h.advance_to(deadline);
    REQUIRE(h.status(d) == driver_status::idle);
  }
  REQUIRE(h.status(4) == driver_status::idle);
  h.advance_to(300'000ms);
  for (dt::driver_id d : {1, 2, 3, 4}) {
    const dt::driver_record r = h.record(d);
    REQUIRE(r.ended_by_countdown == 1);
    REQUIRE(r.ended_by_drain == 0);
  }
  const dt::status_tally t = h.tally();
  REQUIRE(t.refused == 0);
  REQUIRE(t.consistent());
}

TEST_CASE("a hand-over keeps the peer's own newer countdown for a driver", "[driver_timeout][hand-over]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue, green));
  h.start_service(instance(green, blue));

  h.no_answer(blue, 1);  // blue: 55 s
  h.advance_to(20'000ms);
  h.no_answer(green, 1);  // reports now go to green: 75 s
  h.advance_to(40'000ms);
  h.stop_service(blue);
  REQUIRE(h.time_left(green, 1) == 35'000ms);
  h.advance_to(55'000ms);
  REQUIRE(h.status(1) == driver_status::no_answer);
  h.advance_to(74'999ms);
  REQUIRE(h.status(1) == driver_status::no_answer);
  h.advance_to(75'000ms);
  const dt::driver_record r = h.record(1);
  REQUIRE(r.status == driver_status::idle);
  REQUIRE(r.ended_by_countdown == 1);
  REQUIRE(h.tally().refused == 0);
}

TEST_CASE("stopping with no peer sets each pending driver idle exactly once, before the service has stopped",
          "[driver_timeout][drain]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue, green));  // green is not running

  for (dt::driver_id d = 1; d <= 5; ++d) {
    h.advance_to(milliseconds(d * 3'000));
    h.no_answer(blue, d);
  }
  h.event(blue, 3, driver_event::accepted);
  h.advance_to(30'000ms);
  const std::vector<dt::driver_status> right_after_stop = h.run([] {
    gs::stop(dt::service_ref(blue), ember::exit_reason::shutdown());
    std::vector<dt::driver_status> out;
    for (dt::driver_id d = 1; d <= 5; ++d) out.push_back(dt::status_of(store_name, d));
    return out;
  });
  REQUIRE(right_after_stop == std::vector{driver_status::idle, driver_status::idle, driver_status::busy,
                                          driver_status::idle, driver_status::idle});

  h.advance_to(300'000ms);  // the countdowns were cancelled: nothing more happens
  for (dt::driver_id d : {1, 2, 4, 5}) {
    const dt::driver_record r = h.record(d);
    REQUIRE(r.status == driver_status::idle);
    REQUIRE(r.ended_by_drain == 1);
    REQUIRE(r.ended_by_countdown == 0);
  }
  const dt::status_tally t = h.tally();
  REQUIRE(t.refused == 0);
  REQUIRE(t.consistent());
}

TEST_CASE("a hand-over the peer cannot take (another kind of server) falls back to setting the drivers idle once",
          "[driver_timeout][drain]") {
  harness h;
  h.start_store();
  h.start_service(instance(blue, store_name));  // misconfigured: the peer is the store

  h.no_answer(blue, 1);
  h.no_answer(blue, 2);
  h.advance_to(10'000ms);
  h.stop_service(blue);
  h.advance_to(300'000ms);
  for (dt::driver_id d : {1, 2}) {
    const dt::driver_record r = h.record(d);
    REQUIRE(r.status == driver_status::idle);
    REQUIRE(r.ended_by_drain == 1);
    REQUIRE(r.ended_by_countdown == 0);
  }
  REQUIRE(h.tally().refused == 0);
}

TEST_CASE("under a supervisor, the tree's shutdown drains the service into the store before the store stops",
          "[driver_timeout][supervisor]") {
  harness h;
  auto archive = std::make_shared<dt::status_archive>();
  h.run([archive] {
    auto s = sup::start(gs::name{"dispatch"}, {},
                        {dt::store_child(store_name, quiet(), archive), dt::service_child(instance(blue, green))});
    if (!s) throw std::runtime_error("the tree did not start: " + s.error().to_string());
  });
  for (dt::driver_id d = 1; d <= 20; ++d) h.no_answer(blue, d);
  h.event(blue, 20, driver_event::went_offline);
  h.advance_to(30'000ms);
  h.run([] { gs::stop(sup::ref("dispatch"), ember::exit_reason::shutdown()); });
  REQUIRE(h.rt().process_count() == 0);

  std::lock_guard lk(archive->mu);
  REQUIRE(archive->written);
  for (dt::driver_id d = 1; d < 20; ++d) {
    INFO("driver " << d);
    REQUIRE(archive->records.at(d).status == driver_status::idle);
    REQUIRE(archive->records.at(d).ended_by_drain == 1);
  }
  REQUIRE(archive->records.at(20).status == driver_status::offline);
  REQUIRE(archive->tally.refused == 0);
  REQUIRE(archive->tally.consistent());
}

TEST_CASE("a killed service is restarted: the store's statuses survive, the remaining times do not "
          "(re-armed at the full 55 s), and the dead instance's timers never fire",
          "[driver_timeout][supervisor]") {
  harness h;
  h.run([] {
    auto s = sup::start(gs::name{"dispatch"}, {.intensity = 3, .period = 60s},
                        {dt::store_child(store_name, quiet()), dt::service_child(instance(blue, green))});
    if (!s) throw std::runtime_error("the tree did not start: " + s.error().to_string());
  });
  h.no_answer(blue, 1);  // deadline 55 s
  h.advance_to(20'000ms);
  h.no_answer(blue, 2);  // 75 s
  h.advance_to(30'000ms);
  REQUIRE(h.time_left(blue, 1) == 25'000ms);

  const ember::pid store_before = *h.rt().whereis(store_name);
  const ember::pid killed = *h.rt().whereis(blue);
  h.run([killed] {
    const ember::monitor_ref m = ember::monitor(killed);
    ember::exit(killed, ember::exit_reason::kill());  // no terminate: no drain
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
  });

  // Restarted under the same name; the store (another process) is untouched.
  const std::optional<ember::pid> restarted = h.rt().whereis(blue);
  REQUIRE(restarted);
  REQUIRE(*restarted != killed);
  REQUIRE(*h.rt().whereis(store_name) == store_before);
  REQUIRE(h.record(1).status == driver_status::no_answer);
  REQUIRE(h.record(1).countdown_owner == blue);
  // The remaining times lived only in the killed process: full countdowns.
  REQUIRE(h.pending(blue) == 2);
  REQUIRE(h.time_left(blue, 1) == 55'000ms);
  REQUIRE(h.time_left(blue, 2) == 55'000ms);

  h.advance_to(55'000ms);  // driver 1's old deadline: its old timer is dropped
  REQUIRE(h.status(1) == driver_status::no_answer);
  h.advance_to(75'000ms);  // driver 2's
  REQUIRE(h.status(2) == driver_status::no_answer);
  h.advance_to(84'999ms);
  REQUIRE(h.status(1) == driver_status::no_answer);
  h.advance_to(85'000ms);  // 30 s + 55 s
  REQUIRE(h.status(1) == driver_status::idle);
  REQUIRE(h.status(2) == driver_status::idle);
  h.advance_to(300'000ms);
  for (dt::driver_id d : {1, 2}) REQUIRE(h.record(d).ended_by_countdown == 1);
  const dt::status_tally t = h.tally();
  REQUIRE(t.refused == 0);
  REQUIRE(t.consistent());
}

TEST_CASE("100,000 drivers with pending countdowns are handed over with none lost or set idle twice",
          "[driver_timeout][hand-over][scale]") {
  const std::size_t n = ember_test::scaled(100'000, 10'000);
  constexpr std::size_t batches = 10;
  const std::size_t per_batch = n / batches;
  harness h;
  h.start_store();
  h.start_service(instance(blue, green));
  h.start_service(instance(green, blue));

  // Batch k goes silent at k * 5 s: deadline 55 s + k * 5 s.
  for (std::size_t k = 0; k < batches; ++k) {
    h.advance_to(milliseconds(k * 5'000));
    h.run([k, per_batch] {
      const dt::service_ref svc(blue);
      for (std::size_t i = 0; i < per_batch; ++i) dt::report_no_answer(svc, k * per_batch + i + 1);
    });
  }
  REQUIRE(h.pending(blue) == n);

  h.advance_to(47'500ms);
  h.stop_service(blue);
  REQUIRE(h.pending(green) == n);
  REQUIRE(h.run([] { return gs::call(dt::store_ref(store_name), dt::status_store::owned_countdowns{green}); })
              .size() == n);
  for (std::size_t k = 0; k < batches; ++k)
    REQUIRE(h.time_left(green, k * per_batch + 1) == milliseconds(55'000 + k * 5'000 - 47'500));

  for (std::size_t k = 0; k < batches; ++k) {
    const milliseconds deadline(55'000 + k * 5'000);
    INFO("batch " << k);
    h.advance_to(deadline - 1ms);
    REQUIRE(h.tally().no_answer == n - k * per_batch);
    h.advance_to(deadline);
    REQUIRE(h.tally().no_answer == n - (k + 1) * per_batch);
  }
  h.advance_to(300'000ms);
  const dt::status_tally t = h.tally();
  REQUIRE(t.drivers == n);
  REQUIRE(t.idle == n);
  REQUIRE(t.episodes == n);
  REQUIRE(t.ended_by_countdown == n);
  REQUIRE(t.ended_by_drain == 0);
  REQUIRE(t.refused == 0);  // a second back-to-idle for any driver would be counted here
  REQUIRE(t.consistent());
  REQUIRE(h.pending(green) == 0);
}
