// ember/scheduler/impl/carrier_pool.ipp — spare carriers, hand-off and retirement
// (compiled once, in src/ember.cpp).  The protocol is at the top of
// scheduler/carrier_pool.hpp; the lease handshake in scheduler/carrier.hpp.
#pragma once

#include <algorithm>

#include "ember/detail/runtime_core.hpp"
#include "ember/scheduler/carrier_pool.hpp"
#include "ember/send.hpp"

namespace ember::detail {

void carrier_pool::start(const std::vector<worker*>& workers) {
  std::lock_guard lk(mu_);
  for (worker* w : workers) {
    auto c = std::make_unique<carrier>(rt_);
    c->owned = w;
    w->owner = c.get();
    all_.push_back(std::move(c));
  }
  for (std::size_t i = 0; i < workers.size(); ++i) all_[i]->start(workers[i]);
}

void carrier_pool::stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (carrier* s : spares_) s->park_handle().unpark();
  }
  // No carrier is added once stopping_ is set; join outside the mutex
  // (a retiring carrier takes it).
  for (std::size_t i = 0;; ++i) {
    carrier* c;
    {
      std::lock_guard lk(mu_);
      if (i >= all_.size()) break;
      c = all_[i].get();
    }
    if (grace.count() >= 0) {
      // Let go of a thread a survivor holds (runtime::stop gave up on it).
      const auto until = std::chrono::steady_clock::now() + grace;
      while (!c->done() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      if (!c->done()) {
        c->detach();
        continue;
      }
    }
    c->join();
  }
}

carrier* carrier_pool::spare_locked() {
  if (!spares_.empty()) {
    carrier* c = spares_.back();
    spares_.pop_back();
    c->spare = false;
    return c;
  }
  auto c = std::make_unique<carrier>(rt_);
  carrier* raw = c.get();
  all_.push_back(std::move(c));
  try {
    raw->start(nullptr);
  } catch (...) {
    all_.pop_back();
    throw;
  }
  return raw;
}

void carrier_pool::hand_locked(carrier& from, carrier& to, worker* w) {
  from.owned = nullptr;
  w->owner = &to;
  to.owned = w;
  to.next = w;
  ++handoffs_;
  to.park_handle().unpark();
}

retake_result carrier_pool::retake(carrier& c, std::uint64_t slices) {
  std::unique_lock lk(mu_);
  if (stopping_ || !c.owned) return retake_result::busy;
  if (used_ >= bound_) return retake_result::refused;
  carrier* to;
  try {
    to = spare_locked();  // before the handshake: a new thread takes a while
  } catch (...) {
    return retake_result::refused;  // no thread to be had
  }
  // The handshake (carrier.hpp): take the worker only from outside a lease,
  // and only in the slice that was judged.
  c.revoke_.store(1, std::memory_order_relaxed);
  lease_fence::heavy();
  // ordering: acquire pairs with leave()'s release (the worker's state as
  // the carrier left it) and with slice_begin.
  if (c.busy_.load(std::memory_order_acquire) != 0 || c.slices_.load(std::memory_order_acquire) != slices) {
    // ordering: release; the carrier waiting in enter_contended goes on.
    c.revoke_.store(0, std::memory_order_release);
    to->spare = true;
    spares_.push_back(to);
    return retake_result::busy;
  }
  ++used_;
  worker* w = c.owned;
  c.handed_at_ns_.store(fast_clock::steady_ns(), std::memory_order_relaxed);
  // ordering: release; the carrier that sees 2 no longer touches w (and
  // sees handed_at_ns_).
  c.revoke_.store(2, std::memory_order_release);
  // Its holder goes back to a worker at its next runtime call.
  if (process* p = c.running_.load(std::memory_order_acquire)) p->budget.store(budget_revoked, std::memory_order_relaxed);
  hand_locked(c, *to, w);
  return retake_result::handed;
}

