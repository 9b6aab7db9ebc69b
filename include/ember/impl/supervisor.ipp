// ember/impl/supervisor.ipp — the supervisors' shared machinery (the child
// table, starting, stopping and restarting children, the restart window,
// reports) and the static supervisor's server (compiled once, in
// src/ember.cpp).  The dynamic supervisor's server is in
// dynamic_supervisor.ipp.
//
// Stopping children (sup_base::stop_children), in order:
//  1. monitor each child, then unlink it: from here on its exit comes as a
//     `down` only;
//  2. sweep the mailbox into the lanes: an exit_message a child sent before
//     the unlink is found there (its reason, for the report);
//  3. send each `shutdown` (or kill, for brutal_kill) and note deadlines;
//  4. until every child's `down` is in: sweep new messages (each `down` of
//     ours is taken, anything else goes to the lanes for later), wait for
//     the next message or deadline, kill those whose time has passed;
//  5. report those that did not stop with `shutdown`.
#pragma once

#include <algorithm>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/supervisor_core.hpp"
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
    case child_error::restarting: return "the child is waiting to be restarted";
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
  if (unsigned(f.strategy) > unsigned(restart_strategy::rest_for_one))
    throw spec_error(spec_field::strategy, "", fmt::format("ember::supervisor: strategy {} is not a restart_strategy",
                                                           unsigned(f.strategy)));
  if (f.intensity < 0)
    throw spec_error(spec_field::intensity, "",
                     fmt::format("ember::supervisor: intensity must be >= 0 (got {})", f.intensity));
  if (f.period.count() <= 0)
    throw spec_error(spec_field::period, "",
                     fmt::format("ember::supervisor: period must be > 0 (got {} ms)", f.period.count()));
  if (unsigned(f.auto_shutdown) > unsigned(auto_shutdown::all_significant))
    throw spec_error(spec_field::auto_shutdown, "",
                     fmt::format("ember::supervisor: auto_shutdown {} is not an auto_shutdown", unsigned(f.auto_shutdown)));
}

std::optional<spec_error> check(const child_spec& c, bool need_id, auto_shutdown a) {
  auto bad = [&c](spec_field f, std::string text) { return spec_error(f, c.id, "ember::supervisor: " + text); };
  if (need_id && c.id.empty()) return bad(spec_field::id, "a child spec has an empty id");
  if (!c.start) return bad(spec_field::start, fmt::format("child \"{}\" has no start function", c.id));
  if (unsigned(c.restart) > unsigned(restart_type::temporary))
    return bad(spec_field::restart, fmt::format("child \"{}\": restart {} is not a restart_type", c.id, unsigned(c.restart)));
  if (unsigned(c.type) > unsigned(child_type::supervisor))
    return bad(spec_field::type, fmt::format("child \"{}\": type {} is not a child_type", c.id, unsigned(c.type)));
  if (c.backoff && (c.backoff->initial.count() <= 0 || c.backoff->max < c.backoff->initial))
    return bad(spec_field::backoff, fmt::format("child \"{}\": the backoff needs 0 < initial <= max", c.id));
  if (c.backoff && c.backoff->max > ember::max_timer_delay)
    return bad(spec_field::backoff, fmt::format("child \"{}\": the backoff's max ({} ms) is over max_timer_delay ({} ms)",
                                                c.id, c.backoff->max.count(), ember::max_timer_delay.count()));
  if (c.significant && c.restart == restart_type::permanent)
    return bad(spec_field::significant,
               fmt::format("child \"{}\": a significant child must be transient or temporary", c.id));
  if (c.significant && a == auto_shutdown::never)
    return bad(spec_field::significant,
               fmt::format("child \"{}\": significant children need auto_shutdown any_significant or "
                           "all_significant (this supervisor's is never)",
                           c.id));
  return std::nullopt;
}

void validate(const child_spec& c, bool need_id, auto_shutdown a) {
  if (auto e = check(c, need_id, a)) throw *e;
}

