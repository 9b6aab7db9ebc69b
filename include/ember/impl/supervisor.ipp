// ember/impl/supervisor.ipp — the supervisors' shared machinery (starting,
// stopping and restarting children, the restart window, reports) and the
// static supervisor's server (compiled once, in src/ember.cpp).
#pragma once

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/dynamic_supervisor.hpp"
#include "ember/supervisor.hpp"

namespace ember::supervisor {

std::string child_result::message() const {
  switch (error_) {
    case child_error::none: return {};
    case child_error::not_found: return "no such child";
    case child_error::running: return fmt::format("the child is running ({})", pid_);
    case child_error::already_present: return "a child with that id exists (not running)";
    case child_error::already_started:
      if (reason_.is_normal()) return fmt::format("a child with that id is running ({})", pid_);
      return fmt::format("the child's name is taken by {}", pid_);
    case child_error::start_failed: return "the child's start failed: " + reason_.to_string();
    case child_error::max_children: return "the supervisor has max_children children";
  }
  return {};
}

namespace detail {

namespace {
ember::detail::runtime_core& rt() { return *ember::detail::current_or_throw("supervisor")->rt; }

bool clean(const exit_reason& r) {
  return r.is_normal() || r.what() == exit_reason::kind::shutdown;
}

/// Reports must never change what a supervisor does.
template <class... A>
void report(spdlog::level::level_enum lvl, fmt::format_string<A...> f, A&&... a) noexcept {
  try {
    rt().logger().log(lvl, f, std::forward<A>(a)...);
  } catch (...) {
  }
}

const char* restart_name(restart_type t) {
  switch (t) {
    case restart_type::permanent: return "permanent";
    case restart_type::transient: return "transient";
    case restart_type::temporary: return "temporary";
  }
  return "?";
}
}  // namespace

child_result failed(const started& s) {
  // As OTP: {error, {already_started, Pid}} keeps the holder's pid.
  if (s.already_started()) return child_result(child_error::already_started, s.pid(), s.error_reason());
  return child_result(child_error::start_failed, {}, s.error_reason());
}

void validate(const flags& f) {
  if (f.intensity < 0)
    throw bad_argument(fmt::format("ember::supervisor: intensity must be >= 0 (got {})", f.intensity));
  if (f.period.count() <= 0)
    throw bad_argument(fmt::format("ember::supervisor: period must be > 0 (got {} ms)", f.period.count()));
}

void validate(const child_spec& c, bool need_id) {
  if (need_id && c.id.empty()) throw bad_argument("ember::supervisor: a child spec has an empty id");
  if (!c.start) throw bad_argument(fmt::format("ember::supervisor: child \"{}\" has no start function", c.id));
  if (c.backoff && (c.backoff->initial.count() <= 0 || c.backoff->max < c.backoff->initial))
    throw bad_argument(fmt::format("ember::supervisor: child \"{}\": the backoff needs 0 < initial <= max", c.id));
  if (c.backoff && c.backoff->max > ember::max_timer_delay)
    throw bad_argument(fmt::format("ember::supervisor: child \"{}\": the backoff's max ({} ms) is over max_timer_delay ({} ms)",
                                   c.id, c.backoff->max.count(), ember::max_timer_delay.count()));
}

bool restart_window::add(std::int64_t now) {
  times_.push_back(now);
  // As OTP: a restart exactly `period` ago still counts.
  // now - t > period, written so that neither side can overflow.
  std::erase_if(times_, [&](std::int64_t t) { return now - t > period_ns_; });
  return std::int64_t(times_.size()) > intensity_;
}

std::string sup_base::label() const {
  std::string s = fmt::format("{}", ember::self());
  if (!name.empty()) s += " (" + name + ")";
  return s;
}

started sup_base::start(child_state& c) {
  std::optional<started> s;
  try {
    s = c.spec.start();
  } catch (ember::detail::exit_exception& e) {
    // Killed (the one exit signal a supervisor cannot trap): it goes.
    if (ember::detail::current_or_throw("supervisor")->kill_pending.load(std::memory_order_acquire)) throw;
    // The start function called ember::exit(r): as OTP's catch around the
    // start function, that is the start's error, not the supervisor's end.
    s = started::error(std::move(e.reason));
  } catch (const std::exception& e) {
    s = started::error(exit_reason::error(e.what()));
  } catch (...) {
    s = started::error(exit_reason::error("unknown exception (not derived from std::exception)"));
  }
  ++c.gen;  // a pending restart of it is void now
  c.restarting = false;
  if (!s->ok()) {
    report(spdlog::level::err, "supervisor {}: child {} failed to start: {}", label(), c.spec.id,
           s->error_reason().to_string());
    return *s;
  }
  c.pid = s->pid();
  c.started_ns = rt().now_ns();
  if (s->ignored()) report(spdlog::level::debug, "supervisor {}: child {} ignored its start", label(), c.spec.id);
  else report(spdlog::level::debug, "supervisor {}: started child {} ({})", label(), c.spec.id, c.pid);
  return *s;
}

void sup_base::stop_children(const std::vector<child_state*>& cs) {
  struct pending {
    child_state* c;
    ember::pid pid;
    monitor_ref mon;
    std::int64_t deadline;  // -1: none (brutal_kill, infinity)
    bool killed = false;
    bool done = false;
    std::optional<exit_reason> early;  // an exit that came before the unlink
    exit_reason reason;
  };
  std::vector<pending> ps;
  std::unordered_map<std::uint64_t, std::size_t> by_mon, by_serial;
  for (child_state* c : cs) {
    if (c->pid.is_null()) continue;
    // Watch first, then unlink: from here on its exit comes as a `down`
    // only (an exit_message already queued is taken below).
    monitor_ref m = ember::monitor(c->pid);
    ember::unlink(c->pid);
    by_mon.emplace(m.id, ps.size());
    by_serial.emplace(c->pid.serial(), ps.size());
    ps.push_back(pending{c, c->pid, m, -1, false, false, std::nullopt, {}});
  }
  if (ps.empty()) return;
  while (ember::receive(
      ember::when([&](const exit_message& e) { return by_serial.count(e.from.serial()) != 0; },
                  [&](exit_message e) {
                    ps[by_serial[e.from.serial()]].early = std::move(e.reason);
                    return true;
                  }),
      ember::after(std::chrono::nanoseconds(0), [] { return false; }))) {
  }
  const std::int64_t now = rt().now_ns();
  std::vector<std::pair<std::int64_t, std::size_t>> deadlines;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    pending& p = ps[i];
    const shutdown_spec how = p.c->spec.shutdown_or_default();
    if (how.is_brutal_kill()) {
      ember::exit(p.pid, exit_reason::kill());
      p.killed = true;
    } else {
      ember::exit(p.pid, exit_reason::shutdown());
      if (!how.is_infinity()) {
        p.deadline = saturated_add(now, saturated_ns(how.time()));
        deadlines.emplace_back(p.deadline, i);
      }
    }
  }
  std::sort(deadlines.begin(), deadlines.end());
  std::size_t left = ps.size(), next_deadline = 0;
  while (left > 0) {
    while (next_deadline < deadlines.size() && ps[deadlines[next_deadline].second].done) ++next_deadline;
    const std::int64_t wait_ns =
        next_deadline < deadlines.size() ? std::max<std::int64_t>(0, deadlines[next_deadline].first - rt().now_ns()) : -1;
    auto take = [&](down d) {
      pending& p = ps[by_mon[d.ref.id]];
      p.done = true;
      p.reason = std::move(d.reason);
      --left;
    };
    auto is_ours = [&](const down& d) { return by_mon.count(d.ref.id) != 0; };
    if (wait_ns < 0) {
      ember::receive(ember::when(is_ours, take));
      continue;
    }
    ember::receive(ember::when(is_ours, take), ember::after(std::chrono::nanoseconds(wait_ns), [&] {
                     // Out of time: kill every child whose shutdown time has passed.
                     const std::int64_t t = rt().now_ns();
                     for (; next_deadline < deadlines.size() && deadlines[next_deadline].first <= t; ++next_deadline) {
                       pending& p = ps[deadlines[next_deadline].second];
                       if (p.done) continue;
                       ember::exit(p.pid, exit_reason::kill());
                       p.killed = true;
                     }
                   }));
  }
  for (pending& p : ps) {
    p.c->pid = {};
    if (p.reason.what() == exit_reason::kind::noproc && p.early) p.reason = *p.early;
    const shutdown_spec how = p.c->spec.shutdown_or_default();
    if (how.is_brutal_kill() ? p.reason.what() == exit_reason::kind::killed
                             : (p.reason.what() == exit_reason::kind::shutdown && p.reason.text().empty()) ||
                                   (p.early && clean(p.reason)))
      continue;
    if (p.killed && !how.is_brutal_kill())
      report(spdlog::level::err, "supervisor {}: child {} ({}) did not stop within {} ms; killed", label(),
             p.c->spec.id, p.pid, how.time().count());
    else
      report(spdlog::level::err, "supervisor {}: child {} ({}) stopped with reason {} instead of {}", label(),
             p.c->spec.id, p.pid, p.reason.to_string(), how.is_brutal_kill() ? "killed" : "shutdown");
  }
}

bool sup_base::exited(child_state& c, const exit_reason& r) {
  const ember::pid was = c.pid;
  c.pid = {};
  const restart_type t = c.spec.restart;
  const bool again = t == restart_type::permanent || (t == restart_type::transient && !clean(r));
  if (c.spec.backoff && rt().now_ns() - c.started_ns >= saturated_ns(c.spec.backoff->max))
    c.next_delay_ms = -1;  // it ran long enough: start over from `initial`
  if (t == restart_type::permanent || !clean(r)) {
    report(spdlog::level::err, "supervisor {}: child {} ({}, {}) exited with reason {}; action: {}", label(),
           c.spec.id, was, restart_name(t), r.to_string(),
           again ? "restart" : (t == restart_type::temporary ? "remove (temporary)" : "none"));
  }
  return again;
}

void sup_base::schedule(child_state& c) {
  c.restarting = true;
  ++c.gen;
  std::int64_t delay = 0;
  if (c.spec.backoff) {
    const restart_backoff& b = *c.spec.backoff;
    delay = c.next_delay_ms < 0 ? b.initial.count() : c.next_delay_ms;
    c.next_delay_ms = std::min<std::int64_t>(delay * 2, b.max.count());
  }
  const restart_tick t{c.key, c.gen};
  if (delay == 0) ember::send(ember::self(), t);
  else ember::send_after(ember::self(), std::chrono::milliseconds(delay), t);
}

bool sup_base::may_restart() {
  if (!window.add(rt().now_ns())) return true;
  report(spdlog::level::err, "supervisor {}: reached the restart intensity; shutting down", label());
  return false;
}

child_info sup_base::info_of(const child_state& c) {
  child_info i;
  i.id = c.spec.id;
  i.pid = c.pid;
  i.status = !c.pid.is_null() ? child_status::running : c.restarting ? child_status::restarting : child_status::stopped;
  i.type = c.spec.type;
  return i;
}

// ---- the static supervisor --------------------------------------------------

static_server::static_server(flags f, std::vector<child_spec> children, std::string name)
    : flags_(f), base_(std::move(name), f.intensity, f.period) {
  children_.reserve(children.size());
  for (child_spec& s : children) {
    child_state c;
    c.spec = std::move(s);
    c.key = next_key_++;
    children_.push_back(std::move(c));
  }
}

static_server::next static_server::init() {
  ember::process_flag(trap_exit, true);
  for (std::size_t i = 0; i < children_.size();) {
    started s = base_.start(children_[i]);
    if (!s.ok()) {
      stop_range(0, i);
      return stop_with(exit_reason::shutdown(failed_to_start_child{children_[i].spec.id, s.error_reason()}));
    }
    // As OTP: a temporary child that ignored its start is not kept.
    if (s.ignored() && children_[i].spec.restart == restart_type::temporary) children_.erase(children_.begin() + std::ptrdiff_t(i));
    else ++i;
  }
  return {};
}

std::size_t static_server::index_of(std::string_view id) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].spec.id == id) return i;
  return children_.size();
}
std::size_t static_server::index_of_key(std::uint64_t key) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].key == key) return i;
  return children_.size();
}
std::size_t static_server::index_of_pid(const ember::pid& p) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].pid == p) return i;
  return children_.size();
}

