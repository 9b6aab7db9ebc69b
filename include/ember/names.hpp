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
// Threads: the free functions work in process context (on the caller's
// runtime); runtime has the same operations for any thread.
// Ownership: names are copied into the runtime's name table.
#pragma once

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
void send(std::string_view name, T&& msg) {
  ember::send(detail::current_or_throw("send")->rt->names().resolve(name), std::forward<T>(msg));
}
template <class T>
void send(const char* name, T&& msg) {
  ember::send(std::string_view(name), std::forward<T>(msg));
}

}  // namespace ember
