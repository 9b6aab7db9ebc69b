// ember/process/process.hpp — the process control block.
//
// One per live process: identity (serial), mailbox, fiber context and stack,
// the function it runs, and what waits for its exit.  Control blocks are
// type-stable: the runtime allocates them in chunks, recycles them through
// free lists, and frees them only when the runtime is destroyed.  A block
// names its current incarnation in `serial` (0 while free), which is how a
// stale pid is told apart from the process now in the block.
//
// Threads: fields are grouped by who touches them; each group says so.
// Ownership: the runtime owns every block.  While live, the block owns its
// stack, its mailbox contents and its entry function.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ember/exit_reason.hpp"
#include "ember/mailbox/mailbox.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"
#include "ember/process/fiber.hpp"
#include "ember/process/signal_state.hpp"
#include "ember/process/stack_pool.hpp"

namespace ember {
class process_heap;
}

namespace ember::detail {

class runtime_core;
class worker;

enum class process_status : std::uint8_t { free, runnable, running, waiting, exiting };

/// The budget of a process inside ember::blocking: it never runs out there.
inline constexpr long blocking_budget = long(1) << 60;
/// Reductions a process gets at a time within its slice (see
/// process::budget_reserve): a busy process reads the clock about once per
/// this many reductions.
inline constexpr long slice_chunk = 128;
/// What the monitor stores in a running process's budget to make it yield
/// at its next runtime call (a slice past time_slice, a hand-off): far
/// below 0, so no chunk of the reserve brings it back.
inline constexpr long budget_revoked = -(long(1) << 60);

/// What a process asks of its worker when it switches out.
enum class switch_request : std::uintptr_t { yield = 1, wait = 2, exit = 3, hibernate = 4 };

/// Someone outside the runtime waiting for a process to exit.
struct exit_latch {
  std::atomic<bool> done{false};
  exit_reason reason;  // written before done is set
};

/// Thrown inside a process to end it with a reason (exit(), kill).  Not
/// derived from std::exception, so `catch (const std::exception&)` in user
/// code does not swallow it.
struct exit_exception {
  exit_reason reason;
};

/// A tiny lock for the rarely contended exit-hook list.
class spin_lock {
public:
  void lock() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire))
      while (flag_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
  void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
  std::atomic<bool> flag_{false};
};

struct process {
  // -- any thread: what senders touch -----------------------------------
  mailbox mbox;
  std::atomic<std::uint64_t> serial{0};      // 0 = free
  // Set (under hooks_lock, once per incarnation) by an exit signal that
  // ends the process; `reason` then holds the reason it will exit with.
  // Read at every runtime call.
  std::atomic<bool> kill_pending{false};
  std::atomic<process_status> status{process_status::free};  // ordering: relaxed, informational
  // Off the schedulers, in ember::blocking (owner only): it does not yield,
  // and exit signals wait until the blocking function returns.
  bool in_blocking = false;
  runtime_core* rt = nullptr;                // fixed when the chunk is made
  // Reductions left in the current slice.  Written by the process itself
  // (spend) and by its worker (a fresh slice), and set to 0 by the monitor
  // to end a slice that has run too long (ordering: relaxed; a lost store
  // of the monitor's is repeated at its next tick).  Read at every spend.
  std::atomic<long> budget{0};
  // The rest of the slice's reductions, handed out `slice_chunk` at a time
  // (owner only): each time a chunk runs out, spend_slow reads the clock
  // and ends the slice itself once it has run past time_slice, without
  // waiting for the monitor.  slice_t0: the first such reading (0: none
  // yet in this slice).
  long budget_reserve = 0;
  std::int64_t slice_t0 = 0;

