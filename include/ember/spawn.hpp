// ember/spawn.hpp — spawn a process from inside a process.
//
// Threads: process context (throws not_in_process elsewhere; from outside
// use runtime::spawn).  Ownership: the runtime owns the new process; fn is
// moved into it.
#pragma once

#include <utility>

#include "ember/detail/runtime_core.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"
#include "ember/this_process.hpp"

namespace ember {

/// Start a process running fn() on the caller's runtime; returns at once
/// (the new process runs when a worker gets to it).  Spends 10 reductions.
template <class F>
pid spawn(F&& fn, const spawn_options& o = {}) {
  detail::process* self = detail::enter_runtime("spawn", 10);
  return self->rt->publish_spawn(self->rt->make_process(std::forward<F>(fn), o, "spawn"));
}

}  // namespace ember
