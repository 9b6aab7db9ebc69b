// ember/errors.hpp — the typed errors ember throws for misuse and bad input.
//
// Threads: any thread.  Ownership: plain value types.
//
// Every error names what was wrong in its what() text.  All derive from
// ember::error so a caller can catch the family at once.
#pragma once

#include <stdexcept>
#include <string>

namespace ember {

/// Base of every error ember throws on purpose.
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A process-context operation (receive, self, yield, ...) was called from a
/// thread that is not running an ember process.
class not_in_process : public error {
public:
  explicit not_in_process(const char* operation)
      : error(std::string("ember::") + operation +
              " must be called from inside an ember process, "
              "but the calling thread is not running one") {}
};

/// The runtime is stopping or stopped and takes no new processes.
class runtime_stopped : public error {
public:
  explicit runtime_stopped(const char* operation)
      : error(std::string("ember::") + operation +
              ": the runtime is stopping or stopped and takes no new processes") {}
};

/// An option (runtime or spawn) is out of its documented range.
class invalid_option : public error {
public:
  using error::error;
};

}  // namespace ember
