// ember/signal/link.hpp — links, exit signals and trap_exit
// (erlang:link/1, unlink/1, spawn_link/1, exit/2, process_flag(trap_exit)).
//
//   ember::process_flag(ember::trap_exit, true);
//   pid w = ember::spawn_link(work);
//   ember::receive([&](const ember::exit_message& m) { ... m.from, m.reason ... });
//
// The rules (docs/signals.md has them as a table, each row with its test):
//  - a link is bidirectional; linking twice, or to yourself, does nothing;
//  - when a process exits, every linked process gets an exit signal with
//    its reason: a process trapping exits receives it as an exit_message;
//    one that does not trap ignores `normal` and exits with any other
//    reason (the same reason, so failures travel along chains of links);
//  - exit(pid, reason) sends the same kind of signal without a link, except
//    that reason `kill` cannot be trapped: the target exits with `killed`,
//    which is what its own links then see; exit(pid, normal) is ignored by
//    a process not trapping exits, unless it is the caller itself;
//  - linking to a process that is not alive: a process trapping exits gets
//    exit_message{pid, noproc}; one that does not gets a noproc_error
//    exception from link (OTP's link/1 behaves the same way);
//  - after unlink(pid) returns, the link has no further effect on the
//    caller (an exit_message already delivered stays in the mailbox);
//  - signals from one process to another arrive in the order it sent them,
//    interleaved correctly with its messages.
//
// Threads: link, unlink, spawn_link and process_flag in process context
// (not_in_process elsewhere); exit(pid, reason) from any thread (from
// outside a process the signal's sender is the null pid).
// Ownership: links live in both processes' signal state until one exits or
// unlinks.
#pragma once

#include <utility>

#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"

namespace ember {

/// What a process trapping exits receives for an exit signal.
struct exit_message {
  ember::pid from;     // the process that exited (link) or called exit(pid, ...)
  exit_reason reason;
};
/// A trapped exit signal is a system message: a mailbox bound never drops it.
template <>
inline constexpr bool detail::system_message_v<exit_message> = true;

/// Link the caller and p.  Throws noproc_error when p is not alive and the
/// caller does not trap exits.
void link(pid p);
/// Remove the link between the caller and p, if any.  Returns normally
/// whether or not there was a link.
void unlink(pid p);

/// Send an exit signal with `reason` to p (see the rules above).  Sending
/// to a process that is not alive does nothing.
void exit(pid p, exit_reason reason);

/// The process flags process_flag can set.
struct trap_exit_flag {};
inline constexpr trap_exit_flag trap_exit{};
/// Turn exit trapping on or off for the calling process; returns the
/// previous setting.
bool process_flag(trap_exit_flag, bool on);

}  // namespace ember

#include "ember/detail/runtime_core.hpp"
#include "ember/this_process.hpp"

namespace ember {

namespace detail {
/// Link the caller (self) and the new, not yet running, process p.
void link_new_child(process* self, process* p, ember::pid child);
}  // namespace detail

/// spawn() and link() in one step: the link exists before the child runs,
/// so the child cannot exit unseen.
template <class F>
pid spawn_link(F&& fn, const spawn_options& o = {}) {
  detail::process* self = detail::enter_runtime("spawn_link", 10);
  detail::process* p = self->rt->make_process(std::forward<F>(fn), o, "spawn_link");
  return self->rt->publish_spawn(p, [&](ember::pid c) { detail::link_new_child(self, p, c); });
}

}  // namespace ember