void static_server::stop_range(std::size_t from, std::size_t to) {
  for (std::size_t i = to; i-- > from;) base_.stop_child(children_[i]);
}

void static_server::drop_stopped_temporaries() {
  std::erase_if(children_, [](const child_state& c) {
    return c.spec.restart == restart_type::temporary && c.pid.is_null() && !c.restarting;
  });
}

void static_server::start_from(std::size_t i) {
  for (; i < children_.size(); ++i) {
    child_state& c = children_[i];
    if (!c.pid.is_null()) continue;
    if (!base_.start(c).ok()) {
      base_.schedule(c);
      return;
    }
  }
}

void static_server::restart(std::size_t i) {
  const std::uint64_t key = children_[i].key;
  switch (flags_.strategy) {
    case restart_strategy::one_for_one:
      if (!base_.start(children_[i]).ok()) base_.schedule(children_[i]);
      return;
    case restart_strategy::rest_for_one:
      stop_range(i + 1, children_.size());
      drop_stopped_temporaries();
      return start_from(index_of_key(key));
    case restart_strategy::one_for_all:
      stop_range(0, children_.size());
      drop_stopped_temporaries();
      return start_from(0);
  }
}

std::vector<child_info> static_server::handle_call(const which_req&) {
  std::vector<child_info> out;
  out.reserve(children_.size());
  for (const child_state& c : children_) out.push_back(sup_base::info_of(c));
  return out;
}

