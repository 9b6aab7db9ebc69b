// ember/application.hpp — run a supervision tree as the program (OTP's
// application master and init:stop/0): start the root, turn SIGINT and
// SIGTERM into an orderly shutdown, and report how it went as an exit
// status.
//
//   int main() {
//     ember::application::options o;
//     o.shutdown_timeout = 30s;
//     return ember::application::run(
//         [] { return ember::gen_server::start_link<front_desk>(config); },  // or a supervisor's start_link
//         o);
//   }
//
// The rules (docs/behaviours.md "application" has them as a table):
//  - run makes a runtime and an *application master* process that traps
//    exits and calls start() (process context), so the root is linked to
//    the master and the master is its parent.  start returns either a pid
//    (a process it started with spawn_link) or a start result such as
//    gen_server::start_result<S> (explicit operator bool, pid(), error()).
//    Exceptions derived from std::exception that escape start count as a
//    failed start.
//  - The application ends when the root exits.  A shutdown request — SIGINT
//    or SIGTERM while run is active (handle_signals), or stop() from any
//    thread — makes the master send the root exit(root, shutdown): a
//    gen_server root trapping exits then runs terminate and stops; a
//    supervisor stops its children in reverse start order first.  If the
//    root has not exited after shutdown_timeout, the master kills it
//    (exit(root, kill), no terminate).  A second *signal* during a
//    shutdown kills the root at once; a second stop() changes nothing.
//    Requests that arrive while start is still running are handled as soon
//    as it returns.
//  - run returns the exit status (exit_status below): 0 when the root ended
//    with `normal`, `shutdown` or {shutdown, T}; 1 when it ended with any
//    other reason; 2 when start failed; 3 when the root was killed (its
//    shutdown time ran out, or a second signal came).  Then the runtime
//    stops, ending every process still alive.
//  - Reports go to the runtime's logger (options.runtime.logger, default
//    spdlog's): the root started (debug), a shutdown requested and by what
//    (info), the root shut down (info), a failed start, a root that exited
//    abnormally, a shutdown that timed out, a kill on a second signal
//    (error).
//  - One run at a time per program: a second concurrent run throws
//    already_running.  run restores the SIGINT/SIGTERM handlers it found
//    when it returns, and never changes a thread's signal mask.
//
// Threads: run from any thread that is not running an ember process (it
// blocks until the application ends; inside a process it throws
// ember::error); stop from any thread or process (not from a signal
// handler: it takes a lock).  The start function runs in the master
// process.
// Ownership: run owns the runtime and every process of the application;
// start is used in place (not copied) while run lasts.
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"

namespace ember::application {

/// No shutdown timeout: wait for the root as long as it takes (the same
/// value as gen_server::infinity).
inline constexpr std::chrono::milliseconds infinity{-1};

/// What run returns (usable as main()'s result).
namespace exit_status {
/// The root ended with normal, shutdown or {shutdown, T}, on its own or
/// after a shutdown request.
inline constexpr int clean = 0;
/// The root ended with any other reason (it crashed, or its shutdown
/// failed: a terminate that threw, for instance).
inline constexpr int crashed = 1;
/// start failed (its error() or exception is logged); nothing was running.
inline constexpr int start_failed = 2;
/// The root was killed: it had not exited within shutdown_timeout, or a
/// second signal came during the shutdown.
inline constexpr int killed = 3;
}  // namespace exit_status

struct options {
  /// The runtime the application runs on.
  runtime_options runtime;
  /// How long the root gets, after exit(root, shutdown), before it is
  /// killed: infinity (any negative value), or 0 ms to max_timer_delay
  /// (about 49.7 days; longer is invalid_option).  0 kills the root at once,
  /// as OTP's brutal_kill (it runs no terminate; exit status 3).  The time
  /// runs on the runtime's clock (a manual clock when runtime.clock is set).
  std::chrono::milliseconds shutdown_timeout = infinity;
  /// Install SIGINT and SIGTERM handlers while run is active.  Without
  /// them only stop() requests a shutdown.
  bool handle_signals = true;
};

/// A run() was called while another was active in the program.
class already_running : public ember::error {
public:
  already_running()
      : error("ember::application::run: another application is already running in this program "
              "(only one run may be active at a time)") {}
};

/// Request the shutdown of the running application, as SIGTERM does
/// (a second stop() during a shutdown does nothing).  Returns at once:
/// true when a run was active, false when none was (then it does nothing).
/// Any thread or process, not a signal handler.
bool stop();

namespace detail {

/// A start function's outcome, as the master needs it.
struct start_outcome {
  ember::pid root;
  std::optional<exit_reason> failure;  // set: the start failed, and why
};

/// What a start function may return besides a pid: gen_server::start_result
/// is the model.
template <class R>
concept start_result_like = requires(const R& r) {
  static_cast<bool>(r);
  { r.pid() } -> std::convertible_to<ember::pid>;
  { r.error() } -> std::convertible_to<const exit_reason&>;
};

template <class R>
start_outcome outcome_of(R&& r) {
  using V = std::remove_cvref_t<R>;
  if constexpr (std::is_same_v<V, ember::pid>) {
    if (r.is_null()) return {{}, exit_reason::error("the start function returned a null pid")};
    return {r, std::nullopt};
  } else {
    static_assert(start_result_like<V>,
                  "ember::application::run: the start function must return an ember::pid (from spawn_link) or a "
                  "start result with explicit operator bool, pid() and error() (like gen_server::start_result)");
    if (!static_cast<bool>(r)) return {{}, exit_reason(r.error())};
    return {r.pid(), std::nullopt};
  }
}

using start_fn = start_outcome (*)(void* start);
/// run's non-template body (impl/application.ipp).
int run(options o, start_fn fn, void* start);

}  // namespace detail

/// Run the application whose root start() starts (see the top of this
/// file): blocks until the application ends; returns its exit_status.
/// Throws already_running, invalid_option (options), ember::error (called
/// from inside a process), and what the runtime's constructor throws.
template <class Start>
  requires std::invocable<Start&>
int run(Start&& start, options o = {}) {
  using S = std::remove_reference_t<Start>;
  detail::start_fn fn = [](void* s) -> detail::start_outcome {
    return detail::outcome_of(std::invoke(*static_cast<S*>(s)));
  };
  // ownership: start stays with the caller; the master uses it only while
  // this call waits.
  return detail::run(std::move(o), fn, const_cast<std::remove_const_t<S>*>(std::addressof(start)));
}

}  // namespace ember::application
