// ember/names.hpp — registered names (erlang:register/2, unregister/1,
// whereis/1, Name ! Msg).
//
//   ember::register_name("rate_limiter", self());
//   ember::send("rate_limiter", check{key});      // throws no_such_name if absent
//   if (auto p = ember::whereis("rate_limiter")) ...
//
// Rules (tests in tests/behaviour/names_test.cpp):
//  - a name names at most one live process, and a process has at most one
//    name; registering a taken name, a process that already has a name, a
//    process that is not alive, or an empty name throws registration_error
//    saying which;
//  - a name is released when its process exits (whereis then gives
//    nothing, and the name can be registered again);
//  - send to a name nobody holds throws no_such_name (as Erlang's
//    `Name ! Msg` raises badarg) instead of dropping the message;
//  - unregister_name returns false when the name was not registered.
//
// A via_name is a name kept by some other name service (OTP's
// {via, Module, Name}): ember::via(registry, key) makes one (registry.hpp).
// gen_server takes it wherever it takes a name; send(via_name, msg) throws
// no_such_name when nobody holds it, like send to a plain name.
//
// Threads: the free functions work in process context (on the caller's
// runtime); runtime has the same operations for any thread.  A via_name
// works from the threads its service allows (a registry's: any thread).
// Ownership: names are copied into the runtime's name table.  A via_name is
// a cheap handle sharing its service (and, through it, the registry).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ember/detail/runtime_core.hpp"
#include "ember/errors.hpp"
#include "ember/pid.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"

namespace ember {

/// Give p the name `name` on the caller's runtime.
void register_name(std::string_view name, pid p);
/// Remove the name; false when it was not registered.
bool unregister_name(std::string_view name);
/// The live process holding `name`, if any.
[[nodiscard]] std::optional<pid> whereis(std::string_view name);

/// Send to the process registered under `name`; throws no_such_name when
/// none is.
template <class T>
send_result send(std::string_view name, T&& msg) {
  return ember::send(detail::enter_runtime("send")->rt->names().resolve(name), std::forward<T>(msg));
}
template <class T>
send_result send(const char* name, T&& msg) {
  return ember::send(std::string_view(name), std::forward<T>(msg));
}

/// A name held by a name service other than the runtime's name table.
class via_name {
public:
  /// What a name service does for one name (OTP's via-module callbacks).
  /// From which threads: as the service says (a registry's: any thread).
  class service {
  public:
    virtual ~service() = default;
    /// The live process holding the name, or the null pid.
    [[nodiscard]] virtual pid whereis() const = 0;
    /// Give the name to p.  nullopt: p holds it now; otherwise the name was
    /// taken (nothing changed) and this is the holder.  Throws
    /// registration_error when p cannot take names (not alive).
    [[nodiscard]] virtual std::optional<pid> register_name(pid p) const = 0;
    /// Take the name from p; false when p did not hold it.
    virtual bool unregister_name(pid p) const = 0;
    /// The name as error messages and reports show it.
    [[nodiscard]] virtual std::string to_string() const = 0;
  };

  /// The empty via_name: names nothing.
  via_name() = default;
  explicit via_name(std::shared_ptr<const service> s) noexcept : s_(std::move(s)) {}

  [[nodiscard]] explicit operator bool() const noexcept { return s_ != nullptr; }
  /// The live holder, or the null pid (also for the empty via_name).
  [[nodiscard]] pid whereis() const { return s_ ? s_->whereis() : pid{}; }
  /// See service::register_name.  Throws bad_argument on the empty via_name.
  [[nodiscard]] std::optional<pid> register_name(pid p) const { return get("register_name").register_name(p); }
  /// See service::unregister_name; false for the empty via_name.
  bool unregister_name(pid p) const { return s_ ? s_->unregister_name(p) : false; }
  [[nodiscard]] std::string to_string() const { return s_ ? s_->to_string() : std::string("(empty via_name)"); }

private:
  const service& get(const char* op) const {
    if (!s_) throw bad_argument(std::string("ember::via_name::") + op + ": the via_name is empty");
    return *s_;
  }
  std::shared_ptr<const service> s_;
};

/// Send to the process holding `name`; throws no_such_name (naming it) when
/// none does, bad_argument for the empty via_name.  From the threads the
/// name's service allows (any thread, for a registry key).
template <class T>
send_result send(const via_name& name, T&& msg) {
  detail::spend(1);
  if (!name) throw bad_argument("ember::send: the via_name is empty");
  const pid p = name.whereis();
  if (p.is_null()) throw no_such_name(name.to_string());
  return ember::send(p, std::forward<T>(msg));
}

}  // namespace ember
