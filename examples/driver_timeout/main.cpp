// examples/driver_timeout/main.cpp — the driver-timeout demo.
//
// Ten minutes of dispatching on a manual clock: 400 bookings offered to 200
// drivers, who accept, decline, or stay silent (then the driver-timeout
// service marks them no_answer and sets them idle 55 s later, unless a late
// message about them comes first).  On the way, the service is killed and
// restarted by its supervisor, then handed over to a second instance (a
// rolling restart), and finally the whole tree shuts down gracefully.  Every
// line carries the virtual time.  The demo checks its own outcome — every
// no-answer episode ended exactly once, no driver is left in no_answer —
// and exits 1 if not.  It takes a fraction of a second of wall time.
//
// The supervision tree (docs/examples/driver_timeout.md has the picture):
//   dispatch (supervisor, one_for_one)
//     driver_status           the status store
//     driver_timeouts.blue    the service (peer: driver_timeouts.green)
//     driver_timeouts.green   added at 07:00 for the hand-over
//
// Threads: main() drives the clock from outside the runtime; everything
// else runs in the runtime's processes (the simulation is the root).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "ember/ember.hpp"

#include "driver_timeout.hpp"

namespace dt = driver_timeout;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

constexpr dt::driver_id driver_count = 200;
constexpr int booking_count = 400;
constexpr milliseconds booking_interval = 1500ms;
constexpr milliseconds answer_window = 15s;  // no answer within it: the dispatcher reports no_answer
constexpr milliseconds detailed_until = 75s;  // a line per event until then, one summary a minute after
constexpr milliseconds crash_at = 4min;
constexpr milliseconds hand_over_at = 7min;
constexpr milliseconds shutdown_at = 10min + 5s;
constexpr milliseconds time_limit = 30min;  // virtual; only a bug would reach it

const std::string tree_name = "dispatch";
const std::string store_name(dt::default_store_name);
const std::string blue = "driver_timeouts.blue";
const std::string green = "driver_timeouts.green";

/// "mm:ss.mmm"
std::string clock_text(milliseconds t) {
  const auto ms = t.count();
  return fmt::format("{:02}:{:02}.{:03}", ms / 60000, ms / 1000 % 60, ms % 1000);
}
/// "31.234 s"
std::string seconds_text(milliseconds t) { return fmt::format("{}.{:03} s", t.count() / 1000, t.count() % 1000); }
std::string seconds_text(const std::optional<milliseconds>& t) { return t ? seconds_text(*t) : "no countdown"; }

milliseconds now_on(const ember::manual_clock& clock) {
  return std::chrono::duration_cast<milliseconds>(clock.now());
}

/// spdlog's %* flag: the manual clock's time.
class virtual_time_flag : public spdlog::custom_flag_formatter {
public:
  explicit virtual_time_flag(std::shared_ptr<ember::manual_clock> clock) : clock_(std::move(clock)) {}
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string t = clock_text(now_on(*clock_));
    dest.append(t.data(), t.data() + t.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<virtual_time_flag>(clock_);
  }

private:
  std::shared_ptr<ember::manual_clock> clock_;
};

