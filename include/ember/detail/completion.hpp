// ember/detail/completion.hpp — a process waiting for something the runtime
// does not run: the completion of an operation another thread carries out
// (an Asio operation, in the io layer).  No Asio here: the core knows only
// "events outstanding" and "wake the process".
//
// A completion_latch counts the events the waiting process still expects
// (the operation's completion; a cancellation request in flight).  Whoever
// finishes one calls finish() from any thread: it takes the event off the
// count and wakes the process as a send would — without a message when the
// process is blocked, with a wake signal (which receive drops) when it is
// not, so that it cannot block past the event.  The process's frame holds
// the latch and the results; it must not leave that frame while anyone may
// still touch them, so a finisher counts itself as "waking" from before it
// takes its event off until after its last access to the process, and the
// process is done only when both counts are zero (one atomic word).
//
// await_completion() is the waiting side.  The first time it sees the
// process killed (an exit signal that ends it) or the deadline pass, it
// calls the caller's cancel function once — which asks the operation to end
// early and may add an event for the request itself — and goes on waiting:
// the operation's completion always comes, and only then may the frame go.
// Messages that arrive meanwhile stay in the mailbox for a later receive;
// a trapped exit signal is one of them, and the operation goes on.
//
// Threads: finish() from any thread; the rest in the waiting process.
// Ownership: the latch lives in the waiting process's frame.
#pragma once

#include <atomic>
#include <cstdint>

#include "ember/process/process.hpp"

namespace ember::detail {

class completion_latch {
public:
  /// A latch of the calling process (self), expecting one event.
  explicit completion_latch(process* self) noexcept
      : owner_(self), word_(1) {}
  completion_latch(const completion_latch&) = delete;
  completion_latch& operator=(const completion_latch&) = delete;

  /// One more event to wait for (the waiting process, before it starts
  /// what will finish it).
  void expect() noexcept { word_.fetch_add(1, std::memory_order_relaxed); }
  /// One expected event happened (any thread, once per event): whatever it
  /// stored is published to the waiting process, which is woken.
  void finish() noexcept;
  /// Every event has happened and no finisher still touches the process.
  [[nodiscard]] bool done() const noexcept { return word_.load(std::memory_order_acquire) == 0; }
  /// Every event has happened, though a finisher may still be waking us.
  [[nodiscard]] bool events_done() const noexcept {
    return (word_.load(std::memory_order_acquire) & event_mask) == 0;
  }
  [[nodiscard]] process* owner() const noexcept { return owner_; }

private:
  static constexpr std::uint64_t event_mask = 0xffffffffu;
  static constexpr std::uint64_t waking_one = std::uint64_t{1} << 32;
  process* const owner_;
  std::atomic<std::uint64_t> word_;  // waking finishers << 32 | events outstanding
};

/// Why a wait for a completion asked for cancellation.
enum class completion_cancel { none, killed, timed_out, interrupted };

/// Wait in the calling process (self) until `latch` is done.  The first
/// time the wait sees a pending kill, or timeout_ns pass on the runtime's
/// clock (counted from the call; -1: no timeout), it calls cancel(ctx) once
/// and goes on waiting.  Returns what made it cancel (none: it completed on
/// its own).  Does not act on the kill itself: the caller ends the process
/// after it has taken its results (check_kill_now).  With on_exit_message,
/// an exit_message (a trapped exit signal) in the mailbox — already there,
/// or arriving during the wait — cancels the same way (interrupted); the
/// message stays where it is.
completion_cancel await_completion(process* self, completion_latch& latch, std::int64_t timeout_ns,
                                   void (*cancel)(void*), void* ctx, bool on_exit_message = false);

/// End the calling process now if a kill is pending (and it is not
/// unwinding already).
void check_kill_now(process* self);

}  // namespace ember::detail