child_counts static_server::handle_call(const count_req&) {
  child_counts n;
  n.specs = children_.size();
  for (const child_state& c : children_) {
    if (!c.pid.is_null()) ++n.active;
    ++(c.spec.type == child_type::supervisor ? n.supervisors : n.workers);
  }
  return n;
}

child_result static_server::handle_call(start_req r) {
  if (std::size_t i = index_of(r.spec.id); i < children_.size()) {
    const child_state& c = children_[i];
    return c.pid.is_null() ? child_result(child_error::already_present, {})
                           : child_result(child_error::already_started, c.pid);
  }
  child_state c;
  c.spec = std::move(r.spec);
  c.key = next_key_++;
  started s = base_.start(c);
  if (!s.ok()) return failed(s);
  // As OTP: a temporary child that ignored its start is not kept.
  if (!(s.ignored() && c.spec.restart == restart_type::temporary)) children_.push_back(std::move(c));
  return child_result(child_error::none, s.pid());
}

child_result static_server::handle_call(const terminate_req& r) {
  const std::size_t i = index_of(r.id);
  if (i == children_.size()) return child_result(child_error::not_found, {});
  child_state& c = children_[i];
  base_.stop_child(c);
  c.restarting = false;
  ++c.gen;
  if (c.spec.restart == restart_type::temporary) children_.erase(children_.begin() + std::ptrdiff_t(i));
  return {};
}