void carrier_pool::give_away(carrier& c) {
  std::lock_guard lk(mu_);
  carrier* to = spare_locked();  // throws: nothing changed
  worker* w = c.owned;
  hand_locked(c, *to, w);
  c.drop_worker();
}

bool carrier_pool::try_reserve(waiter& w) {
  std::lock_guard lk(mu_);
  if (used_ < bound_ && waiting_.empty()) {
    ++used_;
    w.granted = true;
    return true;
  }
  waiting_.push_back(&w);
  ++waits_;
  return false;
}

void carrier_pool::grant_locked(std::vector<ember::pid>& out) {
  while (used_ < bound_ && !waiting_.empty()) {
    waiter* w = waiting_.front();
    waiting_.pop_front();
    w->granted = true;
    ++used_;
    out.push_back(w->who);
  }
}

void carrier_pool::notify(const std::vector<ember::pid>& granted) noexcept {
  for (const ember::pid& p : granted) {
    try {
      ember::send(p, blocking_grant{});
    } catch (...) {
      // Out of memory for the message: the waiter's wait ends only with
      // its exit (it then passes the slot on).
    }
  }
}

void carrier_pool::cancel(waiter& w) noexcept {
  std::vector<ember::pid> granted;
  {
    std::lock_guard lk(mu_);
    if (w.granted) {
      --used_;
      w.granted = false;
      grant_locked(granted);
    } else {
      auto it = std::find(waiting_.begin(), waiting_.end(), &w);
      if (it != waiting_.end()) waiting_.erase(it);
    }
  }
  notify(granted);
}

void carrier_pool::retire(carrier& c) noexcept {
  std::vector<ember::pid> granted;
  {
    std::lock_guard lk(mu_);
    --used_;
    // A spare from now on (or ending: one spare per worker is enough),
    // before the process it ran goes back to the schedulers.
    if (!stopping_ && spares_.size() < rt_.worker_count()) {
      c.spare = true;
      spares_.push_back(&c);
    } else {
      c.exited = true;
    }
    grant_locked(granted);
  }
  notify(granted);
}

worker* carrier_pool::wait_for_work(carrier& c) {
  std::unique_lock lk(mu_);
  if (c.exited) return nullptr;  // retired with enough spares about
  if (!c.next && !stopping_ && !c.spare) {
    // Keep at most one spare per worker; the rest end at once.
    if (spares_.size() >= rt_.worker_count()) {
      c.exited = true;
      return nullptr;
    }
    c.spare = true;
    spares_.push_back(&c);
  }
  auto until = std::chrono::steady_clock::now() + spare_keepalive;
  while (!c.next && !stopping_) {
    lk.unlock();
    auto left = until - std::chrono::steady_clock::now();
    if (left > std::chrono::nanoseconds::zero()) c.park_handle().park(left);
    lk.lock();
    if (!c.next && !stopping_ && c.spare && std::chrono::steady_clock::now() >= until) {
      spares_.erase(std::find(spares_.begin(), spares_.end(), &c));
      c.spare = false;
      c.exited = true;
      return nullptr;
    }
  }
  if (!c.next) {  // stopping
    if (c.spare) {
      spares_.erase(std::find(spares_.begin(), spares_.end(), &c));
      c.spare = false;
    }
    return nullptr;
  }
  worker* w = c.next;
  c.next = nullptr;
  return w;
}

void carrier_pool::reap() {
  std::vector<std::unique_ptr<carrier>> done;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;  // stop() joins them all
    for (auto it = all_.begin(); it != all_.end();) {
      if ((*it)->exited) {
        done.push_back(std::move(*it));
        it = all_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : done) c->join();
}

pool_counts carrier_pool::counts() const {
  std::lock_guard lk(mu_);
  pool_counts n;
  for (auto& c : all_) {
    if (c->exited) continue;
    ++n.threads;
    if (c->spare) ++n.spare;
    else if (!c->owned && !c->next) ++n.detached;
  }
  n.handoffs = handoffs_;
  n.blocking_waits = waits_;
  return n;
}

}  // namespace ember::detail
