// ember/options.hpp — runtime and spawn options, with their documented
// defaults and ranges.
//
// Threads: plain values.  Ownership: runtime_options shares the logger.
#pragma once

#include <cstddef>
#include <memory>

namespace spdlog {
class logger;
}

namespace ember {

class manual_clock;

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
};

struct spawn_options {
  /// Usable stack size for this process; 0 means the runtime's default.
  std::size_t stack_size = 0;
};

}  // namespace ember
