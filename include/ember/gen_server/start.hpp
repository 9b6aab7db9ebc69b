// ember/gen_server/start.hpp — starting a gen_server: start, start_link,
// start_monitor, their names and options, and what they return.
//
// The start handshake, step by step (the starter's side):
//  1. spawn the server, linked (start_link) and monitored in the same step,
//     before it runs, so its exit cannot be missed (spawn_monitor's rule);
//  2. wait for its acknowledgement (ok, failed, already_started, ignore),
//     its `down`, or the start timeout — then kill it and wait for its
//     `down` (a server stuck in plain C++ code holds the starter until it
//     next calls the runtime);
//  3. on success keep the monitor for start_monitor, else drop it; on any
//     failure wait for the server's `down`, then remove the link and the
//     `exit_message` it left (links are told before monitors, so it is
//     queued by then): a failed start leaves the starter nothing, as OTP's
//     proc_lib.
//
// Threads: process context.  Ownership: the arguments are moved into the
// new process, which builds the server object from them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ember/detail/timeout_arg.hpp"
#include "ember/gen_server/server_loop.hpp"
#include "ember/names.hpp"
#include "ember/receive.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/spawn.hpp"

namespace ember::gen_server {

/// A server of type S, named by pid, by registered name or by via_name
/// (names are looked up at each use).
template <class S>
class server {
public:
  server() = default;
  server(ember::pid p) : pid_(p) {}                       // NOLINT: a pid is a server reference
  server(std::string name) : name_(std::move(name)) {}    // NOLINT
  server(const char* name) : name_(name) {}               // NOLINT
  server(ember::via_name v) : via_(std::move(v)) {}       // NOLINT
  /// The process now (the null pid when nobody holds the name).
  [[nodiscard]] ember::pid pid() const {
    if (via_) return via_.whereis();
    return name_.empty() ? pid_ : detail::resolve(std::string_view(name_));
  }
  /// The registered name ("" when named otherwise).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The via_name (empty when named otherwise).
  [[nodiscard]] const ember::via_name& via() const noexcept { return via_; }
  /// The name as error messages show it ("" for a server named by pid).
  [[nodiscard]] std::string describe() const {
    if (via_) return via_.to_string();
    return name_.empty() ? std::string() : "\"" + name_ + "\"";
  }

private:
  ember::pid pid_;
  std::string name_;
  ember::via_name via_;
};

/// What start returns: the server, or why there is none.
template <class S>
class start_result {
public:
  [[nodiscard]] explicit operator bool() const noexcept { return status_ == detail::start_status::ok; }
  /// The server started (or, with already_started(), the one holding the name).
  [[nodiscard]] gen_server::server<S> server() const { return gen_server::server<S>(pid_); }
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  /// Why it did not start: init's error or stop reason, "already started",
  /// "ignore", "timeout".
  [[nodiscard]] const exit_reason& error() const noexcept { return reason_; }
  [[nodiscard]] bool already_started() const noexcept { return status_ == detail::start_status::already_started; }
  /// init returned ignore(): nothing runs, no name was taken (OTP's ignore).
  [[nodiscard]] bool ignored() const noexcept { return status_ == detail::start_status::ignored; }
  /// init did not finish within the start timeout: the server was killed.
  [[nodiscard]] bool timed_out() const noexcept { return status_ == detail::start_status::timed_out; }
  /// start_monitor: the monitor on the server (its `down` comes when it
  /// exits).  Empty for the other starts and for a failed start.
  [[nodiscard]] const monitor_ref& monitor() const noexcept { return monitor_; }

