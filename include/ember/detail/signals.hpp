// ember/detail/signals.hpp — delivering exit signals, `down`s and exit
// messages between processes (implemented in impl/signals.ipp).
//
// Every delivery to a process p happens while holding p's hooks_lock and
// after checking that p is still the incarnation addressed and not closed
// (alive_locked).  That is what makes unlink/demonitor final and every
// `down` exactly-once; signal_state.hpp states the rules.
//
// Threads: any thread, with the lock held as each function says.
#pragma once

#include <cstdint>

#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"

namespace ember::detail {

struct process;

/// p is the incarnation `serial` and still takes signals.  Lock held.
bool alive_locked(const process* p, std::uint64_t serial) noexcept;
/// Queue e (addressed to p's current incarnation) and wake p if it waits.
/// Lock held, p alive.
void post_locked(process* p, envelope* e);
/// Make p exit with r at its next runtime call; the first such reason wins
/// and later kills do nothing.  Lock held, p alive.
void kill_locked(process* p, exit_reason r);
/// kill_locked, leaving the wake-up to the caller: true when p was blocked
/// and the caller must now schedule it.  Lock held, p alive.
bool kill_locked_deferred(process* p, exit_reason r);
/// An exit signal from `from` with reason r.  via_link: sent because `from`
/// exited while linked (then `kill` is an ordinary, trappable reason).
/// Lock held, p alive.
void exit_signal_locked(process* p, ember::pid from, const exit_reason& r, bool via_link);
/// p, which was `me`, has exited (its body ended, it is closed to signals
/// and its serial is cleared): tell its links, watchers and waiters,
/// release its name.  Worker, after the fiber.
void deliver_exit(process* p, ember::pid me);

/// Replies a process asked for (gen_server::send_request, task::async):
/// `key` is recorded in self's signal_state::requests by begin_request and
/// removed by end_request.
void begin_request(process* self, std::uint64_t key, const ember::pid& to);
void end_request(process* self, std::uint64_t key) noexcept;
/// Push e (a system message) to `to` only while `to` still takes replies to
/// `key`; checked and pushed under its lock, so once end_request returns
/// nothing more arrives for the key.  Frees e otherwise.  Any thread.
void deliver_if_requested(const ember::pid& to, std::uint64_t key, envelope* e) noexcept;

}  // namespace ember::detail
