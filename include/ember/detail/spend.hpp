// ember/detail/spend.hpp — spending reductions: the preemption check every
// runtime call makes, and the entry check (the calling process, or
// not_in_process) before it; spend() is the form for code that does not
// know whether it runs in a process (checkpoint()).  The fast paths are
// inline: a few instructions per runtime call.
//
// A slice ends when its budget of reductions is spent, or when it has run
// past runtime_options::time_slice: the budget is handed out slice_chunk
// reductions at a time, and each time a chunk runs out spend_slow reads
// the clock and ends the slice itself once it is too old; the monitor
// (scheduler/sysmon.hpp) also revokes the budget of a slice it sees run
// too long (budget_revoked), for a process whose spends are far apart.
// The next spend then yields.  A pending kill is noticed here too.
//
// Threads: process context (self is the calling process).  Ownership: n/a.
#pragma once

#include <atomic>

#include "ember/base/config.hpp"
#include "ember/base/thread_slots.hpp"
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

[[noreturn]] void throw_not_in_process(const char* operation);

/// The calling process, or throws not_in_process naming `operation`.
inline process* current_or_throw(const char* operation) {
  process* p = this_process();
  if (EMBER_UNLIKELY(!p)) throw_not_in_process(operation);
  return p;
}

/// current_or_throw, then spend n reductions: the preemption and kill check
/// that every runtime entry makes first, so that an entry that fails fast
/// (throws, or finds nothing to do) still counts and can still yield.
inline process* enter_runtime(const char* operation, long n = 1) {
  process* p = current_or_throw(operation);
  spend_in(p, n);
  return p;
}

/// Spend n reductions of the current slice; yield when the budget runs out.
/// Also where a pending kill is noticed.  No-op outside a process.
inline void spend(long n) {
  if (process* p = this_process()) spend_in(p, n);
}

}  // namespace ember::detail