std::optional<spec_error> check_all(const std::vector<child_spec>& children, auto_shutdown a) {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (const child_spec& c : children) {
    if (auto e = check(c, true, a)) return e;
    if (!seen.emplace(c.id, 0).second)
      return spec_error(spec_field::id, c.id, fmt::format("ember::supervisor: two children have the id \"{}\"", c.id));
  }
  return std::nullopt;
}

// ---- the child table --------------------------------------------------------

child_table::iterator child_table::add(child_spec spec, std::uint64_t key) {
  child_state c;
  c.spec = std::move(spec);
  c.key = key;
  items_.push_back(std::move(c));
  auto it = std::prev(items_.end());
  by_key_.emplace(key, it);
  if (ids_) by_id_.emplace(it->spec.id, it);
  return it;
}

void child_table::erase(iterator it) {
  index_pid(*it, {});
  by_key_.erase(it->key);
  if (ids_) by_id_.erase(it->spec.id);
  items_.erase(it);
}

child_table::iterator child_table::find(std::string_view id) {
  auto f = by_id_.find(id);
  return f == by_id_.end() ? items_.end() : f->second;
}

child_table::iterator child_table::find_key(std::uint64_t key) {
  auto f = by_key_.find(key);
  return f == by_key_.end() ? items_.end() : f->second;
}

child_table::iterator child_table::find_pid(const ember::pid& p) {
  if (p.is_null()) return items_.end();
  auto f = by_pid_.find(p.serial());
  return f == by_pid_.end() || f->second->indexed != p ? items_.end() : f->second;
}

void child_table::index_pid(child_state& c, const ember::pid& p) {
  if (!c.indexed.is_null()) by_pid_.erase(c.indexed.serial());
  c.indexed = p;
  if (p.is_null()) return;
  auto it = find_key(c.key);
  by_pid_[p.serial()] = it;
}

// ---- shared machinery -------------------------------------------------------

bool restart_window::add(std::int64_t now) {
  times_.push_back(now);
  // As OTP: a restart exactly `period` ago still counts.  now - t > period,
  // written so that neither side can overflow.
  std::erase_if(times_, [&](std::int64_t t) { return now - t > period_ns_; });
  return std::int64_t(times_.size()) > intensity_;
}

std::string sup_base::label() const {
  std::string s = fmt::format("{}", ember::self());
  if (!name.empty()) s += " (" + name + ")";
  return s;
}

ember::detail::envelope* sup_base::take_message(ember::detail::process* self) {
  lanes.sweep(self);
  return lanes.take(self);
}

std::string sup_base::refuse_pid(const child_state& c, const ember::pid& p) {
  ember::detail::process* self = ember::detail::current_or_throw("supervisor");
  if (p == self->self_pid()) return "the start function returned the supervisor's own pid";
  if (auto other = children.find_pid(p); other != children.end() && &*other != &c)
    return fmt::format("the start function returned {}, which is child {}", p, other->spec.id);
  bool linked = false;
  {
    std::lock_guard<ember::detail::spin_lock> lk(self->hooks_lock);
    linked = self->sig && self->sig->links.contains(p.serial());
  }
  if (linked) return {};
  // Linked and already gone: its exit signal is in the mailbox (it was
  // queued when the link was taken down, under the same lock).
  lanes.sweep(self);
  if (lanes.exit_from(p.serial())) return {};
  return fmt::format("the start function returned {}, a process not linked to the supervisor (its exit would go "
                     "unnoticed)",
                     p);
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
  } catch (...) {
    s = started::error(ember::detail::reason_of_current_exception());
  }
  ++c.gen;  // a pending restart of it is void now
  c.restarting = false;
  if (s->ok() && !s->ignored()) {
    if (std::string why = refuse_pid(c, s->pid()); !why.empty()) s = started::error(exit_reason::error(std::move(why)));
  }
  if (!s->ok()) {
    report(spdlog::level::err, "supervisor {}: child {} failed to start: {}", label(), c.spec.id,
           s->error_reason().to_string());
    return *s;
  }
  c.pid = s->pid();
  children.index_pid(c, c.pid);
  c.started_ns = rt().now_ns();
  if (s->ignored()) report(spdlog::level::debug, "supervisor {}: child {} ignored its start", label(), c.spec.id);
  else report(spdlog::level::debug, "supervisor {}: started child {} ({})", label(), c.spec.id, c.pid);
  return *s;
}

