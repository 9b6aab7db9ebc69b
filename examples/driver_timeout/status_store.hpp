// examples/driver_timeout/status_store.hpp — the driver-status store of the
// driver-timeout example: a gen_server that holds each driver's status and
// counts every transition, so that the demo and the tests can check that
// each no-answer episode ends exactly once.
//
// In production this table would live in a database; here it is a process,
// which is enough to show what survives a crash of the timeout service (the
// store is a separate process, so its table does) and what does not.
//
// Rules:
//  - Statuses: idle, busy, no_answer, offline.  A driver the store has not
//    heard of is idle.
//  - A no-answer *episode* starts when a driver that is not in no_answer is
//    marked no_answer, and ends with exactly one of: back to idle by its
//    countdown, back to idle by a drain (a service stopping with no peer),
//    or a message about the driver (it accepted, declined, went offline,
//    came back).  Marking a driver already in no_answer continues its
//    episode.
//  - "Back to idle" (countdown or drain) applies only to a driver in
//    no_answer.  Any other is refused, logged as a warning and counted in
//    `refused`: it would end an episode a second time, or end none, and
//    could overwrite a newer status (a driver who accepted meanwhile).
//  - While a driver is in no_answer its countdown has an *owner*: the
//    service instance that holds the timer.  A hand-over moves it to the
//    peer; a restarted instance asks which countdowns it owns.
//  - When it stops, the store logs its tally and, if it was given an
//    archive, leaves a copy of its table there (what a database would keep).
//
// Threads: record_of, tally and owned_countdowns in process context (they
// are gen_server calls); the casts the service sends from any process; an
// archive is read from any thread once the store has stopped.
// Ownership: the table lives in the store's process and dies with it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "ember/ember.hpp"

namespace driver_timeout {

namespace gs = ember::gen_server;

using driver_id = std::uint64_t;

enum class driver_status : std::uint8_t { idle, busy, no_answer, offline };

inline std::string_view to_string(driver_status s) {
  switch (s) {
    case driver_status::idle: return "idle";
    case driver_status::busy: return "busy";
    case driver_status::no_answer: return "no_answer";
    case driver_status::offline: return "offline";
  }
  return "unknown";
}

/// One driver as the store knows it.
struct driver_record {
  driver_status status = driver_status::idle;
  /// While no_answer: the service instance holding the countdown.
  std::string countdown_owner;
  std::uint32_t no_answer_episodes = 0;
  std::uint32_t ended_by_countdown = 0;
  std::uint32_t ended_by_drain = 0;
  std::uint32_t ended_by_driver = 0;

  /// Every episode ended once, except the one still open, if any.
  [[nodiscard]] bool balanced() const noexcept {
    const std::uint32_t open = status == driver_status::no_answer ? 1 : 0;
    return no_answer_episodes == ended_by_countdown + ended_by_drain + ended_by_driver + open;
  }
};

/// The whole table, summed up.
struct status_tally {
  std::size_t drivers = 0;
  std::size_t idle = 0;
  std::size_t busy = 0;
  std::size_t no_answer = 0;
  std::size_t offline = 0;
  std::uint64_t episodes = 0;
  std::uint64_t ended_by_countdown = 0;
  std::uint64_t ended_by_drain = 0;
  std::uint64_t ended_by_driver = 0;
  /// Back-to-idle requests for a driver that was not in no_answer.
  std::uint64_t refused = 0;
  /// Drivers whose own counts do not add up (see driver_record::balanced).
  std::size_t unbalanced = 0;

  /// No episode ended twice or was lost, and nothing was refused.
  [[nodiscard]] bool consistent() const noexcept {
    return refused == 0 && unbalanced == 0 &&
           episodes == ended_by_countdown + ended_by_drain + ended_by_driver + no_answer;
  }
};

/// Where a stopping store leaves its table (a stand-in for the database).
/// Written once by the store's process, read by anyone after it stopped.
struct status_archive {
  std::mutex mu;
  bool written = false;                                   // guarded by mu
  std::unordered_map<driver_id, driver_record> records;  // guarded by mu
  status_tally tally;                                     // guarded by mu
};

class status_store : public gs::behaviour<status_store> {
public:
  // Casts (from the timeout service).
  struct mark_no_answer {
    driver_id driver;
    std::string owner;
  };
  struct driver_reported {
    driver_id driver;
    driver_status status;
  };
  struct idle_after_countdown {
    driver_id driver;
  };
  struct transfer_countdowns {
    std::vector<driver_id> drivers;
    std::string owner;
  };
  // Calls.
  struct idle_after_drain {  // -> how many were set idle
    std::vector<driver_id> drivers;
  };
  struct owned_countdowns {  // -> the drivers in no_answer owned by `owner`, ascending
    std::string owner;
  };
  struct record_request {  // -> driver_record
    driver_id driver;
  };
  struct tally_request {};  // -> status_tally

