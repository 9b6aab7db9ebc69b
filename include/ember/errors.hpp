// ember/errors.hpp — the typed errors ember throws for misuse and bad input.
//
// Threads: any thread.  Ownership: plain value types.
//
// Every error names what was wrong in its what() text.  All derive from
// ember::error so a caller can catch the family at once.
#pragma once

#include <stdexcept>

#include "ember/exit_reason.hpp"
#include <string>
#include <string_view>

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

/// An argument out of its documented range (a timer delay, an empty name).
class bad_argument : public error {
public:
  using error::error;
};

/// link() to a process that is not alive, from a process not trapping exits
/// (OTP's link/1 raises noproc there).
class noproc_error : public error {
public:
  explicit noproc_error(const std::string& what) : error(what) {}
};

/// register_name refused: the name is taken, the process already has a
/// name or is not alive, or the name is empty.  what() says which.
class registration_error : public error {
public:
  using error::error;
};

/// send(name, msg) to a name no live process holds.
class no_such_name : public error {
public:
  explicit no_such_name(std::string_view name)
      : error("ember::send: no process is registered under the name \"" + std::string(name) + "\""),
        name_(name) {}
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
  std::string name_;
};

/// A gen_server call (or stop) that got no answer.  The subclasses say why.
class call_error : public error {
public:
  using error::error;
};
/// No answer within the call's timeout.  A reply that comes later is dropped.
class call_timeout : public call_error {
public:
  using call_error::call_error;
};
/// No such process, or no process registered under the name.
class call_noproc : public call_error {
public:
  using call_error::call_error;
};
/// The server exited before answering; reason() is its exit reason.
class call_exited : public call_error {
public:
  call_exited(const std::string& what, exit_reason r) : call_error(what + ": " + r.to_string()), reason_(std::move(r)) {}
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }

private:
  exit_reason reason_;
};
/// A server called itself (it would wait for ever).
class call_self : public call_error {
public:
  using call_error::call_error;
};
/// The server could not take the request: it is a server of another type.
class bad_request : public call_error {
public:
  using call_error::call_error;
};
/// The server's mailbox is bounded and full (spawn_options::mailbox): the
/// request was refused or dropped without being handled.  Load shedding:
/// the caller learns at once instead of queueing behind the backlog.
class call_refused : public call_error {
public:
  using call_error::call_error;
};

}  // namespace ember