  start_result(detail::start_status status, ember::pid p, exit_reason r, monitor_ref m = {})
      : status_(status), pid_(p), reason_(std::move(r)), monitor_(m) {}

private:
  detail::start_status status_;
  ember::pid pid_;
  exit_reason reason_;
  monitor_ref monitor_;
};

/// A name to register the server under (start/start_link's first argument).
struct name {
  std::string value;
};

/// start/start_link's first argument when the server needs spawn options
/// (a mailbox bound, a heap cap, a stack size) or a start timeout, with or
/// without a name:
///   gen_server::start_link<limiter>(gen_server::options{.via = ember::via(reg, key),
///                                   .spawn = {.mailbox = {1000, ember::overflow::refuse}}}, key);
/// At most one of name and via.
struct options {
  std::string name;        // a registered name ("": none)
  ember::via_name via;     // or a via_name (empty: none)
  spawn_options spawn;
  /// How long init may take (OTP's {timeout, T}); then the server is
  /// killed and start fails with timed_out().  infinity: no limit.
  std::chrono::milliseconds timeout = infinity;
};

namespace detail {

/// How one start is made (step 1 at the top of this file).
struct start_config {
  ember::via_name name;
  spawn_options spawn;
  std::int64_t timeout_ns = -1;  // -1: none
  bool monitor = false;          // start_monitor: keep the monitor
  const char* what = "gen_server::start";
};

template <class S, bool Link, class... A>
start_result<S> start_with(start_config cfg, A&&... args) {
  ember::detail::process* self = ember::detail::enter_runtime(cfg.what, 10);
  using E = entry<S, std::decay_t<A>...>;
  const std::uint64_t ref = ++self->call_seq;
  E e;
  e.boot_ = std::make_unique<typename E::boot_data>(typename E::boot_data{
      self->self_pid(), ref, std::move(cfg.name), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)});
  // 1. Spawn, linked and monitored before it runs.
  ember::detail::process* p = self->rt->make_process(std::move(e), cfg.spawn, cfg.what);
  const std::uint64_t mid = self->rt->next_monitor_id();
  const ember::pid child = self->rt->publish_spawn(p, [&](ember::pid c) {
    if constexpr (Link) ember::detail::link_new_child(self, p, c);
    ember::detail::monitor_new_child(self, p, c, mid);
  });
  const monitor_ref m{mid, child};
  // 2. Its acknowledgement, its exit, or the timeout.
  std::optional<start_result<S>> r;
  bool gone = false;
  auto on_ack = ember::when([ref](const start_ack& a) { return a.ref == ref; }, [&](start_ack a) {
    // ignore: nothing runs, so no pid (OTP's bare `ignore`).
    r.emplace(a.status,
              a.status == start_status::already_started ? a.existing
              : a.status == start_status::ignored       ? ember::pid{}
                                                        : child,
              std::move(a.reason));
  });
  auto on_down = ember::when([m](const ember::down& d) { return d.ref == m; }, [&](ember::down d) {
    gone = true;
    r.emplace(start_status::failed, child, std::move(d.reason));
  });
  if (cfg.timeout_ns < 0) {
    ember::receive(on_ack, on_down);
  } else {
    ember::receive(on_ack, on_down, ember::after(std::chrono::nanoseconds(cfg.timeout_ns), [&] {
                     ember::exit(child, exit_reason::kill());
                     r.emplace(start_status::timed_out, child, exit_reason::error("timeout"));
                   }));
  }
  // 3. Keep the monitor, or leave nothing behind.
  if (*r) {
    if (!cfg.monitor) ember::demonitor(m, ember::demonitor_option::flush);
    else r.emplace(start_status::ok, child, exit_reason{}, m);
    return std::move(*r);
  }
  if (!gone) {
    // The server ends at once after a failed start (or is being killed):
    // wait for it; an acknowledgement that crossed the kill goes too.
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
    ember::receive(ember::when([ref](const start_ack& a) { return a.ref == ref; }, [](start_ack) {}),
                   ember::after(std::chrono::nanoseconds(0), [] {}));
  }
  if constexpr (Link) {
    ember::unlink(child);
    ember::receive(ember::when([child](const exit_message& x) { return x.from == child; }, [](exit_message) {}),
                   ember::after(std::chrono::nanoseconds(0), [] {}));
  }
  return std::move(*r);
}

/// start_with for the supervisors' own servers: a name and spawn options.
template <class S, bool Link, class... A>
start_result<S> start_impl(ember::via_name nm, const spawn_options& so, A&&... args) {
  start_config cfg;
  cfg.name = std::move(nm);
  cfg.spawn = so;
  cfg.what = Link ? "gen_server::start_link" : "gen_server::start";
  return start_with<S, Link>(std::move(cfg), std::forward<A>(args)...);
}

/// The name an options value gives (bad_argument when it gives two).
inline ember::via_name checked_name(const options& o, const char* op) {
  if (!o.name.empty() && o.via)
    throw bad_argument(std::string("ember::gen_server::") + op + ": options give both a name and a via_name");
  if (o.via) return o.via;
  return o.name.empty() ? ember::via_name() : ember::via_name(std::make_shared<const local_name>(o.name));
}

/// The name start takes it under (bad_argument when empty).
inline ember::via_name checked_name(name n, const char* op) {
  if (n.value.empty()) throw bad_argument(std::string("ember::gen_server::") + op + ": the name is empty");
  return ember::via_name(std::make_shared<const local_name>(std::move(n.value)));
}
inline ember::via_name checked_name(ember::via_name n, const char* op) {
  if (!n) throw bad_argument(std::string("ember::gen_server::") + op + ": the via_name is empty");
  return n;
}

/// A start's configuration from its leading argument (none, a name, a
/// via_name, options).
inline start_config config_of(const char* op, const char* what) {
  start_config c;
  c.what = what;
  (void)op;
  return c;
}
inline start_config config_of(const char* op, const char* what, name n) {
  start_config c = config_of(op, what);
  c.name = checked_name(std::move(n), op);
  return c;
}
inline start_config config_of(const char* op, const char* what, ember::via_name n) {
  start_config c = config_of(op, what);
  c.name = checked_name(std::move(n), op);
  return c;
}
inline start_config config_of(const char* op, const char* what, const options& o) {
  start_config c = config_of(op, what);
  c.name = checked_name(o, op);
  c.spawn = o.spawn;
  c.timeout_ns = ember::detail::timeout_arg(o.timeout).ns(what, "options.timeout");
  return c;
}

template <class T>
inline constexpr bool is_start_head_v =
    std::is_same_v<std::remove_cvref_t<T>, name> || std::is_same_v<std::remove_cvref_t<T>, options> ||
    std::is_same_v<std::remove_cvref_t<T>, ember::via_name>;

}  // namespace detail

