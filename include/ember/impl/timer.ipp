// ember/impl/timer.ipp — starting, firing, cancelling and reading timers,
// and the manual clock (compiled once, in src/ember.cpp).  The wheel and the
// cancel/expiry protocol are described in timer/wheel.hpp.
#pragma once

#include <algorithm>
#include <string>

#include "ember/clock.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/names.hpp"
#include "ember/receive.hpp"
#include "ember/scheduler/carrier.hpp"
#include "ember/timer.hpp"
#include "ember/timer/wheel.hpp"

namespace ember::detail {

void switch_out(process* p, switch_request req);

namespace {
constexpr std::int64_t ns_per_ms = 1000000;

/// A node of w, with its id and deadline set (not yet pending).
timer_ref take_node(worker* w, std::int64_t now_ns, std::int64_t deadline_ns) {
  if (w->wheel().empty() && now_ns > 0) w->wheel().catch_up(std::uint64_t(now_ns) / ns_per_ms);
  timer_node* n = w->timer_nodes().get();
  const std::uint64_t id = w->next_timer_id();
  n->head().deadline.store(deadline_ns, std::memory_order_relaxed);
  n->kind = timer_kind::message;
  n->msg = nullptr;
  n->ops = nullptr;
  n->dest = nullptr;
  n->dest_serial = 0;
  return {n, id};
}

void publish(worker* w, const timer_ref& ref) {
  // ordering: release publishes the node's fields to cancel/read_timer.
  ref.node->head().word.store(timer_node::make_word(ref.id, timer_pending), std::memory_order_release);
  w->wheel().insert(ref.node);
}

/// Decide a pending timer as cancelled; the node then belongs to us to
/// give back to its worker.  False when it was not pending.
bool claim(const timer_ref& ref) noexcept {
  std::uint64_t expect = timer_node::make_word(ref.id, timer_pending);
  return ref.node->head().word.compare_exchange_strong(expect, timer_node::make_word(ref.id, timer_cancelled),
                                                std::memory_order_acq_rel, std::memory_order_relaxed);
}

void give_back(timer_node* n) noexcept {
  worker* owner = n->owner();
  worker_lease w;
  if (w.get() == owner) owner->push_local_cancel(n);
  else owner->push_remote_cancel(n);
}

std::chrono::milliseconds left_of(std::int64_t deadline_ns, std::int64_t now_ns) {
  std::int64_t left = deadline_ns - now_ns;
  return std::chrono::milliseconds(left <= 0 ? 0 : (left + ns_per_ms - 1) / ns_per_ms);
}
}  // namespace

worker* timer_lease::enter_slow(process* self, const char* what, carrier*& c) {
  for (;;) {
    if (self->in_blocking)
      throw error(std::string("ember::") + what +
                  " is not available inside ember::blocking (the process runs off the schedulers there)");
    // Its carrier lost the worker (a hand-off): go on on a worker first.
    switch_out(self, switch_request::yield);
    c = this_carrier();
    if (worker* w = c->enter()) return w;
  }
}

timer_ref timer_begin(timer_lease& l, std::int64_t now_ns, std::int64_t deadline_ns) {
  if (now_ns < 0) {
    now_ns = l.w->runtime().now_ns();
    deadline_ns += now_ns;
  }
  return take_node(l.w, now_ns, deadline_ns);
}

void timer_commit(timer_lease& l, timer_ref ref, pid dest, std::string_view dest_name) {
  timer_node* n = ref.node;
  if (!dest_name.empty()) {
    n->kind = timer_kind::named;
    try {
      n->dest_name = new std::string(dest_name);
    } catch (...) {
      timer_abandon(l, ref);
      throw;
    }
  } else {
    n->dest = dest.block();
    n->dest_serial = dest.serial();
  }
  publish(l.w, ref);
}

void timer_abandon(timer_lease& l, timer_ref ref) noexcept {
  ref.node->drop_message();
  l.w->timer_nodes().put(ref.node);
}

timer_ref timer_fired_at_once(process* self) { return {nullptr, self->rt->timer_id_block(1)}; }

std::int64_t now_ns_of(process* self) noexcept { return self->rt->now_ns(); }

std::optional<pid> whereis_in(process* self, std::string_view name) { return self->rt->names().whereis(name); }

timer_ref arm_receive_timeout(process* self, std::int64_t deadline_ns, std::uint64_t wait_seq) {
  timer_lease l(self, "receive");
  const std::int64_t now = l.w->wheel().empty() ? self->rt->now_ns() : 0;
  timer_ref ref = take_node(l.w, now, deadline_ns);
  ref.node->kind = timer_kind::receive;
  ref.node->dest = self;
  ref.node->dest_serial = self->serial.load(std::memory_order_relaxed);
  ref.node->wait_seq = wait_seq;
  publish(l.w, ref);
  return ref;
}

void disarm(const timer_ref& ref) noexcept {
  if (claim(ref)) give_back(ref.node);
}

}  // namespace ember::detail

namespace ember {

std::optional<std::chrono::milliseconds> cancel_timer(const timer_ref& ref) {
  detail::timer_node* n = ref.node;
  if (!n || !detail::claim(ref)) return std::nullopt;
  // The node is ours until given back: its deadline is stable.
  auto left = detail::left_of(n->head().deadline.load(std::memory_order_relaxed), n->owner()->runtime().now_ns());
  detail::give_back(n);
  if (detail::process* self = detail::this_process()) detail::spend_in(self, 1);
  return left;
}

std::optional<std::chrono::milliseconds> read_timer(const timer_ref& ref) {
  detail::spend(1);
  detail::timer_node* n = ref.node;
  if (!n) return std::nullopt;
  const std::uint64_t pending = detail::timer_node::make_word(ref.id, detail::timer_pending);
  detail::timer_head& h = n->head();
  if (h.word.load(std::memory_order_acquire) != pending) return std::nullopt;
  const std::int64_t deadline = h.deadline.load(std::memory_order_relaxed);
  const std::int64_t now = n->owner()->runtime().now_ns();
  // ordering: acquire keeps the deadline read before this re-check.
  if (h.word.load(std::memory_order_acquire) != pending) return std::nullopt;
  return detail::left_of(deadline, now);
}

void manual_clock::throw_bad_advance() {
  throw bad_argument(
      "ember::manual_clock::advance: the duration must be at least 0, and the clock may not pass 2^62 ns (about 146 "
      "years)");
}

void manual_clock::advance(std::chrono::nanoseconds d) {
  detail::runtime_core* rt = rt_.load(std::memory_order_acquire);
  if (!rt) throw error("ember::manual_clock::advance: no runtime uses this clock");
  // now + d must not overflow (nor pass what receive timeouts assume).
  if (d.count() > (std::int64_t{1} << 62) - now_.load(std::memory_order_acquire)) throw_bad_advance();
  rt->advance(d.count());
}

}  // namespace ember
