// ember/task/async.hpp — Elixir's Task: run a function in its own process
// and collect its result.
//
//   auto h = ember::task::async([] { return fetch(url); });   // linked + monitored
//   ... other work ...
//   std::string page = ember::task::await(h, 5s);             // or throws
//
// The rules (Elixir's Task; tests in tests/behaviour/task_test.cpp, the
// table in docs/behaviours.md):
//  - async(fn) spawns a process linked to the caller and monitored by it,
//    both before it runs; it runs fn() and sends the result to the caller.
//    A task that crashes takes the caller down through the link (unless
//    the caller traps exits), as Elixir's does.
//  - await(h, t) (default 5000 ms) returns the result.  If the task exited
//    first: task_exited with its reason.  If t runs out: task_timeout (the
//    task keeps running unless the exception ends the caller — it is
//    linked).  Only the process that started the task may await it, once.
//  - yield(h, t) returns the result, the task's exit, or nullopt when t
//    ran out (the task keeps running; yield or await it again).
//  - shutdown(h[, t]) unlinks and stops the task: `shutdown`, then a kill
//    after t (default 5000 ms; task::brutal_kill kills at once).  It
//    returns the result if it came meanwhile, the exit if the task died of
//    another reason, nullopt otherwise.  ignore(h) lets it run on alone.
//  - A finished task's result is taken once: a second await/yield is
//    bad_argument.
//
// Threads: process context; a handle belongs to the process that started
// the task.  Ownership: the task process owns fn; its result is moved to
// the caller's mailbox, then out to the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "ember/detail/call.hpp"
#include "ember/detail/signals.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/receive.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/spawn.hpp"

namespace ember {

/// task::await: the task exited before sending its result; reason() is
/// its exit reason.
class task_exited : public error {
public:
  task_exited(const std::string& what, exit_reason r) : error(what + ": " + r.to_string()), reason_(std::move(r)) {}
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }

private:
  exit_reason reason_;
};
/// task::await (or an async_stream with on_timeout::exit): no result in time.
class task_timeout : public error {
public:
  using error::error;
};

namespace task {

/// The default await timeout (Elixir's 5000 ms).
inline constexpr std::chrono::milliseconds default_timeout{5000};
/// No timeout.
inline constexpr std::chrono::milliseconds infinity{-1};

/// What a task came to: its value, or its exit reason ({:ok, v} / {:exit, r}).
template <class R>
class result {
public:
  static result ok(R v) {
    result r;
    r.value_.emplace(std::move(v));
    return r;
  }
  static result exit(exit_reason why) {
    result r;
    r.reason_ = std::move(why);
    return r;
  }
  [[nodiscard]] explicit operator bool() const noexcept { return value_.has_value(); }
  [[nodiscard]] bool ok() const noexcept { return value_.has_value(); }
  /// The value (bad_argument when the task exited instead).
  R& value() {
    if (!value_) throw bad_argument("ember::task::result::value: the task exited: " + reason_.to_string());
    return *value_;
  }
  /// The exit reason (normal for a value).
  [[nodiscard]] const exit_reason& reason() const noexcept { return reason_; }

private:
  std::optional<R> value_;
  exit_reason reason_;
};

/// The value of a task whose function returns void.
struct done {
  friend bool operator==(done, done) noexcept { return true; }
};

namespace detail {
template <class F>
using value_of_t = std::conditional_t<std::is_void_v<std::invoke_result_t<F&>>, done, std::invoke_result_t<F&>>;

/// A task's result, sent to its owner (only while the owner still takes
/// it: deliver_if_requested) and matched by the task's key.
template <class R>
struct reply {
  std::uint64_t key;
  R value;
};

}  // namespace detail
}  // namespace task
}  // namespace ember
// A task's result is a system message: a bounded mailbox never drops it
// (its owner asked for it).
template <class R>
inline constexpr bool ember::detail::system_message_v<ember::task::detail::reply<R>> = true;
namespace ember {
namespace task {
namespace detail {

/// The owner's request key of the task monitored under id: apart from
/// gen_server's asynchronous references (call_seq | bit 63).
inline constexpr std::uint64_t key_of(std::uint64_t monitor_id) noexcept {
  return monitor_id | ember::detail::async_request_bit | (std::uint64_t{1} << 62);
}

/// The task's last act: its result to the owner, if the owner still wants it.
template <class R>
void send_result(const ember::pid& owner, std::uint64_t key, R&& v) {
  ember::detail::deliver_if_requested(
      owner, key, ember::detail::make_envelope<reply<R>>(owner.serial(), reply<R>{key, std::move(v)}));
}

template <class R, class F, class... A>
R run(F& fn, A&... a) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&, A&...>>) {
    fn(a...);
    return done{};
  } else {
    return fn(a...);
  }
}
}  // namespace detail