void sup_base::stop_children(const std::vector<child_state*>& cs) {
  ember::detail::process* self = ember::detail::current_or_throw("supervisor");
  struct pending {
    child_state* c;
    ember::pid pid;
    std::int64_t deadline;  // -1: none (brutal_kill, infinity)
    bool killed = false;
    bool done = false;
    std::optional<exit_reason> early;  // an exit that came before the unlink
    exit_reason reason;
  };
  std::vector<pending> ps;
  ps.reserve(cs.size());
  std::unordered_map<std::uint64_t, std::size_t> by_mon;  // monitor id -> index in ps
  for (child_state* c : cs) {
    if (c->pid.is_null()) continue;
    // 1. Watch first, then unlink: from here on its exit comes as a `down`.
    monitor_ref m = ember::monitor(c->pid);
    ember::unlink(c->pid);
    by_mon.emplace(m.id, ps.size());
    ps.push_back(pending{c, c->pid, -1, false, false, std::nullopt, {}});
  }
  if (ps.empty()) return;
  std::size_t left = ps.size(), next_deadline = 0;
  // A child's `down` (from step 1's monitor) is taken wherever it is met.
  auto ours = [&](ember::detail::envelope* e) {
    if (e->tag != ember::detail::type_tag<down>()) return false;
    down& d = ember::detail::payload<down>(e);
    auto it = by_mon.find(d.ref.id);
    if (it == by_mon.end()) return false;
    pending& p = ps[it->second];
    p.done = true;
    p.reason = std::move(d.reason);
    --left;
    return true;
  };
  // 2. An exit that came before the unlink is in the lanes now; so is the
  // `down` of a child that has ended since step 1 (taken here: a later
  // sweep looks only at what arrives after this one).
  lanes.sweep(self, ours);
  const std::int64_t now = rt().now_ns();
  std::vector<std::pair<std::int64_t, std::size_t>> deadlines;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    pending& p = ps[i];
    if (const exit_message* e = lanes.exit_from(p.pid.serial())) p.early = e->reason;
    if (p.done) continue;  // already gone
    // 3. Ask it to stop.
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
  // 4. Wait for every `down`.
  ember::detail::receive_timer timer;
  std::int64_t armed_for = -1;
  for (;;) {
    lanes.sweep(self, ours);
    if (left == 0) break;
    while (next_deadline < deadlines.size() && ps[deadlines[next_deadline].second].done) ++next_deadline;
    std::int64_t deadline = next_deadline < deadlines.size() ? deadlines[next_deadline].first : -1;
    if (deadline >= 0 && rt().now_ns() >= deadline) {
      // Out of time: kill every child whose shutdown time has passed.
      const std::int64_t t = rt().now_ns();
      for (; next_deadline < deadlines.size() && deadlines[next_deadline].first <= t; ++next_deadline) {
        pending& p = ps[deadlines[next_deadline].second];
        if (p.done) continue;
        ember::exit(p.pid, exit_reason::kill());
        p.killed = true;
      }
      continue;
    }
    // A new deadline needs a new timer (the old one is for another time).
    if (timer.ref.node && armed_for != deadline) {
      ember::detail::disarm(timer.ref);
      timer.ref = {};
    }
    armed_for = deadline;
    ember::detail::wait_for_message(self, deadline, timer.ref);
  }
  // 5. Reports.
  for (pending& p : ps) {
    p.c->pid = {};
    children.index_pid(*p.c, {});
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

void sup_base::report_auto_shutdown(const std::string& id) {
  report(spdlog::level::info, "supervisor {}: significant child {} exited; auto_shutdown: shutting down", label(), id);
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

static_server::static_server(init_fn init, std::string name)
    : base_(std::move(name), flags{}.intensity, flags{}.period, true), init_(std::move(init)) {}

static_server::next static_server::init() {
  ember::process_flag(trap_exit, true);
  // OTP's Module:init/1.  What it throws, and a bad flag or spec, fails the
  // start with the error's text (gen_server's start turns it into error()).
  init_result r = init_();
  init_ = nullptr;
  if (r.ignored()) return ignore();
  validate(r.flags());
  if (auto e = check_all(r.children(), r.flags().auto_shutdown)) throw *e;
  flags_ = r.flags();
  base_.window = restart_window(flags_.intensity, flags_.period);
  for (child_spec& spec : r.children()) {
    iterator it = base_.children.add(std::move(spec), next_key_++);
    started s = base_.start(*it);
    if (!s.ok()) {
      std::string id = it->spec.id;
      base_.children.erase(it);
      stop_from(base_.children.begin());
      return stop_with(exit_reason::shutdown(failed_to_start_child{std::move(id), s.error_reason()}));
    }
    // As OTP: a temporary child that ignored its start is not kept.
    if (s.ignored() && it->spec.restart == restart_type::temporary) base_.children.erase(it);
  }
  return {};
}

bool static_server::auto_shutdown_due(const child_state& gone) const {
  if (!gone.spec.significant) return false;
  switch (flags_.auto_shutdown) {
    case auto_shutdown::never: return false;
    case auto_shutdown::any_significant: return true;
    case auto_shutdown::all_significant: break;
  }
  for (const child_state& c : base_.children.items())
    // One waiting to be restarted counts as running, as in OTP (its pid
    // there is {restarting, Pid}, not undefined).
    if (&c != &gone && c.spec.significant && (!c.pid.is_null() || c.restarting)) return false;
  return true;
}

void static_server::stop_from(iterator from) {
  // In reverse order, one at a time (a static supervisor's order matters).
  std::vector<iterator> stopped;
  for (auto it = base_.children.end(); it != from;) {
    --it;
    if (it->pid.is_null()) continue;
    base_.stop_child(*it);
    stopped.push_back(it);
  }
  for (iterator it : stopped)
    if (it->spec.restart == restart_type::temporary && !it->restarting) base_.children.erase(it);
}

void static_server::settle_stopped(iterator it) {
  if (it->spec.restart == restart_type::temporary) base_.children.erase(it);
  else base_.children.index_pid(*it, {});
}

void static_server::start_from(iterator it) {
  for (; it != base_.children.end(); ++it) {
    if (!it->pid.is_null()) continue;
    if (!base_.start(*it).ok()) {
      base_.schedule(*it);
      return;
    }
  }
}

void static_server::restart(iterator it) {
  switch (flags_.strategy) {
    case restart_strategy::one_for_one:
      if (!base_.start(*it).ok()) base_.schedule(*it);
      return;
    case restart_strategy::rest_for_one:
      stop_from(std::next(it));
      return start_from(it);
    case restart_strategy::one_for_all:
      stop_from(base_.children.begin());
      return start_from(base_.children.begin());
  }
}

std::vector<child_info> static_server::handle_call(const which_req&) {
  std::vector<child_info> out;
  out.reserve(base_.children.size());
  for (const child_state& c : base_.children.items()) out.push_back(sup_base::info_of(c));
  return out;
}

child_counts static_server::handle_call(const count_req&) {
  child_counts n;
  n.specs = base_.children.size();
  for (const child_state& c : base_.children.items()) {
    if (!c.pid.is_null()) ++n.active;
    ++(c.spec.type == child_type::supervisor ? n.supervisors : n.workers);
  }
  return n;
}

std::optional<child_info> static_server::handle_call(const which_child_req& r) {
  const iterator it = base_.children.find(r.id);
  if (it == base_.children.end()) return std::nullopt;
  return sup_base::info_of(*it);
}

std::optional<child_spec> static_server::handle_call(const spec_req& r) {
  const iterator it = base_.children.find(r.id);
  if (it == base_.children.end()) return std::nullopt;
  return it->spec;
}

child_result static_server::handle_call(start_req r) {
  // What only the supervisor can check (its auto_shutdown): start_child
  // turns this answer back into a spec_error.
  if (auto e = check(r.spec, true, flags_.auto_shutdown))
    return child_result(child_error::start_failed, {}, exit_reason::error(spec_problem{e->field(), e->child_id(), e->what()}));
  if (iterator it = base_.children.find(r.spec.id); it != base_.children.end()) {
    return it->pid.is_null() ? child_result(child_error::already_present, {})
                             : child_result(child_error::already_started, it->pid);
  }
  iterator it = base_.children.add(std::move(r.spec), next_key_++);
  started s = base_.start(*it);
  // As OTP: a failed start adds nothing, nor does a temporary child that
  // ignored its start.
  if (!s.ok() || (s.ignored() && it->spec.restart == restart_type::temporary)) base_.children.erase(it);
  if (!s.ok()) return failed(s);
  return child_result(child_error::none, s.pid());
}

child_result static_server::handle_call(const terminate_req& r) {
  const iterator it = base_.children.find(r.id);
  if (it == base_.children.end()) return child_result(child_error::not_found, {});
  base_.stop_child(*it);
  // A pending restart is cancelled: the child is stopped.
  it->restarting = false;
  ++it->gen;
  settle_stopped(it);
  return {};
}

child_result static_server::handle_call(const restart_req& r) {
  const iterator it = base_.children.find(r.id);
  if (it == base_.children.end()) return child_result(child_error::not_found, {});
  if (!it->pid.is_null()) return child_result(child_error::running, it->pid);
  if (it->restarting) return child_result(child_error::restarting, {});
  started s = base_.start(*it);
  if (!s.ok()) return failed(s);
  return child_result(child_error::none, s.pid());
}

child_result static_server::handle_call(const delete_req& r) {
  const iterator it = base_.children.find(r.id);
  if (it == base_.children.end()) return child_result(child_error::not_found, {});
  if (!it->pid.is_null()) return child_result(child_error::running, it->pid);
  if (it->restarting) return child_result(child_error::restarting, {});
  base_.children.erase(it);
  return {};
}

static_server::next static_server::handle_info(const exit_message& m) {
  const iterator it = base_.children.find_pid(m.from);
  if (it == base_.children.end() || it->pid != m.from) return {};  // not a running child (OTP ignores it too)
  child_state& c = *it;
  if (!base_.exited(c, m.reason)) {
    // Not restarted.  A significant child's own exit may end the
    // supervisor (auto_shutdown); one the supervisor caused does not come
    // this way.
    const bool shut_down = auto_shutdown_due(c);
    const std::string id = c.spec.id;
    settle_stopped(it);
    if (shut_down) {
      base_.report_auto_shutdown(id);
      return stop_with(exit_reason::shutdown());
    }
    return {};
  }
  if (c.spec.backoff) {
    base_.schedule(c);
    return {};
  }
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(it);
  return {};
}

static_server::next static_server::handle_info(const restart_tick& t) {
  const iterator it = base_.children.find_key(t.key);
  if (it == base_.children.end() || !it->restarting || it->gen != t.gen) return {};
  it->restarting = false;
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(it);
  return {};
}

void static_server::terminate(const exit_reason&) { stop_from(base_.children.begin()); }

/// Start supervisor server S (linked or not; named when n is not empty).
template <class S, bool Link, class... A>
gen_server::start_result<S> start_server(ember::via_name n, A&&... args) {
  std::string label = n ? n.to_string() : std::string();
  return gen_server::detail::start_impl<S, Link>(std::move(n), spawn_options{}, std::forward<A>(args)..., std::move(label));
}
/// The init callback of a supervisor given its flags and children (checked
/// here, in the caller, so that a bad one throws before anything starts).
init_fn fixed_init(const flags& f, std::vector<child_spec> children) {
  validate(f);
  if (auto e = check_all(children, f.auto_shutdown)) throw *e;
  auto saved = std::make_shared<std::vector<child_spec>>(std::move(children));
  return [f, saved] { return init_result(f, std::move(*saved)); };
}
init_fn checked_init(init_fn init) {
  if (!init) throw spec_error(spec_field::start, "", "ember::supervisor: the init callback is empty");
  return init;
}
ember::via_name named(gen_server::name n, const char* op) { return gen_server::detail::checked_name(std::move(n), op); }

}  // namespace detail

start_result start_link(flags f, std::vector<child_spec> children) {
  return start_link(ember::via_name{}, std::move(f), std::move(children));
}
start_result start_link(gen_server::name n, flags f, std::vector<child_spec> children) {
  return start_link(detail::named(std::move(n), "start_link"), f, std::move(children));
}
start_result start_link(ember::via_name n, flags f, std::vector<child_spec> children) {
  return detail::start_server<detail::static_server, true>(std::move(n), detail::fixed_init(f, std::move(children)));
}
start_result start(flags f, std::vector<child_spec> children) { return start(ember::via_name{}, f, std::move(children)); }
start_result start(gen_server::name n, flags f, std::vector<child_spec> children) {
  return start(detail::named(std::move(n), "start"), f, std::move(children));
}
start_result start(ember::via_name n, flags f, std::vector<child_spec> children) {
  return detail::start_server<detail::static_server, false>(std::move(n), detail::fixed_init(f, std::move(children)));
}
start_result detail::start_with(ember::via_name n, init_fn init, bool link) {
  init = checked_init(std::move(init));
  if (link) return start_server<static_server, true>(std::move(n), std::move(init));
  return start_server<static_server, false>(std::move(n), std::move(init));
}

std::optional<spec_error> check_childspecs(const std::vector<child_spec>& specs, auto_shutdown a) {
  return detail::check_all(specs, a);
}

const char* to_string(spec_field f) noexcept {
  switch (f) {
    case spec_field::id: return "id";
    case spec_field::start: return "start";
    case spec_field::restart: return "restart";
    case spec_field::shutdown: return "shutdown";
    case spec_field::type: return "type";
    case spec_field::backoff: return "backoff";
    case spec_field::significant: return "significant";
    case spec_field::strategy: return "strategy";
    case spec_field::intensity: return "intensity";
    case spec_field::period: return "period";
    case spec_field::auto_shutdown: return "auto_shutdown";
  }
  return "?";
}

std::vector<child_info> which_children(const ref& sup) {
  return gen_server::call(sup, detail::static_server::which_req{}, gen_server::infinity);
}
child_counts count_children(const ref& sup) {
  return gen_server::call(sup, detail::static_server::count_req{}, gen_server::infinity);
}
std::optional<child_info> which_child(const ref& sup, std::string_view id) {
  return gen_server::call(sup, detail::static_server::which_child_req{std::string(id)}, gen_server::infinity);
}
std::optional<child_spec> get_childspec(const ref& sup, std::string_view id) {
  return gen_server::call(sup, detail::static_server::spec_req{std::string(id)}, gen_server::infinity);
}
child_result start_child(const ref& sup, child_spec spec) {
  // What does not depend on the supervisor is checked here; its
  // auto_shutdown, there.
  detail::validate(spec, true, auto_shutdown::any_significant);
  child_result r = gen_server::call(sup, detail::static_server::start_req{std::move(spec)}, gen_server::infinity);
  if (const auto* p = r.reason().value<detail::spec_problem>()) throw spec_error(p->field, p->id, p->text);
  return r;
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

child_spec supervisor_child(std::string id, init_fn init) {
  child_spec c;
  c.id = std::move(id);
  c.type = child_type::supervisor;
  c.shutdown = shutdown_spec::infinity();
  init_fn checked = detail::checked_init(std::move(init));
  c.start = [checked]() -> started { return started(detail::start_with(ember::via_name{}, checked, true)); };
  return c;
}

}  // namespace ember::supervisor