  // -- scheduler -------------------------------------------------------------
  fcontext ctx = nullptr;                    // saved context while not running
  fcontext return_ctx = nullptr;             // where to switch back to (while running)
  switch_side side;                          // this fiber's stack, for the sanitizers
  stack stk;
  std::size_t stack_class = 0;
  // Whether it holds a stack now (ordering: relaxed, informational, for
  // process_info: a hibernating process holds none).
  std::atomic<bool> has_stack{false};
  // ordering: relaxed; written by the owner, compared by timer-firing workers
  std::atomic<std::uint64_t> wait_seq{0};
  // The C++ runtime's per-thread exception state of this fiber, swapped in
  // and out around each slice (see worker.ipp).
  alignas(8) unsigned char eh_state[16] = {};
  // Reductions spent so far (written by the running worker after each
  // slice; ordering: relaxed, informational).
  std::atomic<std::uint64_t> reductions{0};
  // The gen_server call this process waits for (0: none).  Written by the
  // owner; read by repliers, which drop a reply to any other ref.
  std::atomic<std::uint64_t> call_ref{0};
  std::uint64_t call_seq = 0;  // owner: the last call ref used

  // -- memory ----------------------------------------------------------------
  // The private heap, made on first use by the owner (ordering: release,
  // for process_info's readers) and freed by its worker when it exits.
  std::atomic<ember::process_heap*> heap{nullptr};
  std::size_t heap_limit = 0;        // its cap (0: none), fixed at spawn
  ember::mailbox_bound bound;        // the mailbox bound, fixed at spawn

  // -- owner: the entry function -------------------------------------------
  static constexpr std::size_t inline_fn_size = 48;
  void (*invoke)(process*) = nullptr;
  void (*destroy_fn)(process*) noexcept = nullptr;
  void* fn_heap = nullptr;
  const std::type_info* entry_type = nullptr;  // the spawned callable's type
  // Set by the entry before it returns to ask for hibernation instead of
  // exit: the stack goes back to the pool and the entry is called again, on
  // a fresh stack, when a message arrives (see hibernate_on_return).
  bool hibernate_on_return = false;
  bool entry_started = false;  // the entry has been called at least once
  alignas(16) unsigned char fn_buf[inline_fn_size];

  // -- guarded by hooks_lock -------------------------------------------------
  spin_lock hooks_lock;
  bool hooks_closed = true;  // false while the process accepts signals
  bool trap_exit = false;    // written by the owner under the lock
  std::unique_ptr<signal_state> sig;  // links, monitors, waiters, name; lazily made

  /// The signal state, made on first use.  Caller holds hooks_lock.
  signal_state& signals() {
    if (!sig) sig = std::make_unique<signal_state>();
    return *sig;
  }

  // -- the exit reason: written by an exit signal that ends the process
  //    (under hooks_lock, before kill_pending is set) and by the process
  //    itself when its body ends (under hooks_lock, closing it to signals);
  //    read by the worker after exit.
  exit_reason reason;

  [[nodiscard]] ember::pid self_pid() const noexcept {
    return {const_cast<process*>(this), serial.load(std::memory_order_relaxed)};
  }

  template <class F>
  void set_entry(F&& f) {
    using Fn = std::decay_t<F>;
    entry_type = &typeid(Fn);
    hibernate_on_return = false;
    entry_started = false;
    if constexpr (sizeof(Fn) <= inline_fn_size && alignof(Fn) <= 16 &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(fn_buf)) Fn(std::forward<F>(f));
      fn_heap = nullptr;
      invoke = [](process* p) { (*std::launder(reinterpret_cast<Fn*>(p->fn_buf)))(); };
      destroy_fn = [](process* p) noexcept { std::launder(reinterpret_cast<Fn*>(p->fn_buf))->~Fn(); };
    } else {
      fn_heap = new Fn(std::forward<F>(f));
      invoke = [](process* p) { (*static_cast<Fn*>(p->fn_heap))(); };
      destroy_fn = [](process* p) noexcept {
        delete static_cast<Fn*>(p->fn_heap);
        p->fn_heap = nullptr;
      };
    }
  }
  void destroy_entry() noexcept {
    if (destroy_fn) destroy_fn(this);
    destroy_fn = nullptr;
    invoke = nullptr;
  }
};

}  // namespace ember::detail
