// ember/child_spec.hpp — what a supervisor needs to know about a child: how
// to start it (and what a start returns), when to restart it, how to stop
// it; a gen_server type's own defaults as a child; and the checks a spec
// must pass, whose errors say which field was wrong as data.
//
//   sup::child_spec db = sup::worker<db_pool>("db", 8);        // S's child_defaults apply
//   db.shutdown = sup::shutdown_spec::timeout(10s);
//   if (auto e = sup::check_childspecs({db})) ... e->field() ... e->child_id() ...
//
//   struct cache : ember::gen_server::behaviour<cache> {        // Elixir's `use GenServer, restart: :temporary`
//     static constexpr ember::supervisor::child_defaults child_defaults{.restart = ember::supervisor::temporary};
//   };
//
// Threads: plain values (a start function runs in the supervisor's
// process).  Ownership: a child_spec owns its start function and, through
// it, copies of its arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/gen_server.hpp"
#include "ember/pid.hpp"
#include "ember/proc_lib.hpp"

namespace ember::supervisor {

/// When a child is restarted (see the top of this file).
enum class restart_type { permanent, transient, temporary };
inline constexpr restart_type permanent = restart_type::permanent;
inline constexpr restart_type transient = restart_type::transient;
inline constexpr restart_type temporary = restart_type::temporary;

enum class child_type { worker, supervisor };

namespace detail {
/// shutdown_spec::timeout's refusal: a spec_error on the shutdown field.
[[noreturn]] void throw_bad_shutdown(long double ms);
}  // namespace detail

/// How a child is stopped: killed at once, or sent `shutdown` and killed if
/// it has not exited within a time (or never killed: infinity).
class shutdown_spec {
public:
  static constexpr shutdown_spec brutal_kill() noexcept { return shutdown_spec(-2); }
  static constexpr shutdown_spec infinity() noexcept { return shutdown_spec(-1); }
  /// t >= 0; a negative t is bad_argument.
  /// t >= 0, any duration (rounded up to whole ms); a negative t or NaN is
  /// bad_argument.  A t longer than max_timer_delay (~49.7 days: +inf, any
  /// unit's max()) is infinity.
  template <class Rep, class Period>
  static constexpr shutdown_spec timeout(std::chrono::duration<Rep, Period> t) {
    const long double ms = std::chrono::duration<long double, std::milli>(t).count();
    if (!(ms >= 0)) detail::throw_bad_shutdown(ms);  // and NaN
    if (ms > static_cast<long double>(max_timer_delay.count())) return infinity();
    auto whole = static_cast<std::int64_t>(ms);
    if (static_cast<long double>(whole) < ms) ++whole;  // rounded up
    return shutdown_spec(whole);
  }
  [[nodiscard]] constexpr bool is_brutal_kill() const noexcept { return ms_ == -2; }
  [[nodiscard]] constexpr bool is_infinity() const noexcept { return ms_ == -1; }
  /// The time, when it is a timeout.
  [[nodiscard]] constexpr std::chrono::milliseconds time() const noexcept {
    return std::chrono::milliseconds(ms_ < 0 ? 0 : ms_);
  }
  friend constexpr bool operator==(const shutdown_spec&, const shutdown_spec&) = default;

private:
  constexpr explicit shutdown_spec(std::int64_t ms) noexcept : ms_(ms) {}
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
  /// A server whose init returned ignore() is an ignored child.
  template <class S>
  started(const gen_server::start_result<S>& r)  // NOLINT
      : pid_(r || r.already_started() ? r.pid() : ember::pid{}),
        error_(r || r.ignored() ? std::nullopt : std::optional<exit_reason>(r.error())),
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
  /// OTP's significant child: its own exit (not one the supervisor causes)
  /// may shut the supervisor down, by the supervisor's auto_shutdown.
  /// Transient and temporary children only.
  bool significant = false;

  [[nodiscard]] shutdown_spec shutdown_or_default() const noexcept {
    if (shutdown) return *shutdown;
    return type == child_type::supervisor ? shutdown_spec::infinity()
                                          : shutdown_spec::timeout(std::chrono::milliseconds(5000));
  }
};

/// A server type's defaults as a supervisor child, declared in the type
/// (Elixir's `use GenServer, restart: ..., shutdown: ...`): worker<S>,
/// dynamic_supervisor::start_child<S> and child<S> start from them.
struct child_defaults {
  restart_type restart = restart_type::permanent;
  std::optional<shutdown_spec> shutdown;  // unset: 5000 ms for a worker, infinity for a supervisor
  child_type type = child_type::worker;
  bool significant = false;
};

/// The part of a spec (or of a supervisor's flags) that is wrong.
enum class spec_field {
  id,
  start,
  restart,
  shutdown,
  type,
  backoff,
  significant,
  strategy,
  intensity,
  period,
  auto_shutdown,
};
/// The field's name, as OTP's child spec and flags maps spell it.
const char* to_string(spec_field f) noexcept;

/// A bad child spec or supervisor flag: what() says what was wrong; field()
/// and child_id() say where, as data.  Thrown by start/start_link and
/// start_child (a bad_argument, as before), returned by check_childspecs.
class spec_error : public bad_argument {
public:
  spec_error(spec_field f, std::string child_id, const std::string& what)
      : bad_argument(what), field_(f), child_id_(std::move(child_id)) {}
  [[nodiscard]] spec_field field() const noexcept { return field_; }
  /// The child's id ("" for a supervisor flag).
  [[nodiscard]] const std::string& child_id() const noexcept { return child_id_; }

private:
  spec_field field_;
  std::string child_id_;
};

[[noreturn]] inline void detail::throw_bad_shutdown(long double ms) {
  throw spec_error(spec_field::shutdown, "",
                   "ember::supervisor::shutdown_spec::timeout: t = " + ember::detail::describe_ms(ms * 1e6L) +
                       ": must be >= 0");
}

/// Whether significant children are allowed, and what they do (see
/// supervisor.hpp's flags::auto_shutdown).
enum class auto_shutdown { never, any_significant, all_significant };

/// OTP's check_childspecs: the first problem in specs (a missing or
/// repeated id, no start function, a field out of range, a significant
/// child that is permanent or under auto_shutdown never), or nullopt.
std::optional<spec_error> check_childspecs(const std::vector<child_spec>& specs,
                                           auto_shutdown a = auto_shutdown::never);

namespace detail {
/// Apply S's child_defaults, if it declares them, to c.
template <class S>
void apply_defaults(child_spec& c) {
  if constexpr (requires { S::child_defaults; }) {
    const child_defaults& d = S::child_defaults;
    c.restart = d.restart;
    c.shutdown = d.shutdown;
    c.type = d.type;
    c.significant = d.significant;
  }
}
}  // namespace detail

/// A gen_server child: start_link<S>(args...) (copies of args at each
/// start), with S's child_defaults if it has them.  A leading
/// gen_server::name{...} names the server.
template <class S, class... A>
child_spec worker(std::string id, A&&... args) {
  auto saved = std::make_shared<const std::tuple<std::decay_t<A>...>>(std::forward<A>(args)...);
  child_spec c;
  c.id = std::move(id);
  c.start = [saved]() -> started {
    return std::apply([](const auto&... a) { return started(gen_server::start_link<S>(a...)); }, *saved);
  };
  detail::apply_defaults<S>(c);
  return c;
}

}  // namespace ember::supervisor