child_result static_server::handle_call(const restart_req& r) {
  const std::size_t i = index_of(r.id);
  if (i == children_.size()) return child_result(child_error::not_found, {});
  child_state& c = children_[i];
  if (!c.pid.is_null()) return child_result(child_error::running, c.pid);
  started s = base_.start(c);
  if (!s.ok()) return failed(s);
  return child_result(child_error::none, s.pid());
}

child_result static_server::handle_call(const delete_req& r) {
  const std::size_t i = index_of(r.id);
  if (i == children_.size()) return child_result(child_error::not_found, {});
  if (!children_[i].pid.is_null()) return child_result(child_error::running, children_[i].pid);
  children_.erase(children_.begin() + std::ptrdiff_t(i));
  return {};
}

static_server::next static_server::handle_info(const exit_message& m) {
  const std::size_t i = index_of_pid(m.from);
  if (i == children_.size()) return {};  // not a child (OTP ignores it too)
  child_state& c = children_[i];
  if (!base_.exited(c, m.reason)) {
    if (c.spec.restart == restart_type::temporary) children_.erase(children_.begin() + std::ptrdiff_t(i));
    return {};
  }
  if (c.spec.backoff) {
    base_.schedule(c);
    return {};
  }
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(i);
  return {};
}

static_server::next static_server::handle_info(const restart_tick& t) {
  const std::size_t i = index_of_key(t.key);
  if (i == children_.size() || !children_[i].restarting || children_[i].gen != t.gen) return {};
  children_[i].restarting = false;
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(i);
  return {};
}

