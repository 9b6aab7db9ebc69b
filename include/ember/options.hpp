// ember/options.hpp — runtime and spawn options, with their documented
// defaults and ranges.
//
// Threads: plain values.  Ownership: runtime_options shares the logger.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

namespace spdlog {
class logger;
}

namespace ember {

class manual_clock;
class event_source;  // scheduler/event_source.hpp

/// Default usable stack size of a process: 64 KiB (256 KiB under
/// AddressSanitizer, whose frames are larger).  The kernel commits only the
/// pages a process touches, usually one or two.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t default_stack_size = 256 * 1024;
#else
inline constexpr std::size_t default_stack_size = 64 * 1024;
#endif
/// Accepted stack sizes (usable bytes); anything outside is invalid_option.
inline constexpr std::size_t min_stack_size = 16 * 1024;
inline constexpr std::size_t max_stack_size = std::size_t{1} << 30;  // 1 GiB

/// What a bounded mailbox does with an ordinary message that finds it full
/// (see mailbox_bound).
enum class overflow : unsigned char {
  drop_newest,  // the new message is dropped; send returns send_result::dropped
  drop_oldest,  // the oldest ordinary messages give way to the new one
  refuse,       // the new message is dropped; send returns send_result::refused
  kill,         // the receiver is killed (reason: mailbox_overflow)
};

/// A bound on a process's mailbox.  Only ordinary messages count against it
/// and only they are ever dropped: exit signals, monitors' `down` messages,
/// replies to the process's own calls and gen_server stop requests always
/// get through.  capacity 0 means unbounded; at most max_mailbox_capacity.
struct mailbox_bound {
  std::size_t capacity = 0;
  overflow policy = overflow::refuse;
};
inline constexpr std::size_t max_mailbox_capacity = (std::size_t{1} << 31) - 1;

/// A max_heap_size that means "no cap" (spawn_options: even when the
/// runtime has a default cap).
inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

/// OTP's long_message_queue monitor: a warning is logged (and the hook
/// called) when a mailbox reaches `enable` messages; it is not reported
/// again until the mailbox has gone down to `disable` (default enable / 2).
/// enable 0 turns it off.  enable is at most 65,535 (queue lengths beyond
/// are a lower bound until the process next receives).
struct long_message_queue {
  std::size_t enable = 0;
  std::size_t disable = 0;
};

struct runtime_options {
  /// Worker threads; 0 means one per core (std::thread::hardware_concurrency).
  /// At most 1024.
  unsigned workers = 0;
  /// Reductions per slice (as in OTP, 4000).  send, receive, spawn and
  /// checkpoint spend them; a process whose budget runs out goes to the back
  /// of its run queue.  1 to 1,000,000,000.
  long reductions = 4000;
  /// Default usable stack size for processes; see min/max_stack_size.
  std::size_t stack_size = default_stack_size;
  /// Where crash reports go; null means spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
  /// A manual clock for tests (see clock.hpp); null means the monotonic
  /// system clock.  With one, the runtime runs a single worker (workers
  /// must be 0 or 1).
  std::shared_ptr<manual_clock> clock;
  /// The cap on each process's private heap (see heap.hpp) unless its spawn
  /// options say otherwise: a process whose heap would grow past it is
  /// killed with reason max_heap_size_exceeded.  0: no cap.
  std::size_t max_heap_size = 0;
  /// Report mailboxes that pass a length (see long_message_queue).
  ember::long_message_queue long_message_queue;
  /// An event loop for the workers to drive (scheduler/event_source.hpp):
  /// the io layer's context in worker mode (io/context.hpp).  null: none.
  std::shared_ptr<event_source> events;

  // -- scheduling (docs/guide.md, "Scheduling") ------------------------------
  /// A process that has run this long without giving up its worker is
  /// asked to yield at its next runtime call (checkpoint, send, receive,
  /// ...), even with reductions left — so a busy worker's other processes
  /// and timers wait at most about this long.  0: no time slices
  /// (reductions only).  0 or 50 us to 1 s.
  std::chrono::microseconds time_slice{500};
  /// A worker whose process has run this long *without any runtime call*
  /// (a plain C++ loop, a blocking system call) is handed to another
  /// thread, which goes on with the worker's other processes and timers;
  /// the holding process keeps its thread until its next runtime call.
  /// 0: never.  0 or 100 us to 10 s.
  std::chrono::microseconds handoff_after{2000};
  /// A process that runs this long without yielding its worker is reported
  /// once it yields (a warning with its pid, name, initial call and time;
  /// OTP's long_schedule monitor).  0: off.  At most 1 hour.
  std::chrono::milliseconds long_schedule{100};
  /// At most this many processes run off the schedulers at once — in
  /// ember::blocking, or handed off while they hold a thread — each on a
  /// thread of its own: the runtime runs at most workers + blocking_threads
  /// threads that run processes.  Past it, blocking waits its turn (first
  /// come, first served) and a held worker stays held.  1 to 4096.
  unsigned blocking_threads = 64;
  /// runtime::stop's last resort (measured on the steady clock, not the
  /// runtime's): stop kills every process and waits for them to end; a
  /// process still alive after this long — one that swallows its kill in a
  /// `catch (...)` loop, or runs plain C++ code that never calls the
  /// runtime — is reported (pid, name, initial call, status) and
  /// abandoned, and stop returns.  An abandoned process is never resumed
  /// by the runtime (one running plain C++ code keeps its thread, which
  /// is detached), its stack is not unwound, and the runtime's memory is
  /// kept until the program exits.  1 ms to 24 h; default 5 s.
  std::chrono::milliseconds stop_timeout{5000};
};

struct spawn_options {
  /// Usable stack size for this process; 0 means the runtime's default.
  std::size_t stack_size = 0;
  /// Bound on the mailbox; capacity 0 (the default) means unbounded.
  mailbox_bound mailbox;
  /// Cap on the process's private heap in bytes; 0 means the runtime's
  /// default (runtime_options::max_heap_size), ember::unlimited no cap.
  std::size_t max_heap_size = 0;
};

}  // namespace ember