/// A running (or finished) task, as its owner holds it (Elixir's %Task{}).
template <class R>
class handle {
public:
  handle() = default;
  handle(ember::pid p, monitor_ref m, ember::pid owner, bool linked) noexcept
      : pid_(p), mon_(m), owner_(owner), linked_(linked) {}
  // One owner, one result: a handle moves, it is not copied.
  handle(const handle&) = delete;
  handle& operator=(const handle&) = delete;
  handle(handle&& o) noexcept { *this = std::move(o); }
  handle& operator=(handle&& o) noexcept {
    pid_ = o.pid_;
    mon_ = o.mon_;
    owner_ = o.owner_;
    linked_ = o.linked_;
    finished_ = o.finished_;
    o.pid_ = {};
    o.finished_ = true;
    return *this;
  }
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  [[nodiscard]] const monitor_ref& ref() const noexcept { return mon_; }
  /// The key its result comes back under.
  [[nodiscard]] std::uint64_t key() const noexcept { return detail::key_of(mon_.id); }
  [[nodiscard]] ember::pid owner() const noexcept { return owner_; }
  [[nodiscard]] bool linked() const noexcept { return linked_; }
  /// Its result was taken (await, yield with a result, shutdown, ignore).
  [[nodiscard]] bool finished() const noexcept { return finished_; }

  /// For the task functions: mark the result taken.
  void finish() noexcept { finished_ = true; }
  void unlinked() noexcept { linked_ = false; }

private:
  ember::pid pid_;
  monitor_ref mon_;
  ember::pid owner_;
  bool linked_ = false;
  bool finished_ = false;
};

namespace detail {
/// The owner's checks before it waits on h.
template <class R>
void check_owner(const handle<R>& h, const char* fn) {
  const ember::pid me = ember::self();
  if (h.pid().is_null()) throw bad_argument(fmt::format("ember::task::{}: an empty handle", fn));
  if (h.owner() != me)
    throw bad_argument(fmt::format("ember::task::{}: the task {} belongs to {}, not to the caller {}", fn, h.pid(),
                                   h.owner(), me));
  if (h.finished())
    throw bad_argument(fmt::format("ember::task::{}: the result of task {} was already taken", fn, h.pid()));
}

/// Wait for h's reply or its down, up to ns (-1: for ever); nullopt when
/// the time ran out.
template <class R>
std::optional<result<R>> wait_for(const handle<R>& h, std::int64_t ns) {
  const std::uint64_t id = h.ref().id;
  const std::uint64_t key = h.key();
  auto on_reply = ember::when([key](const reply<R>& r) { return r.key == key; },
                              [](reply<R> r) { return std::optional(result<R>::ok(std::move(r.value))); });
  auto on_down = ember::when([id](const ember::down& d) { return d.ref.id == id; },
                             [](ember::down d) { return std::optional(result<R>::exit(std::move(d.reason))); });
  if (ns < 0) return ember::receive(on_reply, on_down);
  return ember::receive(on_reply, on_down,
                        ember::after(std::chrono::nanoseconds(ns), [] { return std::optional<result<R>>(); }));
}

/// The task is done with: no result and no down for it will come (a
/// queued one is removed).
template <class R>
void settle(handle<R>& h) {
  ember::detail::process* self = ember::detail::current_or_throw("task");
  ember::detail::end_request(self, h.key());
  const std::uint64_t key = h.key();
  ember::receive(ember::when([key](const reply<R>& r) { return r.key == key; }, [](reply<R>) {}),
                 ember::after(std::chrono::nanoseconds(0), [] {}));
  ember::demonitor(h.ref(), demonitor_option::flush);
  h.finish();
}
}  // namespace detail

/// Run fn() in a new process linked to and monitored by the caller.
/// Process context.  fn's result (a movable value; void gives task::done)
/// goes to the caller.
template <class F>
handle<detail::value_of_t<std::decay_t<F>>> async(F&& fn, const spawn_options& o = {}) {
  using Fn = std::decay_t<F>;
  using R = detail::value_of_t<Fn>;
  ember::detail::process* self = ember::detail::current_or_throw("task::async");
  const ember::pid owner = self->self_pid();
  const std::uint64_t id = self->rt->next_monitor_id();
  const std::uint64_t key = detail::key_of(id);
  auto body = [fn = Fn(std::forward<F>(fn)), owner, key]() mutable {
    detail::send_result<R>(owner, key, detail::run<R>(fn));
  };
  ember::detail::process* p = self->rt->make_process(std::move(body), o, "task::async");
  ember::detail::begin_request(self, key, {});
  const ember::pid child = self->rt->publish_spawn(p, [&](ember::pid c) {
    ember::detail::link_new_child(self, p, c);
    ember::detail::monitor_new_child(self, p, c, id);
  });
  ember::detail::spend(10);
  return handle<R>(child, monitor_ref{id, child}, owner, true);
}

