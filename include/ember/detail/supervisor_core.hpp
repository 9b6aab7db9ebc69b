// ember/detail/supervisor_core.hpp — what the static and the dynamic
// supervisor share (a child table indexed by id, key and pid; the restart
// window; starting, stopping and restarting children; reports) and their
// two servers.  Internal: included by impl/supervisor.ipp only; the public
// API is supervisor.hpp and dynamic_supervisor.hpp.
//
// Costs (a supervisor may hold 100,000 children): finding a child by id, by
// pid or by restart key is one hash lookup; adding and removing one is O(1);
// stopping n children is O(n log n) (a sort of their deadlines); each
// message is looked at once (message_lanes), so a shutdown with m calls
// queued costs O(n + m), not O(n·m).
//
// Threads: owner only (the supervisor's process).
// Ownership: the supervisor owns its child specs and states.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ember/detail/message_lanes.hpp"
#include "ember/dynamic_supervisor.hpp"
#include "ember/supervisor.hpp"

namespace ember::supervisor::detail {

/// A child as a supervisor keeps it.
struct child_state {
  child_spec spec;
  std::uint64_t key = 0;      // names it in a restart_tick
  ember::pid pid;             // the running child; null otherwise
  ember::pid indexed;         // the pid the table finds it by (running: pid; restarting: the one that exited)
  bool restarting = false;    // a restart is scheduled (backoff or retry)
  std::uint64_t gen = 0;      // tells a stale restart_tick from the current one
  std::int64_t started_ns = 0;
  std::int64_t next_delay_ms = -1;  // backoff: the next delay; -1: initial
};

/// A scheduled restart (backoff delay, or a retry after a failed start).
struct restart_tick {
  std::uint64_t key;  // child_state::key
  std::uint64_t gen;
};

/// The children in start order, with O(1) lookups by id (static
/// supervisors), by key and by pid.  Pointers and iterators to a child stay
/// valid until it is erased.
class child_table {
public:
  using list = std::list<child_state>;
  using iterator = list::iterator;

  explicit child_table(bool index_ids) : ids_(index_ids) {}

  /// Add a child at the end (its id must be free when ids are indexed).
  iterator add(child_spec spec, std::uint64_t key);
  void erase(iterator it);
  [[nodiscard]] iterator find(std::string_view id);
  [[nodiscard]] iterator find_key(std::uint64_t key);
  /// The child running as p, or waiting to restart after p exited.
  [[nodiscard]] iterator find_pid(const ember::pid& p);
  /// c runs as p now (null: forget the pid it was found by).
  void index_pid(child_state& c, const ember::pid& p);

  [[nodiscard]] iterator begin() noexcept { return items_.begin(); }
  [[nodiscard]] iterator end() noexcept { return items_.end(); }
  [[nodiscard]] list& items() noexcept { return items_; }
  [[nodiscard]] const list& items() const noexcept { return items_; }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }

private:
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  bool ids_;
  list items_;
  std::unordered_map<std::string, iterator, text_hash, std::equal_to<>> by_id_;
  std::unordered_map<std::uint64_t, iterator> by_key_;
  std::unordered_map<std::uint64_t, iterator> by_pid_;  // pid serial -> child
};

/// t in nanoseconds, saturated at the largest int64 (a period or
/// shutdown time of centuries must not wrap around to a negative one).
constexpr std::int64_t saturated_ns(std::chrono::milliseconds t) noexcept {
  constexpr std::int64_t cap = std::numeric_limits<std::int64_t>::max() / 1000000;
  if (t.count() <= 0) return 0;
  return t.count() >= cap ? std::numeric_limits<std::int64_t>::max() : t.count() * 1000000;
}
/// a + b for b >= 0, saturated at the largest int64.
constexpr std::int64_t saturated_add(std::int64_t a, std::int64_t b) noexcept {
  return a > std::numeric_limits<std::int64_t>::max() - b ? std::numeric_limits<std::int64_t>::max() : a + b;
}

/// Restarts within the period (OTP's add_restart).  A restart is in the
/// window while now - t <= period; the period saturates, so a period of
/// centuries (milliseconds::max()) still counts every restart.
class restart_window {
public:
  restart_window(int intensity, std::chrono::milliseconds period)
      : intensity_(intensity), period_ns_(saturated_ns(period)) {}
  /// Record a restart at now; true when that makes too many.
  bool add(std::int64_t now_ns);

private:
  int intensity_;
  std::int64_t period_ns_;
  std::vector<std::int64_t> times_;
};

/// What the supervisors share: the children, the lanes, reports, starting
/// and stopping children, restart decisions, backoff.
struct sup_base {
  std::string name;  // for reports; the pid when empty
  restart_window window;
  child_table children;
  ember::detail::message_lanes lanes;

