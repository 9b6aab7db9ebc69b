// examples/driver_timeout/driver_timeout.hpp — the driver-timeout service:
// a gen_server that sets a driver who did not answer a booking back to idle
// 55 seconds later, unless a message about that driver comes first.
//
//   auto svc = driver_timeout::service_ref("driver_timeouts.blue");
//   driver_timeout::report_no_answer(svc, 17);                  // 17: no_answer; idle in 55 s
//   driver_timeout::time_left(svc, 17);                         // 55000 ms (read_timer)
//   driver_timeout::report_driver_event(svc, 17, driver_timeout::driver_event::accepted);
//                                                               // 17's countdown cancelled, 17 busy
//
// The rules (docs/examples/driver_timeout.md has them as a table):
//  - A no-answer report marks the driver no_answer in the status store and
//    starts the driver's own countdown: a send_after timer to this
//    instance's pid.  A second report for the same driver starts it over
//    (the old timer is cancelled; its generation makes a message it left
//    behind harmless).
//  - When the countdown is due the driver is set idle (in the store), once.
//  - A message about a driver (accepted, declined, went offline, available)
//    cancels that driver's countdown, and no other, and records the status
//    it implies.  A countdown whose timer fired but whose message this
//    instance has not handled yet is cancelled too: each countdown carries a
//    generation, and a due message that no longer matches is ignored.
//  - time_left answers read_timer's remaining time (0 ms when the timer has
//    fired and its message is on its way), or nullopt when the driver has no
//    countdown.
//  - Drain (terminate, whatever the reason — the service traps exits, so a
//    supervisor's shutdown runs it):
//      1. stop taking new countdowns: from here on this instance handles no
//         message.  Reports queued behind the shutdown die with it, so send
//         new reports to the peer before stopping an instance;
//      2. cancel every timer and keep the time each had left (cancel_timer's
//         result; a timer that already fired counts as 0 ms left: its
//         message would die in this mailbox).  Cancelling rather than
//         reading makes the time final and frees each timer now instead of
//         at its deadline;
//      3. with a live peer: hand the set over in one call; the peer re-arms
//         each countdown with exactly the time it had left and takes it
//         over in the store;
//      4. with no peer (or a failed hand-over): set every pending driver
//         idle in the store, and wait for the store to confirm, before the
//         instance stops.
//  - Killed (no terminate runs), the instance's countdowns die with it: its
//    timers are addressed to its pid, so they are dropped when due and can
//    neither fire twice nor reach the restarted instance.  The drivers stay
//    no_answer in the store, owned by this instance's name; the restarted
//    instance asks the store for them in init and re-arms each with the
//    full timeout — their deadlines were only in the dead process, so each
//    goes idle up to one timeout late, never early.  (So init needs the
//    store running: start the store first, as the supervision tree does.)
//
// Threads: report_no_answer/report_driver_event from any process;
// time_left, pending_countdowns, and starting the service in process
// context.  Ownership: the countdowns (driver -> timer) live in the
// service's process; the statuses in the status store's.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "ember/ember.hpp"
#include "status_store.hpp"

