// ember/impl/signals.ipp — links, monitors, exit signals, trap_exit,
// registered names (and registries' exit hooks) and process_info
// (compiled once, in src/ember.cpp).
//
// The delivery rules are in detail/signals.hpp and process/signal_state.hpp.
// No function here holds two processes' locks at once: each step locks one
// process, so there is no lock order to get wrong.
#pragma once

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/detail/type_name.hpp"
#include "ember/errors.hpp"
#include "ember/heap.hpp"
#include "ember/names.hpp"
#include "ember/process_info.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"

namespace ember::detail {

using lock = std::lock_guard<spin_lock>;

bool alive_locked(const process* p, std::uint64_t serial) noexcept {
  return serial != 0 && p->serial.load(std::memory_order_acquire) == serial && !p->hooks_closed;
}

void post_locked(process* p, envelope* e) {
  if (p->mbox.push(e) == mailbox::push_result::woke_owner) p->rt->wake(p);
}

bool kill_locked_deferred(process* p, exit_reason r) {
  // The first kill decides the reason and wakes the process; a later one
  // changes nothing, so it does nothing (and allocates nothing).
  if (p->kill_pending.load(std::memory_order_relaxed)) return false;
  p->reason = std::move(r);
  // ordering: release publishes `reason` to the process's check_kill.
  p->kill_pending.store(true, std::memory_order_release);
  // Wake it.  A process blocked waiting for a message (or hibernating) is
  // unblocked without a message: it looks at the flag as it resumes, so a
  // kill allocates nothing (a stopping runtime kills every process).  One
  // that is awake gets a wake signal instead, so that it cannot block
  // before it has seen the flag (blocking fails on a non-empty inbox);
  // receive drops that envelope.
  if (p->mbox.unblock()) return true;
  return p->mbox.push(make_envelope<wake_signal>(p->serial.load(std::memory_order_relaxed))) ==
         mailbox::push_result::woke_owner;
}

void kill_locked(process* p, exit_reason r) {
  if (kill_locked_deferred(p, std::move(r))) p->rt->wake(p);
}

void exit_signal_locked(process* p, ember::pid from, const exit_reason& r, bool via_link) {
  // A process already killed exits with the reason it has: a later signal
  // changes nothing (a trapped one would queue a message it never reads).
  if (p->kill_pending.load(std::memory_order_relaxed)) return;
  const std::uint64_t serial = p->serial.load(std::memory_order_relaxed);
  if (!via_link && r.what() == exit_reason::kind::kill) return kill_locked(p, exit_reason::killed());
  if (p->trap_exit) return post_locked(p, make_envelope<exit_message>(serial, exit_message{from, r}));
  if (!r.is_normal()) return kill_locked(p, r);
  // normal: ignored, except exit(self(), normal), which ends the caller.
  if (!via_link && from.serial() == serial) kill_locked(p, r);
}

void deliver_exit(process* p, ember::pid me) {
  std::unique_ptr<signal_state> s;
  {
    lock lk(p->hooks_lock);
    s = std::move(p->sig);
  }
  if (!s) return;
  const exit_reason& r = p->reason;
  // The name goes first: whoever learns of the exit finds it released.
  // So do the keys it holds in registries (each hook locks its own table).
  if (!s->name.empty()) p->rt->names().released(s->name, me);
  for (const auto& h : s->exit_hooks) h->process_exited(me);
  // Links before monitors: whoever sees the `down` knows the linked
  // processes have had their signals.
  for (const auto& l : s->links.entries()) {
    process* q = l.who.block();
    lock lk(q->hooks_lock);
    if (alive_locked(q, l.who.serial()) && q->sig && q->sig->links.erase(me.serial()))
      exit_signal_locked(q, me, r, true);
  }
  for (const auto& w : s->watchers.entries()) {
    process* q = w.who.block();
    lock lk(q->hooks_lock);
    if (alive_locked(q, w.who.serial()) && q->sig && q->sig->watching.erase(w.key)) {
      std::string name = q->sig->monitor_names.empty() ? std::string() : q->sig->take_monitor_name(w.key);
      post_locked(q, make_envelope<down>(w.who.serial(), down{monitor_ref{w.key, me}, me, r, std::move(name)}));
    }
  }
  // Monitors this process held: the targets need not remember them.
  for (const auto& m : s->watching.entries()) {
    process* q = m.who.block();
    lock lk(q->hooks_lock);
    if (alive_locked(q, m.who.serial()) && q->sig) q->sig->watchers.erase(m.key);
  }
  for (auto& l : s->waiters) {
    l->reason = r;
    l->done.store(true, std::memory_order_release);
    l->done.notify_all();
  }
}

void begin_request(process* self, std::uint64_t key, const ember::pid& to) {
  lock lk(self->hooks_lock);
  self->signals().requests.insert(key, to);
}

void end_request(process* self, std::uint64_t key) noexcept {
  lock lk(self->hooks_lock);
  if (self->sig) self->sig->requests.erase(key);
}

void deliver_if_requested(const ember::pid& to, std::uint64_t key, envelope* e) noexcept {
  if (process* q = to.block()) {
    lock lk(q->hooks_lock);
    if (alive_locked(q, to.serial()) && q->sig && q->sig->requests.contains(key)) {
      e->serial = to.serial();
      post_locked(q, e);
      return;
    }
  }
  free_envelope(e);
}

void link_new_child(process* self, process* p, ember::pid child) {
  {
    lock lk(p->hooks_lock);
    p->signals().links.insert(self->serial.load(std::memory_order_relaxed), self->self_pid());
  }
  lock lk(self->hooks_lock);
  self->signals().links.insert(child.serial(), child);
}

void monitor_new_child(process* self, process* p, ember::pid child, std::uint64_t id) {
  {
    lock lk(p->hooks_lock);
    p->signals().watchers.insert(id, self->self_pid());
  }
  lock lk(self->hooks_lock);
  self->signals().watching.insert(id, child);
}

std::string demangle(const char* mangled) {
  if (!mangled) return {};
  int status = 0;
  char* s = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = (status == 0 && s) ? s : mangled;
  std::free(s);
  return out;
}
std::string demangle(const std::type_info& t) { return demangle(t.name()); }

// ---- names ------------------------------------------------------------------

void name_table::add(std::string_view name, ember::pid p) {
  if (name.empty()) throw registration_error("ember::register_name: the name is empty");
  std::lock_guard lk(mu_);
  if (auto it = map_.find(name); it != map_.end()) {
    process* h = it->second.block();
    lock hk(h->hooks_lock);
    if (alive_locked(h, it->second.serial()))
      throw registration_error(fmt::format("ember::register_name: the name \"{}\" is already registered to {}",
                                           name, it->second));
    map_.erase(it);  // its holder is exiting and has not released it yet
  }
  process* q = p.block();
  if (!q) throw registration_error(fmt::format("ember::register_name: {} is not a process", p));
  {
    lock hk(q->hooks_lock);
    if (!alive_locked(q, p.serial()))
      throw registration_error(
          fmt::format("ember::register_name(\"{}\", {}): the process is not alive", name, p));
    signal_state& s = q->signals();
    if (!s.name.empty())
      throw registration_error(fmt::format(
          "ember::register_name(\"{}\", {}): the process is already registered as \"{}\"", name, p, s.name));
    s.name = name;
  }
  map_.emplace(std::string(name), p);
}

bool name_table::remove(std::string_view name) {
  std::lock_guard lk(mu_);
  auto it = map_.find(name);
  if (it == map_.end()) return false;
  ember::pid p = it->second;
  map_.erase(it);
  process* q = p.block();
  lock hk(q->hooks_lock);
  if (alive_locked(q, p.serial()) && q->sig) q->sig->name.clear();
  return true;
}

std::optional<ember::pid> name_table::whereis(std::string_view name) const {
  std::lock_guard lk(mu_);
  auto it = map_.find(name);
  if (it == map_.end()) return std::nullopt;
  // ordering: acquire pairs with the serial's publication.
  if (it->second.block()->serial.load(std::memory_order_acquire) != it->second.serial()) return std::nullopt;
  return it->second;
}

ember::pid name_table::resolve(std::string_view name) const {
  std::optional<ember::pid> p = whereis(name);
  if (!p) throw no_such_name(name);
  return *p;
}

void name_table::released(const std::string& name, ember::pid p) {
  std::lock_guard lk(mu_);
  auto it = map_.find(name);
  if (it != map_.end() && it->second == p) map_.erase(it);
}

}  // namespace ember::detail

