// ember/supervisor.hpp — OTP's supervisor: a process that starts children,
// watches them and restarts them by a strategy.
//
//   namespace sup = ember::supervisor;
//   auto s = sup::start_link({.strategy = sup::one_for_one, .intensity = 3},
//                            {sup::worker<db>("db", "db.example:5432"),
//                             sup::worker<cache>("cache")});
//   if (!s) ... s.error() ...                 // e.g. {shutdown,{failed_to_start_child,db,...}}
//   sup::which_children(s.server());
//
// The contract (each API call, each rule, each report) is the table in
// docs/behaviours.md; in short:
//  - start_link starts the children in list order, each linked to the
//    supervisor (which traps exits).  A child whose start fails makes the
//    supervisor stop the ones already started (in reverse order) and
//    start_link return {shutdown, failed_to_start_child{id, reason}}.
//  - When a child exits, its restart type decides: permanent — always
//    restarted; transient — restarted unless it exited normal, shutdown or
//    {shutdown, T}; temporary — never, and its spec is removed.  The
//    strategy decides what else restarts: one_for_one (that child),
//    one_for_all (all: the others are stopped in reverse order, then all
//    start in order), rest_for_one (it and those started after it).
//  - More than `intensity` restarts within `period` (OTP's defaults: 1 in
//    5 s) stop the supervisor with reason `shutdown` after stopping every
//    child.  A restart whose start fails is retried at once (counting as
//    another restart).
//  - Children stop in reverse start order: `shutdown` is sent, the child
//    gets its shutdown time (5 s for workers, infinity for supervisors),
//    then it is killed; brutal_kill kills at once.  The same happens to all
//    of them when the supervisor's parent stops it.
//  - Beyond OTP: a child may have a restart_backoff: its restarts wait a
//    delay that doubles per consecutive restart up to a cap.
//  - Exit signals are handled before calls queued ahead of them (decision
//    0011): which_children never reports a child running after its `down`
//    has been seen.  Finding a child by id or pid is O(1); stopping n
//    children with m calls queued is O(n + m).
//  - A start function must return a process linked to the supervisor:
//    the supervisor's own pid, another child's, or an unlinked process
//    fail the start.  A child waiting to be restarted answers `restarting`
//    to restart_child and delete_child.
//  - Reports through the runtime's logger: a child that exits abnormally
//    (id, pid, reason, action), a start that failed, a child that did not
//    stop with `shutdown`, the restart intensity reached (errors), and each
//    child started (debug).
//
// Threads: start/start_link and the child-management calls in process
// context (they are gen_server calls to the supervisor).  Ownership: the
// supervisor process owns its child specs; start functions run in it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/gen_server.hpp"
#include "ember/pid.hpp"
#include "ember/proc_lib.hpp"

