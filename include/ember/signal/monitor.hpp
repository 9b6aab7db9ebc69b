// ember/signal/monitor.hpp — monitors: watch another process and get one
// `down` message when it exits (erlang:monitor/2, demonitor/2,
// spawn_monitor/1).
//
//   auto ref = ember::monitor(p);
//   ember::receive([&](const ember::down& d) { ... d.reason ... });
//
// Rules (each one a test in tests/behaviour/monitor_test.cpp):
//  - a monitor delivers exactly one `down {ref, pid, reason, name}`;
//  - monitoring a process that is not alive delivers `down` with reason
//    noproc at once;
//  - monitor(name) (a registered name or a via_name) watches the process
//    holding the name now; its `down` carries the name; a name nobody
//    holds gives `down` with noproc (and a null pid) at once;
//  - a process may monitor itself: the monitor shows in process_info and
//    demonitor returns true, but it never delivers a `down`;
//  - after demonitor(ref) no `down` for ref is delivered; with
//    demonitor_option::flush a `down` already in the mailbox is removed too;
//  - spawn_monitor starts and monitors in one step, so the `down` always
//    carries the child's real exit reason.
//
// Threads: process context (throws not_in_process elsewhere).
// Ownership: the watched process holds the monitor until it exits or the
// watcher demonitors; a `down` is an ordinary message owned by the mailbox.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"

namespace ember {

/// Names one monitor.  Comparable; unique within a runtime.
struct monitor_ref {
  std::uint64_t id = 0;
  ember::pid target;
  friend bool operator==(const monitor_ref& a, const monitor_ref& b) noexcept { return a.id == b.id; }
};

/// The message a monitor delivers when the watched process exits.
struct down {
  monitor_ref ref;
  ember::pid who;      // the process (null: a monitored name nobody held)
  exit_reason reason;
  std::string name;    // the name monitored (monitor(name)); empty for monitor(pid)
};
/// `down` is a system message: a mailbox bound never drops it.
template <>
inline constexpr bool detail::system_message_v<down> = true;

class via_name;

/// Start watching p.
monitor_ref monitor(pid p);
/// Watch the process registered under `name` now (OTP's
/// monitor(process, RegName)); the `down` says which name.  Nobody holds
/// the name: `down` with noproc at once.
monitor_ref monitor(std::string_view name);
monitor_ref monitor(const char* name);
/// The same for a via_name (ember::via(registry, key)); the `down`'s name
/// is the via_name's to_string().  bad_argument for the empty via_name.
monitor_ref monitor(const via_name& name);

/// demonitor's option (OTP's [flush]).
enum class demonitor_option : unsigned char {
  none,
  flush,  // also remove a `down` for the monitor already in the mailbox
};

/// Stop watching.  Returns true if the monitor was still active (no `down`
/// was or will be sent).  With demonitor_option::flush, a `down` for ref
/// already delivered is removed from the caller's mailbox.
bool demonitor(const monitor_ref& ref, demonitor_option option = demonitor_option::none);

}  // namespace ember

#include "ember/detail/runtime_core.hpp"
#include "ember/options.hpp"
#include "ember/this_process.hpp"

namespace ember {

namespace detail {
/// Make self monitor the new, not yet running, process p under monitor id.
void monitor_new_child(process* self, process* p, ember::pid child, std::uint64_t id);
}  // namespace detail

/// spawn() and monitor() in one step: the child cannot exit unobserved.
template <class F>
std::pair<pid, monitor_ref> spawn_monitor(F&& fn, const spawn_options& o = {}) {
  detail::process* self = detail::enter_runtime("spawn_monitor", 10);
  detail::process* p = self->rt->make_process(std::forward<F>(fn), o, "spawn_monitor");
  std::uint64_t id = self->rt->next_monitor_id();
  pid child = self->rt->publish_spawn(p, [&](pid c) { detail::monitor_new_child(self, p, c, id); });
  return {child, monitor_ref{id, child}};
}

}  // namespace ember
