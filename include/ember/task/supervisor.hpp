// ember/task/supervisor.hpp — Elixir's Task.Supervisor: tasks started under
// a supervisor (a dynamic_supervisor whose children are temporary), for
// fire-and-forget work and for tasks whose crash must not take the caller
// down.
//
//   auto sup = ember::task::start_supervisor();                  // linked to the caller
//   ember::task::start_child(sup.server(), [] { send_mail(); });  // fire and forget
//   auto h = ember::task::async_nolink(sup.server(), [] { return risky(); });
//   if (auto r = ember::task::yield(h, 1s); r && !*r) ... r->reason() ...  // it crashed; we did not
//
// Rules (Elixir's; tests in tests/behaviour/task_test.cpp):
//  - start_supervisor starts a dynamic supervisor (Elixir's defaults: 3
//    restarts in 5 s; its children are never restarted anyway);
//  - start_child(sup, fn) runs fn in a temporary child: not linked to the
//    caller, nobody waits for it; it returns the child_result (the pid, or
//    why it did not start, e.g. max_children);
//  - async_nolink(sup, fn) runs fn in a child monitored by the caller but
//    not linked to it: await / yield / shutdown as for task::async; a crash
//    is the result's exit (yield) or task_exited (await), never the
//    caller's death.  async(sup, fn) is the same, linked to the caller;
//  - the task does not run fn before its owner has set up the monitor (it
//    waits for the owner's go-ahead), so its exit reason is never lost to
//    a noproc; if its owner dies first, it ends without running fn;
//  - shutting the supervisor down stops its tasks (shutdown, then a kill
//    after 5000 ms).
//
// Threads: process context.  Ownership: the supervisor owns its tasks.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "ember/dynamic_supervisor.hpp"
#include "ember/task/async.hpp"

namespace ember::task {

using supervisor_ref = dynamic_supervisor::ref;

/// Start a task supervisor linked to the caller (optionally named).
inline dynamic_supervisor::start_result start_supervisor(dynamic_supervisor::flags f = {}) {
  return dynamic_supervisor::start_link(f);
}
inline dynamic_supervisor::start_result start_supervisor(gen_server::name n, dynamic_supervisor::flags f = {}) {
  return dynamic_supervisor::start_link(std::move(n), f);
}

namespace detail {
/// The owner's go-ahead: the monitor is set, the result goes under `key`.
struct go {
  std::uint64_t key;
};

/// A temporary child spec running fn (start_child), or — with an owner —
/// waiting for the owner's go-ahead first and sending it the result.
template <class F>
supervisor::child_spec spec_of(F fn, ember::pid owner) {
  supervisor::child_spec c;
  c.restart = supervisor::temporary;
  c.shutdown = supervisor::shutdown_spec::timeout(default_timeout);
  c.start = [fn = std::move(fn), owner]() -> supervisor::started {
    return ember::spawn_link([fn, owner]() mutable {
      using R = value_of_t<F>;
      if (owner.is_null()) return (void)run<R>(fn);
      // Wait for the owner to watch us; give up if it is gone.
      const monitor_ref om = ember::monitor(owner);
      std::optional<std::uint64_t> key =
          ember::receive([](go g) { return std::optional(g.key); },
                         ember::when([om](const ember::down& d) { return d.ref == om; },
                                     [](ember::down) { return std::optional<std::uint64_t>(); }));
      if (!key) return;
      ember::demonitor(om, demonitor_option::flush);
      send_result<R>(owner, *key, run<R>(fn));
    });
  };
  return c;
}

template <class F>
handle<value_of_t<std::decay_t<F>>> supervised(const supervisor_ref& sup, F&& fn, bool link, const char* what) {
  using R = value_of_t<std::decay_t<F>>;
  ember::detail::process* self = ember::detail::current_or_throw(what);
  supervisor::child_result c =
      dynamic_supervisor::start_child(sup, spec_of(std::decay_t<F>(std::forward<F>(fn)), self->self_pid()));
  if (!c) throw error(fmt::format("ember::{}: the supervisor did not start the task: {}", what, c.message()));
  const ember::pid p = c.pid();
  if (link) ember::link(p);  // it waits for `go`: it cannot have exited yet... unless killed
  const monitor_ref m = ember::monitor(p);
  handle<R> h(p, m, self->self_pid(), link);
  ember::detail::begin_request(self, h.key(), p);
  ember::send(p, go{h.key()});
  return h;
}
}  // namespace detail

/// Run fn in a temporary child of sup: fire and forget.  Returns the child
/// (child_result: the pid, or why it did not start).
template <class F>
supervisor::child_result start_child(const supervisor_ref& sup, F&& fn) {
  return dynamic_supervisor::start_child(sup, detail::spec_of(std::decay_t<F>(std::forward<F>(fn)), ember::pid{}));
}

/// Run fn in a child of sup, monitored by the caller but not linked to it;
/// collect it with await / yield / shutdown.  Throws ember::error when the
/// supervisor does not start it (max_children).
template <class F>
handle<detail::value_of_t<std::decay_t<F>>> async_nolink(const supervisor_ref& sup, F&& fn) {
  return detail::supervised(sup, std::forward<F>(fn), false, "task::async_nolink");
}
/// The same, also linked to the caller (Elixir's Task.Supervisor.async).
template <class F>
handle<detail::value_of_t<std::decay_t<F>>> async(const supervisor_ref& sup, F&& fn) {
  return detail::supervised(sup, std::forward<F>(fn), true, "task::async (supervised)");
}

}  // namespace ember::task