namespace driver_timeout {

/// The rule of the service: a driver in no_answer goes back to idle after this.
inline constexpr std::chrono::milliseconds default_no_answer_timeout{55'000};

/// A message about a driver.
enum class driver_event : std::uint8_t {
  accepted,      // took the booking: busy
  declined,      // refused it: idle
  went_offline,  // offline
  available,     // finished a trip or came back online: idle
};

inline std::string_view to_string(driver_event e) {
  switch (e) {
    case driver_event::accepted: return "accepted";
    case driver_event::declined: return "declined";
    case driver_event::went_offline: return "went offline";
    case driver_event::available: return "available";
  }
  return "unknown";
}

/// The status a message about a driver implies.
inline driver_status status_after(driver_event e) {
  switch (e) {
    case driver_event::accepted: return driver_status::busy;
    case driver_event::went_offline: return driver_status::offline;
    case driver_event::declined:
    case driver_event::available: return driver_status::idle;
  }
  return driver_status::idle;
}

struct service_options {
  /// The name this instance registers under; also the owner of its
  /// countdowns in the store.
  std::string instance;
  /// The instance to hand countdowns over to when this one stops ("": none).
  std::string peer;
  /// The status store's registered name.
  std::string store = std::string(default_store_name);
  std::chrono::milliseconds no_answer_timeout = default_no_answer_timeout;
  /// How long a hand-over waits for the peer; keep it below the instance's
  /// shutdown time (5 s for a supervisor worker).
  std::chrono::milliseconds hand_over_timeout{2'000};
  /// Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

/// One countdown as a hand-over carries it.
struct handed_countdown {
  driver_id driver;
  std::chrono::milliseconds remaining;
};

/// The peer's answer to a hand-over.
struct hand_over_receipt {
  std::size_t rearmed = 0;          // re-armed with the time they had left
  std::size_t already_pending = 0;  // the peer had a newer countdown for the driver: kept
};

class timeout_service : public gs::behaviour<timeout_service> {
public:
  // Casts.
  struct no_answer_report {
    driver_id driver;
  };
  struct driver_report {
    driver_id driver;
    driver_event event;
  };
  // Calls.
  struct time_left_request {  // -> optional<milliseconds>
    driver_id driver;
  };
  struct pending_request {};  // -> size_t
  struct hand_over {          // -> hand_over_receipt
    std::string from;
    std::vector<handed_countdown> countdowns;
  };
  /// What a countdown's timer delivers.  Generations count from 1 in each
  /// instance, one per timer it starts.
  struct countdown_due {
    driver_id driver;
    std::uint64_t generation;
  };
  using info = gs::types<countdown_due>;

  explicit timeout_service(service_options o)
      : opts_(std::move(o)),
        log_(opts_.logger ? opts_.logger : spdlog::default_logger()),
        store_(opts_.store) {}

  void init() {
    // Trapping exits makes a supervisor's shutdown run terminate (the drain).
    ember::process_flag(ember::trap_exit, true);
    recover();
  }

  void handle_cast(const no_answer_report& r) {
    if (auto it = countdowns_.find(r.driver); it != countdowns_.end()) {
      ember::cancel_timer(it->second.timer);  // starts over; a due message left behind is stale
      countdowns_.erase(it);
    }
    gs::cast(store_, status_store::mark_no_answer{r.driver, opts_.instance});
    arm(r.driver, opts_.no_answer_timeout);
    log_->debug("{}: driver {} did not answer: no_answer, idle in {} ms", opts_.instance, r.driver,
                opts_.no_answer_timeout.count());
  }

  void handle_cast(const driver_report& r) {
    if (auto it = countdowns_.find(r.driver); it != countdowns_.end()) {
      const std::optional<std::chrono::milliseconds> left = ember::cancel_timer(it->second.timer);
      countdowns_.erase(it);
      if (left)
        log_->debug("{}: driver {} {}: countdown cancelled with {} ms left", opts_.instance, r.driver,
                    to_string(r.event), left->count());
      else
        log_->debug("{}: driver {} {}: countdown cancelled as it fired (its due message will be ignored)",
                    opts_.instance, r.driver, to_string(r.event));
    }
    gs::cast(store_, status_store::driver_reported{r.driver, status_after(r.event)});
  }

  std::optional<std::chrono::milliseconds> handle_call(const time_left_request& q) const {
    auto it = countdowns_.find(q.driver);
    if (it == countdowns_.end()) return std::nullopt;
    // Fired, with its message on the way to this mailbox: due now.
    return ember::read_timer(it->second.timer).value_or(std::chrono::milliseconds::zero());
  }

  std::size_t handle_call(const pending_request&) const { return countdowns_.size(); }

  hand_over_receipt handle_call(hand_over h) {
    hand_over_receipt receipt;
    std::vector<driver_id> taken;
    taken.reserve(h.countdowns.size());
    for (const handed_countdown& c : h.countdowns) {
      if (countdowns_.contains(c.driver)) {  // a report reached this instance after the hand-over began
        ++receipt.already_pending;
        continue;
      }
      arm(c.driver, std::clamp(c.remaining, std::chrono::milliseconds::zero(), ember::max_timer_delay));
      taken.push_back(c.driver);
    }
    receipt.rearmed = taken.size();
    gs::cast(store_, status_store::transfer_countdowns{std::move(taken), opts_.instance});
    log_->info("{}: took over {} countdowns from {} with the time each had left ({} already pending here)",
               opts_.instance, receipt.rearmed, h.from, receipt.already_pending);
    return receipt;
  }

  void handle_info(const countdown_due& due) {
    auto it = countdowns_.find(due.driver);
    if (it == countdowns_.end() || it->second.generation != due.generation) return;  // cancelled or restarted
    countdowns_.erase(it);
    gs::cast(store_, status_store::idle_after_countdown{due.driver});
    log_->debug("{}: driver {}: no answer for the whole countdown: idle", opts_.instance, due.driver);
  }

  void terminate(const ember::exit_reason& reason) { drain(reason); }

private:
  struct countdown {
    ember::timer_ref timer;
    std::uint64_t generation;
  };

  void arm(driver_id d, std::chrono::milliseconds delay) {
    const std::uint64_t gen = ++last_generation_;
    // To this instance's pid, not its name: a restarted instance must not
    // receive a countdown it has no record of.
    countdowns_[d] = countdown{ember::send_after(ember::self(), delay, countdown_due{d, gen}), gen};
  }

  /// Re-arm the countdowns the store says this instance owned (a previous
  /// incarnation was killed without draining), each at the full timeout.
  void recover() {
    const std::vector<driver_id> owned = gs::call(store_, status_store::owned_countdowns{opts_.instance});
    for (driver_id d : owned) arm(d, opts_.no_answer_timeout);
    if (!owned.empty())
      log_->warn("{}: recovered {} countdowns from the status store; re-armed each at the full {} ms "
                 "(the time they had left died with the previous instance)",
                 opts_.instance, owned.size(), opts_.no_answer_timeout.count());
  }

  /// The drain, as numbered at the top of this file.
  void drain(const ember::exit_reason& reason) {
    // 1. Nothing else runs in this process from here: no new countdowns.
    // 2. Cancel every timer, keeping what each had left (fired: due now).
    std::vector<handed_countdown> set;
    std::vector<driver_id> drivers;
    set.reserve(countdowns_.size());
    drivers.reserve(countdowns_.size());
    for (const auto& [d, c] : countdowns_) {
      set.push_back({d, ember::cancel_timer(c.timer).value_or(std::chrono::milliseconds::zero())});
      drivers.push_back(d);
    }
    countdowns_.clear();
    log_->info("{}: draining ({}): {} countdowns pending", opts_.instance, reason.to_string(), set.size());
    if (set.empty()) return;

    // 3. Hand them to a live peer.
    if (!opts_.peer.empty()) {
      const std::optional<ember::pid> peer = ember::whereis(opts_.peer);
      if (peer && *peer != ember::self()) {
        try {
          const hand_over_receipt r = gs::call<timeout_service>(
              *peer, hand_over{opts_.instance, std::move(set)}, opts_.hand_over_timeout);
          log_->info("{}: handed {} countdowns over to {} ({} re-armed, {} already pending there)", opts_.instance,
                     drivers.size(), opts_.peer, r.rearmed, r.already_pending);
          return;
        } catch (const ember::call_error& e) {
          // The store refuses a second back-to-idle, so settling here after
          // a peer that took the set but did not answer cannot idle anyone twice.
          log_->error("{}: hand-over to {} failed ({}); setting the drivers idle here", opts_.instance,
                      opts_.peer, e.what());
        }
      } else {
        log_->info("{}: peer {} is not running", opts_.instance, opts_.peer);
      }
    }

    // 4. No peer: every pending driver goes idle now, confirmed by the store.
    try {
      const std::size_t n = gs::call(store_, status_store::idle_after_drain{drivers});
      log_->info("{}: no peer: set {} pending drivers idle", opts_.instance, n);
    } catch (const ember::call_error& e) {
      log_->error("{}: could not reach the status store ({}): {} drivers stay no_answer", opts_.instance, e.what(),
                  drivers.size());
    }
  }

  service_options opts_;
  std::shared_ptr<spdlog::logger> log_;
  store_ref store_;
  std::unordered_map<driver_id, countdown> countdowns_;
  std::uint64_t last_generation_ = 0;
};

using service_ref = gs::server<timeout_service>;

/// The service as a supervisor child: id and registered name are the instance name.
inline ember::supervisor::child_spec service_child(service_options o) {
  std::string id = o.instance;
  gs::name n{o.instance};
  return ember::supervisor::worker<timeout_service>(std::move(id), std::move(n), std::move(o));
}

/// Driver d did not answer its booking (cast: returns at once).
inline void report_no_answer(const service_ref& svc, driver_id d) {
  gs::cast(svc, timeout_service::no_answer_report{d});
}
/// A message about driver d (cast: returns at once).
inline void report_driver_event(const service_ref& svc, driver_id d, driver_event e) {
  gs::cast(svc, timeout_service::driver_report{d, e});
}
/// How long until driver d goes idle; nullopt: d has no countdown.
inline std::optional<std::chrono::milliseconds> time_left(const service_ref& svc, driver_id d) {
  return gs::call(svc, timeout_service::time_left_request{d});
}
inline std::size_t pending_countdowns(const service_ref& svc) {
  return gs::call(svc, timeout_service::pending_request{});
}

}  // namespace driver_timeout