  explicit status_store(std::shared_ptr<spdlog::logger> log = nullptr,
                        std::shared_ptr<status_archive> archive = nullptr)
      : log_(log ? std::move(log) : spdlog::default_logger()), archive_(std::move(archive)) {}

  // Trapping exits makes a supervisor's shutdown run terminate (the tally
  // and the archive).
  void init() { ember::process_flag(ember::trap_exit, true); }

  void handle_cast(mark_no_answer m) {
    driver_record& r = table_[m.driver];
    if (r.status != driver_status::no_answer) ++r.no_answer_episodes;
    r.status = driver_status::no_answer;
    r.countdown_owner = std::move(m.owner);
  }

  void handle_cast(const driver_reported& m) {
    driver_record& r = table_[m.driver];
    if (r.status == driver_status::no_answer) {
      ++r.ended_by_driver;
      r.countdown_owner.clear();
    }
    r.status = m.status;
  }

  void handle_cast(const idle_after_countdown& m) { end_with_idle(m.driver, &driver_record::ended_by_countdown); }

  void handle_cast(const transfer_countdowns& m) {
    for (driver_id d : m.drivers) {
      auto it = table_.find(d);
      if (it != table_.end() && it->second.status == driver_status::no_answer) it->second.countdown_owner = m.owner;
    }
  }

  std::size_t handle_call(const idle_after_drain& m) {
    std::size_t n = 0;
    for (driver_id d : m.drivers) n += end_with_idle(d, &driver_record::ended_by_drain) ? 1 : 0;
    return n;
  }

  std::vector<driver_id> handle_call(const owned_countdowns& m) const {
    std::vector<driver_id> out;
    for (const auto& [d, r] : table_)
      if (r.status == driver_status::no_answer && r.countdown_owner == m.owner) out.push_back(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  driver_record handle_call(const record_request& m) const {
    auto it = table_.find(m.driver);
    return it == table_.end() ? driver_record{} : it->second;
  }

  status_tally handle_call(const tally_request&) const { return tally_now(); }

  void terminate(const ember::exit_reason& reason) {
    const status_tally t = tally_now();
    log_->info("status store stopping ({}): {} drivers: {} idle, {} busy, {} offline, {} no_answer; "
               "{} no-answer episodes: {} ended by countdown, {} by drain, {} by a driver message; {} refused",
               reason.to_string(), t.drivers, t.idle, t.busy, t.offline, t.no_answer, t.episodes,
               t.ended_by_countdown, t.ended_by_drain, t.ended_by_driver, t.refused);
    if (archive_) {
      std::lock_guard lk(archive_->mu);
      archive_->records = table_;
      archive_->tally = t;
      archive_->written = true;
    }
  }

private:
  /// no_answer -> idle, counted in `counter`; false (refused) otherwise.
  bool end_with_idle(driver_id d, std::uint32_t driver_record::*counter) {
    auto it = table_.find(d);
    if (it == table_.end() || it->second.status != driver_status::no_answer) {
      ++refused_;
      log_->warn("status store: refused to set driver {} idle: it is {}, not no_answer", d,
                 it == table_.end() ? std::string_view("unknown") : to_string(it->second.status));
      return false;
    }
    driver_record& r = it->second;
    r.status = driver_status::idle;
    r.countdown_owner.clear();
    ++(r.*counter);
    return true;
  }

  [[nodiscard]] status_tally tally_now() const {
    status_tally t;
    t.drivers = table_.size();
    t.refused = refused_;
    for (const auto& [d, r] : table_) {
      switch (r.status) {
        case driver_status::idle: ++t.idle; break;
        case driver_status::busy: ++t.busy; break;
        case driver_status::no_answer: ++t.no_answer; break;
        case driver_status::offline: ++t.offline; break;
      }
      t.episodes += r.no_answer_episodes;
      t.ended_by_countdown += r.ended_by_countdown;
      t.ended_by_drain += r.ended_by_drain;
      t.ended_by_driver += r.ended_by_driver;
      if (!r.balanced()) ++t.unbalanced;
    }
    return t;
  }

  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<status_archive> archive_;
  std::unordered_map<driver_id, driver_record> table_;
  std::uint64_t refused_ = 0;
};

using store_ref = gs::server<status_store>;

/// The name the store registers under unless told otherwise.
inline constexpr std::string_view default_store_name = "driver_status";

/// The store as a supervisor child, registered under `name`.
inline ember::supervisor::child_spec store_child(std::string name, std::shared_ptr<spdlog::logger> log = nullptr,
                                                 std::shared_ptr<status_archive> archive = nullptr) {
  std::string id = name;
  return ember::supervisor::worker<status_store>(std::move(id), gs::name{std::move(name)}, std::move(log),
                                                 std::move(archive));
}

inline driver_record record_of(const store_ref& store, driver_id d) {
  return gs::call(store, status_store::record_request{d});
}
inline driver_status status_of(const store_ref& store, driver_id d) { return record_of(store, d).status; }
inline status_tally tally(const store_ref& store) { return gs::call(store, status_store::tally_request{}); }

}  // namespace driver_timeout
