// ember/proc_lib.hpp — OTP's proc_lib start handshake for plain processes:
// the starter waits until the new process says it is ready (init_ack) or
// that it could not start (init_fail), so a process started under a
// supervisor has set itself up — trap_exit, a registered name, a socket —
// before anything, a shutdown included, can reach it.
//
//   sup::child_spec listener{"listener", [] {
//     return ember::proc_lib::start_link([](ember::proc_lib::starter& s) {
//       ember::process_flag(ember::trap_exit, true);   // before the supervisor can stop it
//       if (!open_socket()) s.init_fail(ember::exit_reason::error("port in use"));
//       s.init_ack();                                   // start_link returns now
//       serve();
//     });
//   }};
//
// Rules (tests in tests/behaviour/proc_lib_test.cpp; the table is in
// docs/behaviours.md):
//  - start_link(fn) spawns a process linked to the caller running
//    fn(starter&) and returns when fn calls init_ack(): true, with pid().
//    start(fn) is the same without the link.
//  - init_fail(r): start returns false with error() r; the process ends
//    with reason normal (as a gen_server whose init fails, so a starter
//    that does not trap exits is not killed by the failure it is told of).
//  - fn returning, throwing or exiting before init_ack: start returns false
//    with the process's exit reason (normal when fn returned).
//  - options::timeout (default infinity): no answer in time kills the
//    process; start returns false with error "timeout".  A negative
//    timeout other than infinity, or NaN, is bad_argument before anything
//    starts; one beyond ~146 years (any unit's max()) is infinity.
//  - However it fails, start returns after the process has exited and
//    leaves no exit_message of it in a trapping starter's mailbox.
//  - init_ack or init_fail a second time is bad_argument.
//
// Threads: start/start_link in process context; the starter handle in the
// started process only.  Ownership: fn is moved into the new process.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/spawn.hpp"

namespace ember::proc_lib {

namespace detail {
/// The started process's answer.
struct ack {
  std::uint64_t ref;
  bool ok;
  exit_reason reason;
};
}  // namespace detail
}  // namespace ember::proc_lib

/// The handshake is a system message: a mailbox bound never drops it.
template <>
inline constexpr bool ember::detail::system_message_v<ember::proc_lib::detail::ack> = true;

namespace ember::proc_lib {

/// What the started function gets: how it answers its starter.
class starter {
public:
  starter(ember::pid parent, std::uint64_t ref) noexcept : parent_(parent), ref_(ref) {}
  /// The process is ready: start/start_link return true with its pid.
  void init_ack();
  /// The process cannot start: start/start_link return false with r, and
  /// the process ends (reason normal).
  [[noreturn]] void init_fail(exit_reason r);
  /// The process that started this one.
  [[nodiscard]] ember::pid parent() const noexcept { return parent_; }
  /// Whether init_ack or init_fail has been called.
  [[nodiscard]] bool answered() const noexcept { return answered_; }

private:
  ember::pid parent_;
  std::uint64_t ref_;
  bool answered_ = false;
};

struct options {
  /// How long to wait for init_ack: any duration >= 0; infinity (-1 ms,
  /// the default), +inf or anything beyond ~146 years waits for ever; any
  /// other negative value or NaN is bad_argument, before anything starts.
  ember::detail::timeout_arg timeout{std::chrono::milliseconds(-1)};
  spawn_options spawn;
};

/// What start/start_link return.
class start_result {
public:
  start_result(ember::pid p, std::optional<exit_reason> error) : pid_(p), error_(std::move(error)) {}
  [[nodiscard]] explicit operator bool() const noexcept { return !error_; }
  /// The process started (or, after a failure, the one that did not).
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  /// Why it did not start (init_fail's reason, the process's exit reason,
  /// "timeout").
  [[nodiscard]] const exit_reason& error() const noexcept {
    static const exit_reason none;
    return error_ ? *error_ : none;
  }

private:
  ember::pid pid_;
  std::optional<exit_reason> error_;
};

namespace detail {
/// Wait for child's answer to ref (or its exit, or the timeout), then settle
/// a failure (detail/start_sync.hpp).
start_result await(const ember::pid& child, const monitor_ref& m, std::uint64_t ref, std::int64_t timeout_ns,
                   bool linked);
std::uint64_t next_ref();

template <bool Link, class F>
start_result start_impl(F&& fn, const options& o) {
  const char* what = Link ? "proc_lib::start_link" : "proc_lib::start";
  const std::int64_t timeout_ns = o.timeout.ns(what, "timeout");
  ember::detail::process* self = ember::detail::enter_runtime(what, 10);
  const ember::pid me = self->self_pid();
  const std::uint64_t ref = next_ref();
  auto body = [f = std::forward<F>(fn), me, ref]() mutable {
    starter s(me, ref);
    f(s);
  };
  // Linked and monitored before it runs: a child that fails at once is
  // seen with its own reason, never as noproc.
  ember::detail::process* p = self->rt->make_process(std::move(body), o.spawn, what);
  const std::uint64_t mid = self->rt->next_monitor_id();
  const ember::pid child = self->rt->publish_spawn(p, [&](ember::pid c) {
    if constexpr (Link) ember::detail::link_new_child(self, p, c);
    ember::detail::monitor_new_child(self, p, c, mid);
  });
  return await(child, monitor_ref{mid, child}, ref, timeout_ns, Link);
}
}  // namespace detail

/// Start fn(starter&) in a new process linked to the caller and wait for
/// its init_ack (see the top of this file).  Process context.
template <class F>
start_result start_link(F&& fn, const options& o = {}) {
  return detail::start_impl<true>(std::forward<F>(fn), o);
}
/// The same, not linked.
template <class F>
start_result start(F&& fn, const options& o = {}) {
  return detail::start_impl<false>(std::forward<F>(fn), o);
}

}  // namespace ember::proc_lib