namespace ember::supervisor {

enum class restart_strategy { one_for_one, one_for_all, rest_for_one };
inline constexpr restart_strategy one_for_one = restart_strategy::one_for_one;
inline constexpr restart_strategy one_for_all = restart_strategy::one_for_all;
inline constexpr restart_strategy rest_for_one = restart_strategy::rest_for_one;

/// When a child is restarted (see the top of this file).
enum class restart_type { permanent, transient, temporary };
inline constexpr restart_type permanent = restart_type::permanent;
inline constexpr restart_type transient = restart_type::transient;
inline constexpr restart_type temporary = restart_type::temporary;

enum class child_type { worker, supervisor };

/// How a child is stopped: killed at once, or sent `shutdown` and killed if
/// it has not exited within a time (or never killed: infinity).
class shutdown_spec {
public:
  static shutdown_spec brutal_kill() noexcept { return shutdown_spec(-2); }
  static shutdown_spec infinity() noexcept { return shutdown_spec(-1); }
  /// t >= 0; a negative t is bad_argument.
  static shutdown_spec timeout(std::chrono::milliseconds t) {
    if (t.count() < 0) throw bad_argument("ember::supervisor::shutdown_spec::timeout: the time is negative");
    return shutdown_spec(t.count());
  }
  [[nodiscard]] bool is_brutal_kill() const noexcept { return ms_ == -2; }
  [[nodiscard]] bool is_infinity() const noexcept { return ms_ == -1; }
  /// The time, when it is a timeout.
  [[nodiscard]] std::chrono::milliseconds time() const noexcept { return std::chrono::milliseconds(ms_ < 0 ? 0 : ms_); }
  friend bool operator==(const shutdown_spec&, const shutdown_spec&) = default;

private:
  explicit shutdown_spec(std::int64_t ms) noexcept : ms_(ms) {}
  std::int64_t ms_;
};

/// Beyond OTP: a child's restarts wait `initial`, then twice as long after
/// each consecutive restart, up to `max`; once the child has run for `max`
/// without exiting, the next restart waits `initial` again.
struct restart_backoff {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{30000};
};

/// What a child's start function returns: the child (started and linked to
/// the calling process, the supervisor), `ignore` (nothing started; fine),
/// or an error.
class started {
public:
  started(ember::pid p) : pid_(p) {}  // NOLINT: a started child
  /// gen_server::start_link's result: the server, or its error.  A taken
  /// name is an error that keeps the holder's pid (OTP's {error,
  /// {already_started, Pid}}): the supervisor passes it on as
  /// child_error::already_started with that pid.
  template <class S>
  started(const gen_server::start_result<S>& r)  // NOLINT
      : pid_(r || r.already_started() ? r.pid() : ember::pid{}),
        error_(r ? std::nullopt : std::optional<exit_reason>(r.error())),
        already_started_(r.already_started()) {}
  /// proc_lib::start_link's result: the process, or why it did not start.
  started(const proc_lib::start_result& r)  // NOLINT
      : pid_(r ? r.pid() : ember::pid{}), error_(r ? std::nullopt : std::optional<exit_reason>(r.error())) {}
  static started ignore() { return started(ember::pid{}); }
  static started error(exit_reason r) {
    started s{ember::pid{}};
    s.error_ = std::move(r);
    return s;
  }
  /// The child's name is taken by `holder` (an error that keeps the pid).
  static started already_started(ember::pid holder) {
    started s{holder};
    s.error_ = exit_reason::error("already started");
    s.already_started_ = true;
    return s;
  }
  [[nodiscard]] bool ok() const noexcept { return !error_; }
  [[nodiscard]] bool ignored() const noexcept { return !error_ && pid_.is_null(); }
  /// The child (ok), or the holder of its name (already_started()).
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  [[nodiscard]] bool already_started() const noexcept { return already_started_; }
  [[nodiscard]] const exit_reason& error_reason() const noexcept { return *error_; }

private:
  ember::pid pid_;
  std::optional<exit_reason> error_;
  bool already_started_ = false;
};

/// A child: how to start it, when to restart it, how to stop it.
struct child_spec {
  /// Unique among a supervisor's children; not empty (dynamic supervisors
  /// ignore it).
  std::string id;
  /// Runs in the supervisor's process; must start a process linked to it
  /// (gen_server::start_link, or proc_lib::start_link for a plain process:
  /// it waits until the child is set up).  Throwing, or calling
  /// ember::exit(r), counts as an error (r).
  std::function<started()> start;
  restart_type restart = restart_type::permanent;
  /// Unset: 5000 ms for a worker, infinity for a supervisor.
  std::optional<shutdown_spec> shutdown;
  child_type type = child_type::worker;
  /// Unset: restart at once.
  std::optional<restart_backoff> backoff;

