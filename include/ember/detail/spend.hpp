// ember/detail/spend.hpp — spending reductions: the preemption check every
// runtime call makes (this_process.hpp's spend() is the form for code that
// does not know whether it runs in a process).
//
// A slice ends when its budget of reductions is spent, or when the monitor
// zeroes the budget because the slice has run past
// runtime_options::time_slice (scheduler/sysmon.hpp); the next spend then
// yields.  A pending kill is noticed here too.
//
// Threads: process context (self is the calling process).  Ownership: n/a.
#pragma once

#include <atomic>

#include "ember/detail/config.hpp"
#include "ember/process/process.hpp"

namespace ember::detail {

/// Yield when the budget is spent; end the process when a kill is pending.
void spend_slow(process* self);

/// spend() for a caller that already knows it is the running process.
inline void spend_in(process* self, long n) {
  const long left = self->budget.load(std::memory_order_relaxed) - n;
  self->budget.store(left, std::memory_order_relaxed);
  if (EMBER_UNLIKELY(self->kill_pending.load(std::memory_order_relaxed)) || left <= 0) spend_slow(self);
}

}  // namespace ember::detail