/// The task's result, waiting up to timeout (default 5000 ms, infinity:
/// for ever).  Throws task_exited when the task exited first, task_timeout
/// when the time runs out; bad_argument when the caller does not own the
/// task or its result was taken, and for a negative timeout.
template <class R>
R await(handle<R>& h, ember::detail::timeout_arg timeout = default_timeout) {
  const std::int64_t ns = timeout.ns("task::await", "timeout");
  detail::check_owner(h, "await");
  std::optional<result<R>> r = detail::wait_for(h, ns);
  if (!r) throw task_timeout(fmt::format("ember::task::await: task {} sent no result within {}", h.pid(), timeout.describe()));
  detail::settle(h);
  if (!*r) throw task_exited(fmt::format("ember::task::await: task {} exited", h.pid()), r->reason());
  return std::move(r->value());
}
inline void await(handle<done>& h, ember::detail::timeout_arg timeout = default_timeout) {
  (void)await<done>(h, timeout);
}

/// The task's result or its exit, or nullopt when timeout (default 5000
/// ms) ran out — the task then keeps running.
template <class R>
std::optional<result<R>> yield(handle<R>& h, ember::detail::timeout_arg timeout = default_timeout) {
  const std::int64_t ns = timeout.ns("task::yield", "timeout");
  detail::check_owner(h, "yield");
  std::optional<result<R>> r = detail::wait_for(h, ns);
  if (r) detail::settle(h);
  return r;
}

/// shutdown's "kill at once".
struct brutal_kill_t {};
inline constexpr brutal_kill_t brutal_kill{};

namespace detail {
template <class R>
std::optional<result<R>> shutdown_impl(handle<R>& h, std::int64_t ns, const char* fn) {
  check_owner(h, fn);
  const ember::pid p = h.pid();
  if (h.linked()) {
    ember::unlink(p);
    h.unlinked();
    // An exit_message the link delivered before (to a trapping owner) goes.
    ember::receive(ember::when([p](const exit_message& x) { return x.from == p; }, [](exit_message) {}),
                   ember::after(std::chrono::nanoseconds(0), [] {}));
  }
  ember::exit(p, ns == 0 ? exit_reason::kill() : exit_reason::shutdown());
  std::optional<result<R>> r = wait_for(h, ns == 0 ? -1 : ns);
  if (!r) {
    ember::exit(p, exit_reason::kill());
    r = wait_for(h, -1);
  }
  settle(h);
  // A reply that crossed the signal is the result; an exit we caused is none.
  if (*r) return r;
  const exit_reason& why = r->reason();
  if (why.what() == exit_reason::kind::killed || why.what() == exit_reason::kind::noproc ||
      (why.what() == exit_reason::kind::shutdown && why.text().empty()))
    return std::nullopt;
  return r;
}
}  // namespace detail

/// Stop the task: unlink, send `shutdown`, kill it if it has not exited
/// within timeout (default 5000 ms).  Returns its result if it came
/// meanwhile, its exit if it died of another reason, nullopt otherwise.
template <class R>
std::optional<result<R>> shutdown(handle<R>& h, ember::detail::timeout_arg timeout = default_timeout) {
  const std::int64_t ns = timeout.ns("task::shutdown", "timeout");
  return detail::shutdown_impl(h, ns == 0 ? 1 : ns, "shutdown");
}
template <class R>
std::optional<result<R>> shutdown(handle<R>& h, brutal_kill_t) {
  return detail::shutdown_impl(h, 0, "shutdown");
}

/// Let the task run on alone: unlinked, unmonitored; its result, when it
/// comes, is dropped.  Returns its result (or exit) if it had already come.
template <class R>
std::optional<result<R>> ignore(handle<R>& h) {
  detail::check_owner(h, "ignore");
  if (h.linked()) {
    ember::unlink(h.pid());
    h.unlinked();
  }
  ember::detail::end_request(ember::detail::current_or_throw("task::ignore"), h.key());
  std::optional<result<R>> r = detail::wait_for(h, 0);
  detail::settle(h);
  return r;
}


}  // namespace task
}  // namespace ember