std::shared_ptr<spdlog::logger> make_logger(const std::shared_ptr<ember::manual_clock>& clock) {
  auto log = std::make_shared<spdlog::logger>("dispatch", std::make_shared<spdlog::sinks::stdout_color_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<virtual_time_flag>('*', clock).set_pattern("[%*] %^%-5l%$ %v");
  log->set_formatter(std::move(formatter));
  log->set_level(spdlog::level::debug);
  return log;
}

/// The dispatcher and the drivers, as a script of timed events run by one
/// process.  The drivers' behaviour is random but seeded: every run prints
/// the same story.
class simulation {
public:
  simulation(std::shared_ptr<ember::manual_clock> clock, std::shared_ptr<spdlog::logger> log,
             std::shared_ptr<dt::status_archive> archive)
      : clock_(std::move(clock)), log_(std::move(log)), archive_(std::move(archive)) {}

  /// Run the whole story; true when every check passed.
  bool run() {
    ember::process_flag(ember::trap_exit, true);  // the tree's exit at shutdown arrives as a message
    start_tree();
    schedule(0ms, kind::booking);
    for (milliseconds t = 60s; t < shutdown_at; t += 60s) schedule(t, kind::minute_summary);
    schedule(detailed_until, kind::quieter);
    schedule(crash_at, kind::crash);
    schedule(hand_over_at, kind::hand_over);
    schedule(shutdown_at, kind::shutdown);

    while (!events_.empty()) {
      event e = events_.top();
      events_.pop();
      if (e.at > shutdown_at) continue;  // after the shutdown: nobody listens
      sleep_until(e.at);
      handle(e);
      if (e.what == kind::shutdown) break;
    }
    return final_checks();
  }

private:
  enum class kind {
    booking,         // offer booking `booking` to an idle driver
    answer,          // the driver answers within the window
    silence,         // the window closed without an answer: report no_answer
    late_message,    // a message about a driver who was silent
    back_online,     // a trip ended, or an offline driver came back
    minute_summary,  // one line per minute
    quieter,         // stop printing every event
    crash,           // kill the service instance
    hand_over,       // rolling restart: blue -> green
    check_pending,   // a handed-over countdown: still no_answer?
    check_idle,      // ... and idle after its deadline?
    shutdown,        // graceful shutdown of the tree
  };
  struct event {
    milliseconds at;
    std::uint64_t seq;  // keeps events at the same time in the order they were scheduled
    kind what;
    dt::driver_id driver = 0;
    int booking = 0;
    dt::driver_event message = dt::driver_event::available;
  };
  struct later {
    bool operator()(const event& a, const event& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  struct minute_counts {
    int bookings = 0, unserved = 0, accepted = 0, declined = 0, silent = 0;
  };

  // --- the tree -----------------------------------------------------------

  dt::service_options instance(const std::string& name, const std::string& peer) const {
    dt::service_options o;
    o.instance = name;
    o.peer = peer;
    o.store = store_name;
    o.logger = log_;
    return o;
  }

  void start_tree() {
    auto s = sup::start_link(gs::name{tree_name}, {.strategy = sup::one_for_one, .intensity = 3, .period = 60s},
                             {dt::store_child(store_name, log_, archive_), dt::service_child(instance(blue, green))});
    if (!s) throw std::runtime_error("the supervision tree did not start: " + s.error().to_string());
    target_ = dt::service_ref(blue);
    log_->info("supervision tree up: {} (one_for_one) -> {}, {} (peer: {}); reports go to {}", tree_name, store_name,
               blue, green, blue);
  }

  // --- time and events ----------------------------------------------------

  [[nodiscard]] milliseconds now() const { return now_on(*clock_); }

  /// Wait until virtual time t (a receive timeout on the runtime's clock).
  void sleep_until(milliseconds t) {
    const milliseconds left = t - now();
    if (left > 0ms) ember::receive(ember::after(left, [] {}));
  }

  void schedule(milliseconds at, kind what, dt::driver_id d = 0, int booking = 0,
                dt::driver_event message = dt::driver_event::available) {
    events_.push(event{at, ++seq_, what, d, booking, message});
  }

  milliseconds random_between(milliseconds lo, milliseconds hi) {
    return milliseconds(std::uniform_int_distribution<std::int64_t>(lo.count(), hi.count())(rng_));
  }
  double roll() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

  void handle(const event& e) {
    switch (e.what) {
      case kind::booking: return offer(e.booking);
      case kind::answer: return answer(e);
      case kind::silence: return silence(e);
      case kind::late_message: return late_message(e);
      case kind::back_online: return back_online(e.driver);
      case kind::minute_summary: return minute_summary();
      case kind::quieter:
        log_->info("(from here on, one summary a minute instead of a line per event)");
        log_->set_level(spdlog::level::info);
        return;
      case kind::crash: return crash();
      case kind::hand_over: return hand_over();
      case kind::check_pending: return check_status(e.driver, dt::driver_status::no_answer, "1 ms before");
      case kind::check_idle: return check_status(e.driver, dt::driver_status::idle, "1 ms after");
      case kind::shutdown: return shutdown();
    }
  }

  // --- the dispatcher and the drivers ---------------------------------------

  /// A driver with no pending script event whom the store has as idle.
  std::optional<dt::driver_id> pick_idle_driver() {
    const auto first = std::uniform_int_distribution<dt::driver_id>(0, driver_count - 1)(rng_);
    for (dt::driver_id i = 0; i < driver_count; ++i) {
      const dt::driver_id d = (first + i) % driver_count + 1;
      if (!engaged_.contains(d) && dt::status_of(store_name, d) == dt::driver_status::idle) return d;
    }
    return std::nullopt;
  }

  void offer(int booking) {
    if (booking + 1 < booking_count) schedule(now() + booking_interval, kind::booking, 0, booking + 1);
    ++minute_.bookings;
    const std::optional<dt::driver_id> picked = pick_idle_driver();
    if (!picked) {
      ++minute_.unserved;
      log_->debug("booking {}: no idle driver", booking);
      return;
    }
    const dt::driver_id d = *picked;
    engaged_.insert(d);
    silent_for_good_.erase(d);
    log_->debug("booking {} offered to driver {}", booking, d);
    const double r = roll();
    if (r < 0.55)
      schedule(now() + random_between(2s, 12s), kind::answer, d, booking, dt::driver_event::accepted);
    else if (r < 0.70)
      schedule(now() + random_between(2s, 12s), kind::answer, d, booking, dt::driver_event::declined);
    else
      schedule(now() + answer_window, kind::silence, d, booking);
  }

  void answer(const event& e) {
    log_->debug("driver {} {} booking {}", e.driver, dt::to_string(e.message), e.booking);
    dt::report_driver_event(target_, e.driver, e.message);
    if (e.message == dt::driver_event::accepted) {
      ++minute_.accepted;
      schedule(now() + random_between(2min, 8min), kind::back_online, e.driver);  // the trip
    } else {
      ++minute_.declined;
      engaged_.erase(e.driver);
    }
  }

  void silence(const event& e) {
    ++minute_.silent;
    log_->debug("driver {}: no answer to booking {} within {}", e.driver, e.booking, seconds_text(answer_window));
    dt::report_no_answer(target_, e.driver);
    const double r = roll();
    const milliseconds late = now() + random_between(5s, 50s);
    if (r < 0.20) {
      schedule(late, kind::late_message, e.driver, e.booking, dt::driver_event::accepted);
    } else if (r < 0.35) {
      schedule(late, kind::late_message, e.driver, e.booking, dt::driver_event::declined);
    } else if (r < 0.45) {
      schedule(late, kind::late_message, e.driver, e.booking, dt::driver_event::went_offline);
    } else {
      engaged_.erase(e.driver);  // silent for good: the store keeps it out of dispatch until idle
      silent_for_good_.insert(e.driver);
    }
  }

  void late_message(const event& e) {
    log_->debug("driver {} {}, late (booking {})", e.driver, dt::to_string(e.message), e.booking);
    dt::report_driver_event(target_, e.driver, e.message);
    if (e.message == dt::driver_event::accepted)
      schedule(now() + random_between(2min, 8min), kind::back_online, e.driver);
    else if (e.message == dt::driver_event::went_offline)
      schedule(now() + random_between(2min, 6min), kind::back_online, e.driver);
    else
      engaged_.erase(e.driver);
  }

  void back_online(dt::driver_id d) {
    log_->debug("driver {} is available again", d);
    dt::report_driver_event(target_, d, dt::driver_event::available);
    engaged_.erase(d);
  }

  void minute_summary() {
    const dt::status_tally t = dt::tally(store_name);
    log_->info("minute {:2} | bookings {:2}: accepted {:2}, declined {:2}, silent {:2}, unserved {:2} | countdowns: "
               "cancelled by a driver message {:2}, ended (idle) {:2}, pending on {} {:2}",
               now().count() / 60000, minute_.bookings, minute_.accepted, minute_.declined, minute_.silent,
               minute_.unserved, t.ended_by_driver - last_tally_.ended_by_driver,
               t.ended_by_countdown - last_tally_.ended_by_countdown, target_.name(), dt::pending_countdowns(target_));
    last_tally_ = t;
    minute_ = {};
  }

  /// A silent-for-good driver whose countdown has at least 10 s left on svc.
  std::optional<std::pair<dt::driver_id, milliseconds>> sample_countdown(const dt::service_ref& svc) {
    for (dt::driver_id d : silent_for_good_)
      if (const std::optional<milliseconds> left = dt::time_left(svc, d); left && *left >= 10s) return {{d, *left}};
    return std::nullopt;
  }

  // --- the scripted moments -------------------------------------------------

  void crash() {
    const ember::pid killed = ember::whereis(blue).value();
    const std::size_t pending = dt::pending_countdowns(blue);
    const auto sample = sample_countdown(blue);
    log_->info("---- fault: killing {} {} with exit(pid, kill): no terminate runs, so no drain; it holds {} "
               "countdowns",
               blue, killed, pending);
    const ember::monitor_ref m = ember::monitor(killed);
    ember::exit(killed, ember::exit_reason::kill());
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));

    // The supervisor got the exit signal before this call (the link's signal
    // precedes the monitor's down), so it answers after restarting the child.
    ember::pid restarted;
    for (const sup::child_info& c : sup::which_children(sup::ref(tree_name)))
      if (c.id == blue) restarted = c.pid;
    const std::size_t recovered = dt::pending_countdowns(blue);
    log_->info("the supervisor restarted {} as {}; it recovered {} countdowns from the status store", blue, restarted,
               recovered);
    expect(!restarted.is_null() && restarted != killed, "the service was restarted under its name");
    expect(recovered == pending, "every countdown of the killed instance was recovered from the store");
    if (sample) {
      const std::optional<milliseconds> now_left = dt::time_left(blue, sample->first);
      log_->info("driver {}: {} left before the kill, {} now: the remaining time lived only in the killed process, "
                 "so the countdown starts over (idle up to 55 s late, never early)",
                 sample->first, seconds_text(sample->second), seconds_text(now_left));
      expect(now_left == dt::default_no_answer_timeout, "a recovered countdown runs the full timeout");
    }
    log_->info("survived: the statuses and countdown owners (the store is another process), the name and the "
               "child spec (the supervisor's); lost: the timers and their remaining times (addressed to the dead "
               "pid, they are dropped when due and can never fire twice)");
  }

  void hand_over() {
    log_->info("---- rolling hand-over: start {}, send new reports to it, then stop {} (its terminate hands the "
               "countdowns over)",
               green, blue);
    const sup::ref tree(tree_name);
    const sup::child_result started = sup::start_child(tree, dt::service_child(instance(green, blue)));
    if (!started) throw std::runtime_error("could not start " + green + ": " + started.message());
    target_ = dt::service_ref(green);

    const std::size_t pending = dt::pending_countdowns(blue);
    const auto sample = sample_countdown(blue);
    const sup::child_result stopped = sup::terminate_child(tree, blue);
    if (!stopped) throw std::runtime_error("could not stop " + blue + ": " + stopped.message());

    const std::size_t taken = dt::pending_countdowns(green);
    expect(taken == pending, "the peer holds every countdown handed over");
    if (sample) {
      const auto [d, before] = *sample;
      const std::optional<milliseconds> after = dt::time_left(green, d);
      log_->info("driver {}: {} left on {}, {} on {}: re-armed with exactly the time it had left", d,
                 seconds_text(before), blue, seconds_text(after), green);
      expect(after == before, "a handed-over countdown keeps its remaining time");
      const milliseconds deadline = now() + before;
      log_->info("driver {}: its deadline stays {}; checking 1 ms before and 1 ms after it", d, clock_text(deadline));
      schedule(deadline - 1ms, kind::check_pending, d);
      schedule(deadline + 1ms, kind::check_idle, d);  // +1 ms: green handles its timer before this check runs
    }
  }

  void check_status(dt::driver_id d, dt::driver_status expected, const char* when) {
    const dt::driver_status s = dt::status_of(store_name, d);
    log_->info("driver {}: {} ({} its deadline)", d, dt::to_string(s), when);
    expect(s == expected, "a handed-over countdown ends at its original deadline");
  }

  void shutdown() {
    const std::size_t pending = dt::pending_countdowns(target_);
    log_->info("---- graceful shutdown: stopping {}; children stop in reverse start order: {} drains first (countdowns "
               "pending: {}; no peer is running, so they are set idle), the store last",
               tree_name, green, pending);
    drained_expected_ = pending;
    gs::stop(sup::ref(tree_name), ember::exit_reason::shutdown());
  }

  // --- checks ---------------------------------------------------------------

  void expect(bool ok, const char* what) {
    if (ok) return;
    ++failed_;
    log_->error("CHECK FAILED: {}", what);
  }

  bool final_checks() {
    std::lock_guard lk(archive_->mu);
    expect(archive_->written, "the store left its table when it stopped");
    const dt::status_tally& t = archive_->tally;
    log_->info("final: {} drivers: {} idle, {} busy, {} offline, {} no_answer", t.drivers, t.idle, t.busy, t.offline,
               t.no_answer);
    log_->info("final: {} no-answer episodes: {} ended by countdown, {} by the drain, {} by a message about the "
               "driver; {} refused back-to-idle requests",
               t.episodes, t.ended_by_countdown, t.ended_by_drain, t.ended_by_driver, t.refused);
    expect(t.no_answer == 0, "no driver is left in no_answer");
    expect(t.refused == 0, "no driver was set idle twice");
    expect(t.consistent(), "every no-answer episode ended exactly once");
    expect(t.ended_by_drain == drained_expected_, "the drain set every pending driver idle");
    log_->info("{}", failed_ == 0 ? "every no-answer episode ended exactly once; no driver lost"
                                  : fmt::format("{} checks failed", failed_));
    return failed_ == 0;
  }

  std::shared_ptr<ember::manual_clock> clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<dt::status_archive> archive_;
  std::mt19937_64 rng_{20240607};
  std::priority_queue<event, std::vector<event>, later> events_;
  std::uint64_t seq_ = 0;
  dt::service_ref target_;                   // where reports go
  std::set<dt::driver_id> engaged_;          // drivers with a script event pending
  std::set<dt::driver_id> silent_for_good_;  // silent drivers no late message will save
  minute_counts minute_;
  dt::status_tally last_tally_;  // at the previous summary
  std::size_t drained_expected_ = 0;
  int failed_ = 0;
};

}  // namespace