void static_server::terminate(const exit_reason&) { stop_range(0, children_.size()); }

namespace {
void validate_children(const std::vector<child_spec>& children) {
  for (std::size_t i = 0; i < children.size(); ++i) {
    validate(children[i], true);
    for (std::size_t j = 0; j < i; ++j)
      if (children[j].id == children[i].id)
        throw bad_argument(fmt::format("ember::supervisor: two children have the id \"{}\"", children[i].id));
  }
}
}  // namespace

}  // namespace detail

namespace detail {
/// Start supervisor server S (linked or not; named when n is not empty)
/// after checking its flags.
template <class S, bool Link, class... A>
gen_server::start_result<S> start_server(ember::via_name n, const flags& f, A&&... args) {
  validate(f);
  std::string label = n ? n.to_string() : std::string();
  return gen_server::detail::start_impl<S, Link>(std::move(n), spawn_options{}, std::forward<A>(args)..., std::move(label));
}
ember::via_name named(gen_server::name n, const char* op) { return gen_server::detail::checked_name(std::move(n), op); }
}  // namespace detail

start_result start_link(flags f, std::vector<child_spec> children) {
  return start_link(ember::via_name{}, f, std::move(children));
}
start_result start_link(gen_server::name n, flags f, std::vector<child_spec> children) {
  return start_link(detail::named(std::move(n), "start_link"), f, std::move(children));
}
start_result start_link(ember::via_name n, flags f, std::vector<child_spec> children) {
  detail::validate_children(children);
  return detail::start_server<detail::static_server, true>(std::move(n), f, f, std::move(children));
}
start_result start(flags f, std::vector<child_spec> children) { return start(ember::via_name{}, f, std::move(children)); }
start_result start(gen_server::name n, flags f, std::vector<child_spec> children) {
  return start(detail::named(std::move(n), "start"), f, std::move(children));
}
start_result start(ember::via_name n, flags f, std::vector<child_spec> children) {
  detail::validate_children(children);
  return detail::start_server<detail::static_server, false>(std::move(n), f, f, std::move(children));
}

std::vector<child_info> which_children(const ref& sup) {
  return gen_server::call(sup, detail::static_server::which_req{}, gen_server::infinity);
}
child_counts count_children(const ref& sup) {
  return gen_server::call(sup, detail::static_server::count_req{}, gen_server::infinity);
}
child_result start_child(const ref& sup, child_spec spec) {
  detail::validate(spec, true);
  return gen_server::call(sup, detail::static_server::start_req{std::move(spec)}, gen_server::infinity);
}
child_result terminate_child(const ref& sup, std::string_view id) {
  return gen_server::call(sup, detail::static_server::terminate_req{std::string(id)}, gen_server::infinity);
}
child_result restart_child(const ref& sup, std::string_view id) {
  return gen_server::call(sup, detail::static_server::restart_req{std::string(id)}, gen_server::infinity);
}
child_result delete_child(const ref& sup, std::string_view id) {
  return gen_server::call(sup, detail::static_server::delete_req{std::string(id)}, gen_server::infinity);
}

child_spec supervisor_child(std::string id, flags f, std::vector<child_spec> children) {
  child_spec c;
  c.id = std::move(id);
  c.type = child_type::supervisor;
  c.shutdown = shutdown_spec::infinity();
  auto saved = std::make_shared<const std::pair<flags, std::vector<child_spec>>>(f, std::move(children));
  c.start = [saved]() -> started { return started(start_link(saved->first, saved->second)); };
  return c;
}

}  // namespace ember::supervisor

// ---- the dynamic supervisor -------------------------------------------------

