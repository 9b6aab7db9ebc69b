// ember/impl/dynamic_supervisor.ipp — the dynamic supervisor's server
// (compiled once, in src/ember.cpp); the machinery it shares with the
// static supervisor is in supervisor.ipp.
#pragma once

#include "ember/detail/supervisor_core.hpp"
#include "ember/dynamic_supervisor.hpp"

namespace ember::dynamic_supervisor {

namespace detail {

server::server(flags f, std::string name)
    : flags_(f), base_(std::move(name), f.intensity, f.period, false) {}

server::next server::init() {
  ember::process_flag(trap_exit, true);
  return {};
}

child_result server::handle_call(start_req r) {
  if (base_.children.size() >= flags_.max_children) return child_result(child_error::max_children, {});
  iterator it = base_.children.add(std::move(r.spec), next_key_++);
  started s = base_.start(*it);
  if (!s.ok() || s.ignored()) base_.children.erase(it);
  if (!s.ok()) return supervisor::detail::failed(s);
  return child_result(child_error::none, s.pid());
}

child_result server::handle_call(const terminate_req& r) {
  const iterator it = base_.children.find_pid(r.child);
  if (it == base_.children.end()) return child_result(child_error::not_found, {});
  // A running child is stopped; one waiting to restart after r.child
  // exited is simply forgotten (Elixir's DynamicSupervisor does the same).
  if (it->pid == r.child) base_.stop_child(*it);
  base_.children.erase(it);
  return {};
}

std::vector<child_info> server::handle_call(const which_req&) {
  std::vector<child_info> out;
  out.reserve(base_.children.size());
  for (const child_state& c : base_.children.items()) out.push_back(supervisor::detail::sup_base::info_of(c));
  return out;
}

child_counts server::handle_call(const count_req&) {
  child_counts n;
  n.specs = base_.children.size();
  for (const child_state& c : base_.children.items()) {
    if (!c.pid.is_null()) ++n.active;
    ++(c.spec.type == supervisor::child_type::supervisor ? n.supervisors : n.workers);
  }
  return n;
}

server::next server::handle_info(const exit_message& m) {
  const iterator it = base_.children.find_pid(m.from);
  if (it == base_.children.end() || it->pid != m.from) return {};  // not a running child
  child_state& c = *it;
  if (!base_.exited(c, m.reason)) {
    base_.children.erase(it);
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

server::next server::handle_info(const restart_tick& t) {
  const iterator it = base_.children.find_key(t.key);
  if (it == base_.children.end() || !it->restarting || it->gen != t.gen) return {};
  it->restarting = false;
  if (!base_.may_restart()) return stop_with(exit_reason::shutdown());
  restart(it);
  return {};
}

void server::restart(iterator it) {
  started s = base_.start(*it);
  if (!s.ok()) base_.schedule(*it);
  else if (s.ignored()) base_.children.erase(it);
}

void server::terminate(const exit_reason&) {
  // All at once (see decision 0008): order does not matter here.
  std::vector<child_state*> all;
  all.reserve(base_.children.size());
  for (child_state& c : base_.children.items())
    if (!c.pid.is_null()) all.push_back(&c);
  base_.stop_children(all);
}

}  // namespace detail

namespace {
supervisor::flags as_flags(const flags& f) { return {supervisor::one_for_one, f.intensity, f.period, supervisor::never}; }
}  // namespace

start_result start_link(flags f) { return start_link(ember::via_name{}, f); }
start_result start_link(gen_server::name n, flags f) {
  return start_link(supervisor::detail::named(std::move(n), "start_link"), f);
}
start_result start_link(ember::via_name n, flags f) {
  supervisor::detail::validate(as_flags(f));
  return supervisor::detail::start_server<detail::server, true>(std::move(n), f);
}
start_result start(flags f) { return start(ember::via_name{}, f); }
start_result start(gen_server::name n, flags f) { return start(supervisor::detail::named(std::move(n), "start"), f); }
start_result start(ember::via_name n, flags f) {
  supervisor::detail::validate(as_flags(f));
  return supervisor::detail::start_server<detail::server, false>(std::move(n), f);
}

child_result start_child(const ref& sup, child_spec spec) {
  // A dynamic supervisor has no auto_shutdown: significant children are refused.
  supervisor::detail::validate(spec, false, supervisor::auto_shutdown::never);
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
