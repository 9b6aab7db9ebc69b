// ember/process_info.hpp — what a process is doing (erlang:process_info/1).
//
//   if (auto info = ember::process_info(p))
//     fmt::print("{} {} msgs, {} bytes\n", info->registered_name, info->message_queue_len, info->memory);
//
// A snapshot: the process may change the moment it is taken.  A pid that is
// not alive gives std::nullopt (not an error).
//
// Threads: any thread, inside or outside a process.  The pid's runtime must
// still exist.  Ownership: the snapshot is a plain value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ember/options.hpp"
#include "ember/pid.hpp"

namespace ember {

enum class process_status : unsigned char {
  running,   // on a worker now
  runnable,  // in a run queue
  waiting,   // in receive, waiting for a message
  exiting,   // an exit signal is ending it (it unwinds at its next runtime
             // call), or its body has ended and its exit is being delivered
};

struct process_snapshot {
  ember::pid pid;
  process_status status = process_status::runnable;
  /// Messages queued, matched or not (exact while fewer than 65,535 wait
  /// unread in the inbox; a lower bound beyond).
  std::size_t message_queue_len = 0;
  /// Bytes of the queued messages the process has taken into its queue
  /// (each receive takes all that have arrived): every envelope with its
  /// value; not what a value points to (a string's buffer, a vector's
  /// elements, a shared binary).  Messages that arrived since its last
  /// receive are in message_queue_len only.
  std::size_t message_queue_bytes = 0;
  /// Bytes its private heap holds from the system (heap.hpp; 0 before first
  /// use), and the heap's cap (0: none).
  std::size_t heap_size = 0;
  std::size_t max_heap_size = 0;
  /// Its mailbox bound (capacity 0: unbounded).
  mailbox_bound mailbox;
  /// Bytes held: control block, stack (as reserved; none before the
  /// process first runs, nor while it hibernates), signal state, heap,
  /// queued messages (message_queue_bytes).
  std::size_t memory = 0;
  /// Reductions spent so far (send, receive, spawn, checkpoint, ...).
  std::uint64_t reductions = 0;
  std::vector<ember::pid> links;
  std::vector<ember::pid> monitors;      // processes this one monitors
  std::vector<ember::pid> monitored_by;  // processes monitoring this one
  std::string registered_name;           // empty when none
  std::string initial_call;              // the spawned callable's type, demangled
  bool trap_exit = false;
};

/// A snapshot of p, or nullopt when p is not alive.
[[nodiscard]] std::optional<process_snapshot> process_info(pid p);

/// Every live process of the caller's runtime (process context; from
/// outside use runtime::processes()).
[[nodiscard]] std::vector<pid> processes();

}  // namespace ember
