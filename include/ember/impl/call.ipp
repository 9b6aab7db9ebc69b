// ember/impl/call.ipp — delivering gen_server replies and failure notices
// (compiled once, in src/ember.cpp).  The formats are in detail/call.hpp.
#pragma once

#include "ember/detail/call.hpp"
#include "ember/detail/runtime_core.hpp"

namespace ember::detail {

void deliver_reply(const ember::pid& caller, std::uint64_t ref, envelope* e) noexcept {
  process* p = caller.block();
  // ordering: acquire pairs with the release that published the serial.
  // A caller that stopped waiting for ref (timed out, or gone) gets
  // nothing; one that stops between this check and the push drops the
  // reply when it next scans its mailbox (discard_internal).
  if (!p || p->serial.load(std::memory_order_acquire) != caller.serial() ||
      p->call_ref.load(std::memory_order_acquire) != ref) {
    e->destroy(e);
    return;
  }
  e->serial = caller.serial();
  if (p->mbox.push(e) == mailbox::push_result::woke_owner) p->rt->wake(p);
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
