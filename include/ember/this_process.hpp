// ember/this_process.hpp — what a process may ask about and do to itself:
// self(), yield(), checkpoint(), exit(reason).
//
// Threads: process context only (each throws not_in_process elsewhere).
// Ownership: n/a.
#pragma once

#include "ember/detail/spend.hpp"
#include "ember/exit_reason.hpp"
#include "ember/pid.hpp"

namespace ember {

namespace detail {
/// End the calling process, when its entry returns, with r instead of
/// normal (process context, just before the entry returns).
void set_exit_on_return(exit_reason r);
}  // namespace detail

/// The pid of the calling process.
[[nodiscard]] pid self();

/// Give up the rest of this slice: go to the back of the run queue.
void yield();

/// Spend one reduction; when the slice's budget is spent, let other
/// processes run.  Call it in long CPU-bound loops.
inline void checkpoint() { detail::spend(1); }

/// End the calling process with `reason` (its stack unwinds; destructors
/// run).  Do not swallow it with `catch (...)` without rethrowing.
[[noreturn]] void exit(exit_reason reason);

/// True when the calling thread is running an ember process.
[[nodiscard]] bool in_process() noexcept;

}  // namespace ember
