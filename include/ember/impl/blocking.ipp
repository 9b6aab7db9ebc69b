// ember/impl/blocking.ipp — ember::blocking: off the schedulers and back
// (compiled once, in src/ember.cpp).
//
// begin_blocking, in order:
//  1. spend a reduction (a pending exit ends the process before any work);
//  2. when its carrier still runs a worker: take a slot from the pool, or
//     wait for one as a process (a blocking_grant message, first come first
//     served); then, in a lease, give the worker to a spare carrier — the
//     calling process keeps this thread, which now runs no worker;
//     (a carrier whose worker was handed off already runs off the
//     schedulers and needs no slot);
//  3. mark the process and its carrier as blocking: it does not yield, exit
//     signals wait, and the monitor does not count it as a long schedule.
// end_blocking: unmark, and switch out as a yield: the carrier, having no
// worker, puts the process in the inject queue and retires; the process
// goes on, on some worker.
#pragma once

#include "ember/blocking.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/receive.hpp"
#include "ember/scheduler/carrier.hpp"
#include "ember/scheduler/carrier_pool.hpp"

namespace ember::detail {

void switch_out(process* p, switch_request req);

bool in_blocking(process* p) noexcept { return p->in_blocking; }

namespace {
/// Wait, as a process, until the pool grants w a slot.
void wait_for_slot(process* p, carrier_pool& pool, carrier_pool::waiter& w) {
  struct unqueue {
    carrier_pool& pool;
    carrier_pool::waiter& w;
    bool done = false;
    ~unqueue() {
      if (!done) pool.cancel(w);  // exiting: give the place (or the grant) up
    }
  } guard{pool, w};
  // ordering: `granted` was set under the pool's mutex before the grant
  // was sent; the message orders it before this read.
  while (!w.granted) ember::receive([](blocking_grant) {});
  guard.done = true;
  (void)p;
}
}  // namespace

void begin_blocking(process* p) {
  spend_in(p, 1);
  carrier_pool& pool = p->rt->carriers();
  if (this_carrier()->current()) {
    carrier_pool::waiter w{p->self_pid()};
    if (!pool.try_reserve(w)) wait_for_slot(p, pool, w);
    // It may have moved to another carrier while it waited.
    carrier* c = this_carrier();
    if (c->enter()) {
      try {
        pool.give_away(*c);  // ends the lease
      } catch (...) {
        c->leave();
        pool.cancel(w);
        throw error("ember::blocking: no thread could be started to carry on the worker");
      }
    } else {
      pool.cancel(w);  // handed off meanwhile: off the schedulers already
    }
  }
  this_carrier()->blocking_.store(true, std::memory_order_relaxed);
  p->in_blocking = true;
  p->budget.store(blocking_budget, std::memory_order_relaxed);
}

void end_blocking(process* p) noexcept {
  p->in_blocking = false;
  this_carrier()->blocking_.store(false, std::memory_order_relaxed);
  p->budget.store(0, std::memory_order_relaxed);
  switch_out(p, switch_request::yield);  // back on a worker
}

void after_blocking(process* p) { spend_in(p, 0); }

}  // namespace ember::detail