namespace ember {

using detail::lock;

// ---- links and exit signals -------------------------------------------------

void link(pid t) {
  detail::process* self = detail::enter_runtime("link");
  const pid me = self->self_pid();
  bool fresh = false;
  if (t != me) {
    lock lk(self->hooks_lock);
    fresh = self->signals().links.insert(t.serial(), t);
  }
  if (fresh) {
    // Our side first: if t exits from now on, it finds the link here.
    bool ok = false;
    if (detail::process* q = t.block()) {
      lock lk(q->hooks_lock);
      if (detail::alive_locked(q, t.serial())) {
        q->signals().links.insert(me.serial(), me);
        ok = true;
      }
    }
    if (!ok) {
      bool trapping;
      {
        lock lk(self->hooks_lock);
        self->sig->links.erase(t.serial());
        trapping = self->trap_exit;
        if (trapping)
          detail::post_locked(self, detail::make_envelope<exit_message>(me.serial(),
                                                                        exit_message{t, exit_reason::noproc()}));
      }
      if (!trapping)
        throw noproc_error(fmt::format("ember::link: process {} is not alive (noproc)", t));
    }
  }
}

void unlink(pid t) {
  detail::process* self = detail::enter_runtime("unlink");
  const pid me = self->self_pid();
  {
    lock lk(self->hooks_lock);
    if (self->sig) self->sig->links.erase(t.serial());
  }
  // From here on t cannot deliver to us (it would have to find itself in
  // our list); now drop our entry from its list.
  if (detail::process* q = t.block(); q && t != me) {
    lock lk(q->hooks_lock);
    if (detail::alive_locked(q, t.serial()) && q->sig) q->sig->links.erase(me.serial());
  }
}

void exit(pid t, exit_reason reason) {
  detail::process* self = detail::this_process();
  const pid from = self ? self->self_pid() : pid{};
  if (detail::process* q = t.block()) {
    lock lk(q->hooks_lock);
    if (detail::alive_locked(q, t.serial())) detail::exit_signal_locked(q, from, reason, false);
  }
  detail::spend(1);  // in a process: notices a signal it sent itself
}

bool process_flag(trap_exit_flag, bool on) {
  detail::process* self = detail::current_or_throw("process_flag");
  lock lk(self->hooks_lock);
  bool old = self->trap_exit;
  self->trap_exit = on;
  return old;
}

// ---- monitors ---------------------------------------------------------------

namespace {
/// monitor(t), recording `name` as what the monitor watches (empty: by pid).
monitor_ref monitor_as(pid t, std::string name) {
  detail::process* self = detail::enter_runtime("monitor");
  const pid me = self->self_pid();
  monitor_ref ref{self->rt->next_monitor_id(), t};
  {
    lock lk(self->hooks_lock);
    detail::signal_state& s = self->signals();
    s.watching.insert(ref.id, t);
    if (!name.empty()) s.monitor_names.emplace_back(ref.id, name);
  }
  bool ok = false;
  if (t == me) {
    // Allowed, as in OTP: it shows in process_info and demonitor finds it,
    // but a process outlives nothing of its own, so it never fires.
    lock lk(self->hooks_lock);
    self->signals().watchers.insert(ref.id, me);
    ok = true;
  } else if (detail::process* q = t.block()) {
    lock lk(q->hooks_lock);
    if (detail::alive_locked(q, t.serial())) {
      q->signals().watchers.insert(ref.id, me);
      ok = true;
    }
  }
  if (!ok) {
    lock lk(self->hooks_lock);
    self->sig->watching.erase(ref.id);
    if (!name.empty()) (void)self->sig->take_monitor_name(ref.id);
    detail::post_locked(self, detail::make_envelope<down>(me.serial(),
                                                          down{ref, t, exit_reason::noproc(), std::move(name)}));
  }
  return ref;
}
}  // namespace

monitor_ref monitor(pid t) { return monitor_as(t, {}); }

monitor_ref monitor(std::string_view name) {
  detail::process* self = detail::current_or_throw("monitor");
  if (name.empty()) throw bad_argument("ember::monitor: the name is empty");
  return monitor_as(self->rt->names().whereis(name).value_or(pid{}), std::string(name));
}
monitor_ref monitor(const char* name) { return monitor(std::string_view(name)); }

monitor_ref monitor(const via_name& name) {
  detail::current_or_throw("monitor");
  if (!name) throw bad_argument("ember::monitor: the via_name is empty");
  return monitor_as(name.whereis(), name.to_string());
}

bool demonitor(const monitor_ref& ref, demonitor_option option) {
  detail::process* self = detail::enter_runtime("demonitor");
  if (option != demonitor_option::none && option != demonitor_option::flush)
    throw bad_argument("ember::demonitor: not a demonitor_option");
  bool active = false;
  {
    lock lk(self->hooks_lock);
    if (self->sig) {
      active = self->sig->watching.erase(ref.id);
      if (active && !self->sig->monitor_names.empty()) (void)self->sig->take_monitor_name(ref.id);
    }
  }
  if (active) {
    if (detail::process* q = ref.target.block()) {
      lock lk(q->hooks_lock);
      if (detail::alive_locked(q, ref.target.serial()) && q->sig) q->sig->watchers.erase(ref.id);
    }
  } else if (option == demonitor_option::flush) {
    // A `down` for ref, if any, was queued under our lock before we took
    // it, so it is in the mailbox now.
    detail::mailbox& mb = self->mbox;
    mb.drain_inbox();
    detail::envelope* prev = nullptr;
    for (detail::envelope* e = mb.first(); e; prev = e, e = e->next) {
      if (e->tag == detail::type_tag<down>() && detail::payload<down>(e).ref.id == ref.id) {
        mb.unlink(prev, e);
        free_envelope(e);
        break;
      }
    }
  }
  return active;
}

// ---- names ------------------------------------------------------------------

void register_name(std::string_view name, pid p) {
  detail::enter_runtime("register_name")->rt->names().add(name, p);
}
bool unregister_name(std::string_view name) {
  return detail::enter_runtime("unregister_name")->rt->names().remove(name);
}
std::optional<pid> whereis(std::string_view name) {
  return detail::enter_runtime("whereis")->rt->names().whereis(name);
}

// ---- process_info -----------------------------------------------------------

std::optional<process_snapshot> process_info(pid t) {
  detail::process* q = t.block();
  if (!q || t.is_null()) return std::nullopt;
  process_snapshot s;
  s.pid = t;
  const std::type_info* entry = nullptr;
  {
    // Under the lock with the serial checked, the block cannot be reused
    // (an exiting process clears its serial under this lock).
    lock lk(q->hooks_lock);
    if (q->serial.load(std::memory_order_acquire) != t.serial()) return std::nullopt;
    s.trap_exit = q->trap_exit;
    s.memory = sizeof(detail::process) + (q->has_stack.load(std::memory_order_relaxed) ? q->stack_class : 0);
    entry = q->entry_type;
    if (const detail::signal_state* g = q->sig.get()) {
      for (const auto& l : g->links.entries()) s.links.push_back(l.who);
      for (const auto& m : g->watching.entries()) s.monitors.push_back(m.who);
      for (const auto& m : g->watchers.entries()) s.monitored_by.push_back(m.who);
      s.registered_name = g->name;
      s.memory += g->bytes();
    }
    switch (q->status.load(std::memory_order_relaxed)) {
      case detail::process_status::running: s.status = process_status::running; break;
      case detail::process_status::runnable: s.status = process_status::runnable; break;
      case detail::process_status::waiting: s.status = process_status::waiting; break;
      case detail::process_status::exiting:
      case detail::process_status::free: s.status = process_status::exiting; break;
    }
    if (q->hooks_closed || q->kill_pending.load(std::memory_order_relaxed))
      s.status = process_status::exiting;
    s.message_queue_len = q->mbox.length();
    s.message_queue_bytes = q->mbox.saved_bytes();
    s.mailbox = q->bound;
    s.max_heap_size = q->heap_limit;
    // ordering: acquire pairs with the release that published the heap;
    // the heap is freed only after the serial is cleared under this lock.
    if (const process_heap* h = q->heap.load(std::memory_order_acquire)) {
      s.heap_size = h->bytes();
      s.memory += sizeof(process_heap) + s.heap_size;
    }
    s.memory += s.message_queue_bytes;
    s.reductions = q->reductions.load(std::memory_order_relaxed);
  }
  s.initial_call = entry ? detail::demangle(*entry) : std::string();
  return s;
}

std::vector<pid> processes() { return detail::current_or_throw("processes")->rt->processes(); }

}  // namespace ember
