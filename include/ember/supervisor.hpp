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
//  - start_link(init) runs an init callback in the supervisor's process
//    (OTP's init/1) for its flags and children, or ignore.  auto_shutdown
//    (any_significant, all_significant) stops the supervisor when
//    significant children exit by themselves.  which_child,
//    get_childspec, check_childspecs as OTP's; bad specs throw spec_error
//    naming the field (child_spec.hpp).
//  - Beyond OTP: a child may have a restart_backoff: its restarts wait a
//    delay that doubles per consecutive restart up to a cap.
//  - Exit signals are handled before calls queued ahead of them (decision
//    0013): which_children never reports a child running after its `down`
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
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/gen_server.hpp"
#include "ember/child_spec.hpp"
#include "ember/pid.hpp"
#include "ember/proc_lib.hpp"

namespace ember::supervisor {

enum class restart_strategy { one_for_one, one_for_all, rest_for_one };
inline constexpr restart_strategy one_for_one = restart_strategy::one_for_one;
inline constexpr restart_strategy one_for_all = restart_strategy::one_for_all;
inline constexpr restart_strategy rest_for_one = restart_strategy::rest_for_one;

/// A supervisor's restart strategy and intensity.
struct flags {
  restart_strategy strategy = restart_strategy::one_for_one;
  /// More than `intensity` restarts within `period` stop the supervisor.
  int intensity = 1;
  std::chrono::milliseconds period{5000};
  /// OTP 24's automatic shutdown: never (significant children are
  /// refused), any_significant (the supervisor stops with `shutdown` when
  /// a significant child exits by itself and is not restarted: a transient
  /// one normally, a temporary one with any reason), all_significant (the
  /// same, when the last running significant child does).  An exit the
  /// supervisor causes (terminate_child, a restart, its shutdown) does not
  /// count.
  supervisor::auto_shutdown auto_shutdown = supervisor::auto_shutdown::never;
};
inline constexpr auto_shutdown never = auto_shutdown::never;
inline constexpr auto_shutdown any_significant = auto_shutdown::any_significant;
inline constexpr auto_shutdown all_significant = auto_shutdown::all_significant;

/// What a supervisor's init callback returns: its flags and children, or
/// ignore (the supervisor does not start; start returns ignored(), and as
/// a child of another supervisor it counts as an ignored child).
class init_result {
public:
  init_result(supervisor::flags f, std::vector<child_spec> children)  // NOLINT: {flags, children}
      : flags_(f), children_(std::move(children)) {}
  static init_result ignore() {
    init_result r({}, {});
    r.ignore_ = true;
    return r;
  }
  [[nodiscard]] bool ignored() const noexcept { return ignore_; }
  [[nodiscard]] const supervisor::flags& flags() const noexcept { return flags_; }
  [[nodiscard]] std::vector<child_spec>& children() noexcept { return children_; }

private:
  supervisor::flags flags_;
  std::vector<child_spec> children_;
  bool ignore_ = false;
};
/// OTP's Module:init/1: runs in the new supervisor's process before any
/// child starts.  Throwing fails the start with the exception's text; a
/// bad flag or spec fails it with the spec_error's text.
using init_fn = std::function<init_result()>;

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
/// of this file).  Throws spec_error (a bad_argument) for a bad flag or
/// spec (negative intensity, period ≤ 0, empty or repeated id, no start
/// function, a significant child that is permanent or under auto_shutdown
/// never, ...), naming the field.
/// A name (gen_server::name, or a via_name: ember::via(registry, key))
/// registers it as a gen_server's would.
start_result start_link(flags f, std::vector<child_spec> children);
start_result start_link(gen_server::name n, flags f, std::vector<child_spec> children);
start_result start_link(ember::via_name n, flags f, std::vector<child_spec> children);
/// The same, not linked to the caller.
start_result start(flags f, std::vector<child_spec> children);
start_result start(gen_server::name n, flags f, std::vector<child_spec> children);
start_result start(ember::via_name n, flags f, std::vector<child_spec> children);
namespace detail {
template <class F>
concept init_callback = std::is_invocable_r_v<init_result, F&> && !std::is_same_v<std::decay_t<F>, flags>;
start_result start_with(ember::via_name n, init_fn init, bool link);
ember::via_name named(gen_server::name n, const char* op);
}  // namespace detail

/// Start a supervisor whose flags and children come from `init`, run in
/// the supervisor's process (OTP's init/1; init_result::ignore() makes the
/// start return false with ignored()).
template <detail::init_callback F>
start_result start_link(F&& init) {
  return detail::start_with(ember::via_name{}, init_fn(std::forward<F>(init)), true);
}
template <detail::init_callback F>
start_result start_link(gen_server::name n, F&& init) {
  return detail::start_with(detail::named(std::move(n), "start_link"), init_fn(std::forward<F>(init)), true);
}
template <detail::init_callback F>
start_result start_link(ember::via_name n, F&& init) {
  return detail::start_with(std::move(n), init_fn(std::forward<F>(init)), true);
}
template <detail::init_callback F>
start_result start(F&& init) {
  return detail::start_with(ember::via_name{}, init_fn(std::forward<F>(init)), false);
}
template <detail::init_callback F>
start_result start(gen_server::name n, F&& init) {
  return detail::start_with(detail::named(std::move(n), "start"), init_fn(std::forward<F>(init)), false);
}
template <detail::init_callback F>
start_result start(ember::via_name n, F&& init) {
  return detail::start_with(std::move(n), init_fn(std::forward<F>(init)), false);
}

/// Every child, in start order.
std::vector<child_info> which_children(const ref& sup);
/// One child by id (nullopt: no such child).
std::optional<child_info> which_child(const ref& sup, std::string_view id);
/// The spec of child id, as the supervisor holds it (nullopt: no such child).
std::optional<child_spec> get_childspec(const ref& sup, std::string_view id);
child_counts count_children(const ref& sup);
/// Add a child at the end and start it.  A bad spec throws spec_error.
child_result start_child(const ref& sup, child_spec spec);
/// Stop a running child (the spec stays, except a temporary child's).
child_result terminate_child(const ref& sup, std::string_view id);
/// Start again a child that is not running.
child_result restart_child(const ref& sup, std::string_view id);
/// Remove a child that is not running.
child_result delete_child(const ref& sup, std::string_view id);

/// A supervisor child (type supervisor, shutdown infinity).
child_spec supervisor_child(std::string id, flags f, std::vector<child_spec> children);
child_spec supervisor_child(std::string id, init_fn init);

}  // namespace ember::supervisor

template <>
struct fmt::formatter<ember::supervisor::failed_to_start_child> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::supervisor::failed_to_start_child& f, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "{{failed_to_start_child,{},{}}}", f.id, f.reason.to_string());
  }
};
