// ember/impl/deliver.ipp — mailbox bounds and the long-queue watch
// (compiled once, in src/ember.cpp).  The rules are in detail/deliver.hpp.
#pragma once

#include <mutex>

#include <spdlog/spdlog.h>

#include "ember/detail/deliver.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/limits.hpp"

namespace ember::detail {

delivery overflowed(process* p, std::uint64_t serial) noexcept {
  switch (p->mbox.policy()) {
    case overflow::refuse: return delivery::refused;
    case overflow::kill: {
      const std::size_t cap = p->mbox.capacity();
      try {
        exit_reason r = exit_reason::error(mailbox_overflow{cap});
        bool killed = false;
        {
          std::lock_guard<spin_lock> lk(p->hooks_lock);
          // The first sender to find it full kills it; the others just drop.
          if (alive_locked(p, serial) && !p->kill_pending.load(std::memory_order_relaxed)) {
            kill_locked(p, r);
            killed = true;
          }
        }
        if (killed) p->rt->logger().error("process {} killed: {}", ember::pid(p, serial), r.to_string());
      } catch (...) {
        // Out of memory for the reason: the message is dropped all the same.
      }
      return delivery::dropped;
    }
    case overflow::drop_newest:
    case overflow::drop_oldest: break;
  }
  return delivery::dropped;
}

void watch_length(process* p) noexcept {
  const std::size_t enable = p->mbox.long_enable();
  if (enable == 0) return;
  const std::size_t len = p->mbox.length();
  if (len >= enable && p->mbox.claim_long_report()) p->rt->long_queue_report(p, len, enable);
}

delivery push_watched(process* p, envelope* e) noexcept {
  switch (p->mbox.push(e)) {
    // A slot taken for e stays taken: close() zeroed the count and the next
    // incarnation's open() zeroes it again.
    case mailbox::push_result::closed: return delivery::closed;
    case mailbox::push_result::woke_owner: p->rt->wake(p); break;
    case mailbox::push_result::queued: break;
  }
  watch_length(p);
  return delivery::sent;
}

bool bound_refuses(process* p, envelope* e, delivery& d) noexcept {
  if (!e->ops->ordinary || p->mbox.capacity() == 0 || p->mbox.reserve() != mailbox::admit::full) return false;
  const std::uint64_t serial = e->serial;
  free_envelope(e);
  d = overflowed(p, serial);
  return true;
}

delivery deliver_watched(process* p, envelope* e) noexcept {
  delivery d;
  if (bound_refuses(p, e, d)) return d;
  return push_watched(p, e);
}

}  // namespace ember::detail