int main() {
  const auto wall_start = std::chrono::steady_clock::now();
  auto clock = std::make_shared<ember::manual_clock>();
  auto log = make_logger(clock);

  ember::runtime_options o;
  o.workers = 1;  // a manual clock drives one worker
  o.clock = clock;
  o.logger = log;
  ember::runtime rt(o);

  auto archive = std::make_shared<dt::status_archive>();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  auto passed = std::make_shared<std::atomic<bool>>(false);
  auto root = rt.spawn_monitor([clock, log, archive, finished, passed] {
    struct mark_finished {
      std::atomic<bool>& flag;
      ~mark_finished() { flag.store(true); }
    } guard{*finished};
    passed->store(simulation(clock, log, archive).run());
  });

  // Drive virtual time until the simulation has run its course.
  while (!finished->load() && now_on(*clock) < time_limit) clock->advance(1s);
  if (!finished->load()) {
    log->error("the simulation did not finish within {} of virtual time", clock_text(time_limit));
    return 1;
  }
  const ember::exit_reason r = root.wait();
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  log->info("simulated {} of dispatching in {:.3f} s of wall time", clock_text(now_on(*clock)), wall_s);
  if (!r.is_normal()) {
    log->error("the simulation ended with {}", r.to_string());
    return 1;
  }
  return passed->load() ? 0 : 1;
}