  [[nodiscard]] shutdown_spec shutdown_or_default() const noexcept {
    if (shutdown) return *shutdown;
    return type == child_type::supervisor ? shutdown_spec::infinity()
                                          : shutdown_spec::timeout(std::chrono::milliseconds(5000));
  }
};

/// A supervisor's restart strategy and intensity.
struct flags {
  restart_strategy strategy = restart_strategy::one_for_one;
  /// More than `intensity` restarts within `period` stop the supervisor.
  int intensity = 1;
  std::chrono::milliseconds period{5000};
};

enum class child_status { running, restarting, stopped };

/// One child as which_children reports it.
struct child_info {
  std::string id;
  ember::pid pid;  // null unless running
  child_status status = child_status::stopped;
  child_type type = child_type::worker;
};

/// count_children: specs known, children running, and how many specs are
/// supervisors and workers.
struct child_counts {
  std::size_t specs = 0;
  std::size_t active = 0;
  std::size_t supervisors = 0;
  std::size_t workers = 0;
};

/// Why a child operation did nothing.
enum class child_error {
  none,
  not_found,        // no child with that id (or pid)
  running,          // restart_child / delete_child on a running child
  already_present,  // start_child: the id is taken by a child not running
  already_started,  // start_child: the id is taken by a running child, or the
                    // child's name by another process (pid(): the holder)
  start_failed,     // the start function returned an error (reason())
  max_children,     // dynamic_supervisor: max_children reached
  restarting,       // restart_child / delete_child on a child waiting to be restarted
};

/// The outcome of start_child, terminate_child, restart_child, delete_child.
class child_result {
public:
  child_result() = default;
  child_result(child_error e, ember::pid p, exit_reason r = {}) : error_(e), pid_(p), reason_(std::move(r)) {}
  [[nodiscard]] explicit operator bool() const noexcept { return error_ == child_error::none; }
  /// The child started (null if its start returned ignore), or the running
  /// child for already_started.
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  [[nodiscard]] child_error error() const noexcept { return error_; }
  /// start_failed: the start function's error.
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }
  /// What went wrong, in words ("" when nothing did).
  [[nodiscard]] std::string message() const;

private:
  child_error error_ = child_error::none;
  ember::pid pid_;
  exit_reason reason_;
};

/// The reason a supervisor's start fails with when a child's start fails:
/// {shutdown, failed_to_start_child{id, reason}}.
struct failed_to_start_child {
  std::string id;
  exit_reason reason;
  friend bool operator==(const failed_to_start_child&, const failed_to_start_child&) = default;
};

namespace detail {
class static_server;
}  // namespace detail

/// A supervisor, by pid or name (a gen_server reference).
using ref = gen_server::server<detail::static_server>;
using start_result = gen_server::start_result<detail::static_server>;

/// Start a supervisor linked to the caller, with its children (see the top
/// of this file).  Throws bad_argument for a bad flag or spec (negative
/// intensity, period ≤ 0, empty or repeated id, no start function).
/// A name (gen_server::name, or a via_name: ember::via(registry, key))
/// registers it as a gen_server's would.
start_result start_link(flags f, std::vector<child_spec> children);
start_result start_link(gen_server::name n, flags f, std::vector<child_spec> children);
start_result start_link(ember::via_name n, flags f, std::vector<child_spec> children);
/// The same, not linked to the caller.
start_result start(flags f, std::vector<child_spec> children);
start_result start(gen_server::name n, flags f, std::vector<child_spec> children);
start_result start(ember::via_name n, flags f, std::vector<child_spec> children);

/// Every child, in start order.
std::vector<child_info> which_children(const ref& sup);
child_counts count_children(const ref& sup);
/// Add a child at the end and start it.
child_result start_child(const ref& sup, child_spec spec);
/// Stop a running child (the spec stays, except a temporary child's).
child_result terminate_child(const ref& sup, std::string_view id);
/// Start again a child that is not running.
child_result restart_child(const ref& sup, std::string_view id);
/// Remove a child that is not running.
child_result delete_child(const ref& sup, std::string_view id);

/// A gen_server child: start_link<S>(args...) (copies of args at each
/// start).  A leading gen_server::name{...} names the server.
template <class S, class... A>
child_spec worker(std::string id, A&&... args) {
  auto saved = std::make_shared<const std::tuple<std::decay_t<A>...>>(std::forward<A>(args)...);
  child_spec c;
  c.id = std::move(id);
  c.start = [saved]() -> started {
    return std::apply([](const auto&... a) { return started(gen_server::start_link<S>(a...)); }, *saved);
  };
  return c;
}

/// A supervisor child (type supervisor, shutdown infinity).
child_spec supervisor_child(std::string id, flags f, std::vector<child_spec> children);

}  // namespace ember::supervisor

template <>
struct fmt::formatter<ember::supervisor::failed_to_start_child> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::supervisor::failed_to_start_child& f, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "{{failed_to_start_child,{},{}}}", f.id, f.reason.to_string());
  }
};