namespace ember::dynamic_supervisor {

namespace detail {

server::server(flags f, std::string name) : flags_(f), base_(std::move(name), f.intensity, f.period) {}

server::next server::init() {
  ember::process_flag(trap_exit, true);
  return {};
}

child_result server::handle_call(start_req r) {
  if (children_.size() >= flags_.max_children) return child_result(child_error::max_children, {});
  child_state c;
  c.spec = std::move(r.spec);
  c.key = next_key_++;
  started s = base_.start(c);
  if (!s.ok()) return supervisor::detail::failed(s);
  if (s.ignored()) return {};
  running_.emplace(c.pid.serial(), c.key);
  children_.emplace(c.key, std::move(c));
  return child_result(child_error::none, s.pid());
}

child_result server::handle_call(const terminate_req& r) {
  auto it = running_.find(r.child.serial());
  if (r.child.is_null() || it == running_.end()) return child_result(child_error::not_found, {});
  const std::uint64_t key = it->second;
  running_.erase(it);
  base_.stop_child(children_.at(key));
  children_.erase(key);
  return {};
}

std::vector<child_info> server::handle_call(const which_req&) {
  std::vector<child_info> out;
  out.reserve(children_.size());
  for (const auto& [key, c] : children_) out.push_back(supervisor::detail::sup_base::info_of(c));
  return out;
}

child_counts server::handle_call(const count_req&) {
  child_counts n;
  n.specs = children_.size();
  n.active = running_.size();
  for (const auto& [key, c] : children_) ++(c.spec.type == supervisor::child_type::supervisor ? n.supervisors : n.workers);
  return n;
}

server::next server::handle_info(const exit_message& m) {
  auto it = running_.find(m.from.serial());
  if (it == running_.end()) return {};  // not a child
  const std::uint64_t key = it->second;
  running_.erase(it);
  child_state& c = children_.at(key);
  if (!base_.exited(c, m.reason)) {
    children_.erase(key);
    return {};
  }
  if (c.spec.backoff) {
    base_.schedule(c);
    return {};
  }
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(key);
  return {};
}

server::next server::handle_info(const restart_tick& t) {
  auto it = children_.find(t.key);
  if (it == children_.end() || !it->second.restarting || it->second.gen != t.gen) return {};
  it->second.restarting = false;
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(t.key);
  return {};
}

void server::restart(std::uint64_t key) {
  child_state& c = children_.at(key);
  started s = base_.start(c);
  if (!s.ok()) base_.schedule(c);
  else if (s.ignored()) children_.erase(key);
  else running_.emplace(c.pid.serial(), key);
}

void server::terminate(const exit_reason&) {
  std::vector<child_state*> all;
  all.reserve(running_.size());
  for (auto& [key, c] : children_)
    if (!c.pid.is_null()) all.push_back(&c);
  base_.stop_children(all);
  running_.clear();
}

}  // namespace detail

namespace {
supervisor::flags as_flags(const flags& f) { return {supervisor::one_for_one, f.intensity, f.period}; }
}  // namespace

start_result start_link(flags f) { return start_link(ember::via_name{}, f); }
start_result start_link(gen_server::name n, flags f) {
  return start_link(supervisor::detail::named(std::move(n), "start_link"), f);
}
start_result start_link(ember::via_name n, flags f) {
  return supervisor::detail::start_server<detail::server, true>(std::move(n), as_flags(f), f);
}
start_result start(flags f) { return start(ember::via_name{}, f); }
start_result start(gen_server::name n, flags f) { return start(supervisor::detail::named(std::move(n), "start"), f); }
start_result start(ember::via_name n, flags f) {
  return supervisor::detail::start_server<detail::server, false>(std::move(n), as_flags(f), f);
}

child_result start_child(const ref& sup, child_spec spec) {
  supervisor::detail::validate(spec, false);
  return gen_server::call(sup, detail::server::start_req{std::move(spec)}, gen_server::infinity);
}
child_result terminate_child(const ref& sup, ember::pid p) {
  return gen_server::call(sup, detail::server::terminate_req{p}, gen_server::infinity);
}
std::vector<child_info> which_children(const ref& sup) {
  return gen_server::call(sup, detail::server::which_req{}, gen_server::infinity);
}
child_counts count_children(const ref& sup) {
  return gen_server::call(sup, detail::server::count_req{}, gen_server::infinity);
}

}  // namespace ember::dynamic_supervisor