/// Start a server process running S(args...), then S::init() if defined.
/// Process context.  Waits until init is done.
template <class S, class... A>
start_result<S> start(A&&... args) {
  return detail::start_with<S, false>(detail::config_of("start", "gen_server::start"), std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start(name n, A&&... args) {
  return detail::start_with<S, false>(detail::config_of("start", "gen_server::start", std::move(n)),
                                      std::forward<A>(args)...);
}
/// start, registering the server under a via_name (ember::via(registry, key)).
template <class S, class... A>
start_result<S> start(ember::via_name n, A&&... args) {
  return detail::start_with<S, false>(detail::config_of("start", "gen_server::start", std::move(n)),
                                      std::forward<A>(args)...);
}
/// start with spawn options, a start timeout (and optionally a name).
template <class S, class... A>
start_result<S> start(options o, A&&... args) {
  return detail::start_with<S, false>(detail::config_of("start", "gen_server::start", o), std::forward<A>(args)...);
}
/// start, linked to the caller (the caller is the server's parent).
template <class S, class... A>
start_result<S> start_link(A&&... args) {
  return detail::start_with<S, true>(detail::config_of("start_link", "gen_server::start_link"),
                                     std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(name n, A&&... args) {
  return detail::start_with<S, true>(detail::config_of("start_link", "gen_server::start_link", std::move(n)),
                                     std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(options o, A&&... args) {
  return detail::start_with<S, true>(detail::config_of("start_link", "gen_server::start_link", o),
                                     std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(ember::via_name n, A&&... args) {
  return detail::start_with<S, true>(detail::config_of("start_link", "gen_server::start_link", std::move(n)),
                                     std::forward<A>(args)...);
}

/// start, monitoring the server from the step that spawns it (OTP's
/// start_monitor; spawn_monitor's rule): result.monitor() is the monitor,
/// whose `down` comes when the server exits.  A failed start leaves no
/// monitor and no `down`.
template <class S, class... A>
start_result<S> start_monitor(A&&... args) {
  auto c = detail::config_of("start_monitor", "gen_server::start_monitor");
  c.monitor = true;
  return detail::start_with<S, false>(std::move(c), std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_monitor(name n, A&&... args) {
  auto c = detail::config_of("start_monitor", "gen_server::start_monitor", std::move(n));
  c.monitor = true;
  return detail::start_with<S, false>(std::move(c), std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_monitor(ember::via_name n, A&&... args) {
  auto c = detail::config_of("start_monitor", "gen_server::start_monitor", std::move(n));
  c.monitor = true;
  return detail::start_with<S, false>(std::move(c), std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_monitor(options o, A&&... args) {
  auto c = detail::config_of("start_monitor", "gen_server::start_monitor", o);
  c.monitor = true;
  return detail::start_with<S, false>(std::move(c), std::forward<A>(args)...);
}

}  // namespace ember::gen_server
