// ember/detail/start_sync.hpp — what a synchronous start (gen_server's
// start/start_link, proc_lib's start/start_link, the supervisors) does when
// the child it started did not come up: it leaves no trace.
//
// OTP's proc_lib makes the starter wait for the failed child's exit and
// takes the child's 'EXIT' out of a trapping starter's mailbox; so does
// settle_failed_start.
//
// Threads: process context (the starter).  Ownership: n/a.
#pragma once

#include "ember/pid.hpp"
#include "ember/signal/monitor.hpp"

namespace ember::detail {

/// The start of `child` failed (it acknowledged a failure, or its `down`
/// came first).  The starter monitors it under `m`.  Wait for that `down`
/// unless the caller has already taken it (`down_taken`); then, when the
/// start linked them, unlink and remove the exit_message the child's exit
/// may have left in a trapping starter's mailbox.  The exit signal of a
/// link reaches the starter before the monitor's `down` (links are told
/// first), so once the `down` is in, so is that exit_message, if any.
void settle_failed_start(const ember::pid& child, const monitor_ref& m, bool down_taken, bool linked);

}  // namespace ember::detail
