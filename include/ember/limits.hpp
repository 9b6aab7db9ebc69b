// ember/limits.hpp — the exit reasons of a process ended by a limit:
// its heap cap (spawn_options::max_heap_size) or its mailbox bound under
// overflow::kill.
//
//   if (auto* m = reason.value<ember::max_heap_size_exceeded>())
//     log("heap {} bytes, cap {}", m->heap_bytes, m->limit);
//
// Both are `error` reasons carrying a typed value: a supervisor or monitor
// sees them like any crash, and can read the figures back.
//
// Threads: plain values.  Ownership: n/a.
#pragma once

#include <cstddef>

#include <fmt/format.h>

namespace ember {

/// The process's heap would have grown past its cap.
struct max_heap_size_exceeded {
  std::size_t heap_bytes = 0;   // what the heap held when it asked for more
  std::size_t requested = 0;    // what it asked for
  std::size_t limit = 0;        // the cap
  friend bool operator==(const max_heap_size_exceeded&, const max_heap_size_exceeded&) = default;
};

/// An ordinary message found the mailbox full under overflow::kill.
struct mailbox_overflow {
  std::size_t capacity = 0;
  friend bool operator==(const mailbox_overflow&, const mailbox_overflow&) = default;
};

}  // namespace ember

template <>
struct fmt::formatter<ember::max_heap_size_exceeded> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::max_heap_size_exceeded& m, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "max_heap_size: the heap holds {} bytes and asked for {} more; the cap is {} bytes",
                          m.heap_bytes, m.requested, m.limit);
  }
};

template <>
struct fmt::formatter<ember::mailbox_overflow> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::mailbox_overflow& m, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "mailbox_overflow: the mailbox is full at {} messages", m.capacity);
  }
};
