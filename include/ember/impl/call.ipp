// ember/impl/call.ipp — delivering gen_server replies and failure notices
// (compiled once, in src/ember.cpp).  The formats are in detail/call.hpp.
#pragma once

#include <mutex>

#include "ember/detail/call.hpp"
#include "ember/detail/runtime_core.hpp"

namespace ember::detail {

void deliver_reply(const ember::pid& caller, std::uint64_t ref, envelope* e) noexcept {
  // A caller that stopped waiting for ref (timed out, or gone) gets
  // nothing; one that stops between this check and the push drops the
  // reply when it next scans its mailbox (discard_internal).
  process* p = caller.block();
  if (p && p->call_ref.load(std::memory_order_acquire) != ref &&
      ((ref & async_request_bit) == 0 || !async_request_live(p, caller.serial(), ref))) {
    free_envelope(e);
    return;
  }
  post(caller, e);
}

bool async_request_live(process* p, std::uint64_t serial, std::uint64_t ref) noexcept {
  std::lock_guard lk(p->hooks_lock);
  return p->serial.load(std::memory_order_acquire) == serial && p->sig && p->sig->requests.contains(ref);
}

void dropped_by_bound(envelope* e) noexcept {
  if (e->tag != request_tag()) return;
  const request_head& h = head_of<request_head>(e);
  if (h.kind == request_kind::call) fail_request(h, reply_status::refused, exit_reason{});
}

void fail_request(const request_head& h, reply_status status, const exit_reason& reason) noexcept {
  if (h.caller.is_null()) return;
  envelope* e;
  try {
    e = make_envelope<reply_head>(h.caller.serial(), reply_head{h.ref, status, reason});
  } catch (...) {
    return;  // out of memory: the caller's timeout still ends its wait
  }
  e->tag = reply_tag();
  deliver_reply(h.caller, h.ref, e);
}

}  // namespace ember::detail