  sup_base(std::string n, int intensity, std::chrono::milliseconds period, bool index_ids)
      : name(std::move(n)), window(intensity, period), children(index_ids) {}
  [[nodiscard]] std::string label() const;
  /// The next message for the supervisor's gen_server loop: exit signals
  /// first (see message_lanes.hpp).
  ember::detail::envelope* take_message(ember::detail::process* self);
  /// Run c's start function; on success c runs (c.pid, indexed).  A start
  /// function that exits or throws fails the start; one that returns the
  /// supervisor's own pid, another child's, or a process not linked to the
  /// supervisor fails it too.  Reports.
  started start(child_state& c);
  /// Stop the children (unlink, `shutdown` or kill, wait, kill after the
  /// shutdown time), all at once; reports those that did not stop with
  /// `shutdown`.  Their pids are cleared and forgotten.
  void stop_children(const std::vector<child_state*>& cs);
  void stop_child(child_state& c) { stop_children({&c}); }
  /// After c exited with r: report it; true when it is to be restarted.
  /// c.pid is cleared; the table still finds c by the pid it had.
  bool exited(child_state& c, const exit_reason& r);
  /// Schedule a restart of c: after its backoff delay, if it has one, else
  /// at once (a retry after a failed start).
  void schedule(child_state& c);
  /// The restart is due: false when the intensity is exceeded (reported).
  bool may_restart();
  void report_auto_shutdown(const std::string& id);
  [[nodiscard]] static child_info info_of(const child_state& c);

private:
  /// Why pid p, returned by c's start function, cannot be c ("" if it can).
  std::string refuse_pid(const child_state& c, const ember::pid& p);
};

/// A bad flag throws spec_error.
void validate(const flags& f);
/// The first problem in c (under auto_shutdown a), or nullopt.
std::optional<spec_error> check(const child_spec& c, bool need_id, auto_shutdown a);
void validate(const child_spec& c, bool need_id, auto_shutdown a);
/// check() on each, and repeated ids.
std::optional<spec_error> check_all(const std::vector<child_spec>& children, auto_shutdown a);
/// A spec_error carried in a child_result's reason (start_child rethrows it).
struct spec_problem {
  spec_field field;
  std::string id;
  std::string text;
};
/// The child_result of a start that did not succeed.
child_result failed(const started& s);

class static_server : public gen_server::behaviour<static_server> {
public:
  struct which_req {};
  struct count_req {};
  struct start_req {
    child_spec spec;
  };
  struct terminate_req {
    std::string id;
  };
  struct restart_req {
    std::string id;
  };
  struct delete_req {
    std::string id;
  };
  struct which_child_req {
    std::string id;
  };
  struct spec_req {
    std::string id;
  };
  using info = gen_server::types<exit_message, restart_tick>;

  static_server(init_fn init, std::string name);
  next init();
  std::vector<child_info> handle_call(const which_req&);
  child_counts handle_call(const count_req&);
  child_result handle_call(start_req r);
  child_result handle_call(const terminate_req& r);
  child_result handle_call(const restart_req& r);
  child_result handle_call(const delete_req& r);
  std::optional<child_info> handle_call(const which_child_req& r);
  std::optional<child_spec> handle_call(const spec_req& r);
  next handle_info(const exit_message& m);
  next handle_info(const restart_tick& t);
  void terminate(const exit_reason& r);
  ember::detail::envelope* take_message(ember::detail::process* self) { return base_.take_message(self); }

private:
  using iterator = child_table::iterator;
  /// Restart child it by the strategy; a start that fails is retried.
  void restart(iterator it);
  /// Start the children from it on that are not running, in order, until
  /// one fails (its retry is scheduled).
  void start_from(iterator it);
  /// Stop the running children in [from, end) in reverse order, then drop
  /// the temporary ones among them.
  void stop_from(iterator from);
  /// c is no longer running and will not be restarted: a temporary child
  /// goes, another stays as stopped.
  void settle_stopped(iterator it);
  /// gone, which exited by itself and is not restarted, ends the supervisor
  /// by its auto_shutdown.
  [[nodiscard]] bool auto_shutdown_due(const child_state& gone) const;

  flags flags_;
  sup_base base_;
  init_fn init_;
  std::uint64_t next_key_ = 1;
};

}  // namespace ember::supervisor::detail

namespace ember::dynamic_supervisor::detail {

using supervisor::detail::child_state;
using supervisor::detail::restart_tick;

class server : public gen_server::behaviour<server> {
public:
  struct start_req {
    child_spec spec;
  };
  struct terminate_req {
    ember::pid child;
  };
  struct which_req {};
  struct count_req {};
  using info = gen_server::types<exit_message, restart_tick>;

  server(flags f, std::string name);
  next init();
  child_result handle_call(start_req r);
  child_result handle_call(const terminate_req& r);
  std::vector<child_info> handle_call(const which_req&);
  child_counts handle_call(const count_req&);
  next handle_info(const exit_message& m);
  next handle_info(const restart_tick& t);
  void terminate(const exit_reason& r);
  ember::detail::envelope* take_message(ember::detail::process* self) { return base_.take_message(self); }

private:
  using iterator = supervisor::detail::child_table::iterator;
  /// Start child it again: it runs, is removed (ignore), or waits for a
  /// retry (its start failed).
  void restart(iterator it);

  flags flags_;
  supervisor::detail::sup_base base_;
  std::uint64_t next_key_ = 1;
};

}  // namespace ember::dynamic_supervisor::detail

template <>
struct fmt::formatter<ember::supervisor::detail::spec_problem> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::supervisor::detail::spec_problem& p, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(p.text, ctx);
  }
};
