// ember/impl/gen_server.ipp — the non-template parts of gen_server
// (compiled once, in src/ember.cpp): the mailbox walk of a server and of a
// waiting caller, reports, and the notices a dying server owes its callers.
#pragma once

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/type_name.hpp"
#include "ember/gen_server.hpp"

#include <mutex>

namespace ember::gen_server::detail {

using ember::detail::envelope;
using ember::detail::process;

namespace {
std::string server_label(process* self, const std::string& name) {
  std::string s = fmt::format("{}", self->self_pid());
  if (!name.empty()) s += " (" + name + ")";
  return s;
}
}  // namespace

void log_unexpected(process* self, const std::string& server, const std::type_info& type) {
  try {
    self->rt->logger().warn(
        "gen_server {}: dropped a message of type {}: not listed in `info`, and no catch-all "
        "handle_info(gen_server::any_message&)",
        server_label(self, server), ember::detail::demangle(type));
  } catch (...) {
  }
}

void log_crash(process* self, const std::string& server, const char* last_message, const ember::pid& client,
               const exit_reason& r, const exit_reason* terminate_exit) noexcept {
  try {
    std::string text = fmt::format("gen_server {} terminating: reason: {}; last message of type {}",
                                   server_label(self, server), r.to_string(), ember::detail::demangle(last_message));
    if (!client.is_null()) text += fmt::format("; client {}", client);
    if (terminate_exit) text += fmt::format("; terminate then ended it with reason: {}", terminate_exit->to_string());
    self->rt->logger().error("{}", text);
  } catch (...) {
    // A failing log sink must not change how the server ends.
  }
}

void notify_exit(const std::vector<from>& calls, const exit_reason& r) noexcept {
  for (const from& f : calls) {
    ember::detail::request_head h;
    h.caller = f.caller;
    h.ref = f.ref;
    ember::detail::fail_request(h, ember::detail::reply_status::exited, r);
  }
}

envelope* take_next(process* self) {
  ember::detail::mailbox& mb = self->mbox;
  const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
  for (;;) {
    envelope* e = mb.first();
    if (!e) {
      envelope* none = nullptr;
      if (!mb.drain_inbox(none)) return nullptr;
      continue;
    }
    if (ember::detail::discard_if_internal(self, serial, nullptr, e)) continue;
    mb.unlink(nullptr, e);
    return e;
  }
}

envelope* await_reply(process* self, std::uint64_t ref, std::int64_t timeout_ns, envelope* mark) {
  ember::detail::mailbox& mb = self->mbox;
  const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
  // Only what came after the mark can be the reply (gen_server/call.hpp).
  envelope* prev = mark;
  mb.drain_inbox(prev);
  envelope* e = prev ? prev->next : mb.first();
  std::int64_t deadline = -1;
  ember::detail::receive_timer timer;
  for (;;) {
    while (e) {
      if (e->tag == ember::detail::reply_tag() && e->serial == serial &&
          ember::detail::head_of<ember::detail::reply_head>(e).ref == ref) {
        mb.unlink(prev, e);
        return e;
      }
      if (ember::detail::discard_if_internal(self, serial, prev, e)) {
        e = prev ? prev->next : mb.first();
        continue;
      }
      prev = e;
      e = e->next;
    }
    if (mb.drain_inbox(prev)) {
      e = prev ? prev->next : mb.first();
      continue;
    }
    // A process unwinding for its exit (a destructor) does not wait: the
    // call times out at once.
    if (ember::detail::exit_unwinding(self)) return nullptr;
    if (timeout_ns >= 0) {
      const std::int64_t now = self->rt->now_ns();
      if (deadline < 0) deadline = now + timeout_ns;
      if (now >= deadline) return nullptr;
      ember::detail::wait_for_message(self, deadline, timer.ref);
    } else {
      ember::detail::wait_for_message(self, -1, timer.ref);
    }
    mb.drain_inbox(prev);
    e = prev ? prev->next : mb.first();
  }
}

envelope* await_async(process* self, bool (*match)(void*, std::uint64_t), void* ctx, std::int64_t timeout_ns) {
  ember::detail::mailbox& mb = self->mbox;
  const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
  ember::detail::spend_in(self, 1);
  envelope* prev = nullptr;
  mb.drain_inbox(prev);
  envelope* e = mb.first();
  std::int64_t deadline = -1;
  ember::detail::receive_timer timer;
  for (;;) {
    while (e) {
      if (e->tag == ember::detail::reply_tag() && e->serial == serial &&
          match(ctx, ember::detail::head_of<ember::detail::reply_head>(e).ref)) {
        mb.unlink(prev, e);
        return e;
      }
      if (ember::detail::discard_if_internal(self, serial, prev, e)) {
        e = prev ? prev->next : mb.first();
        continue;
      }
      prev = e;
      e = e->next;
    }
    if (mb.drain_inbox(prev)) {
      e = prev ? prev->next : mb.first();
      continue;
    }
    if (timeout_ns == 0 || ember::detail::exit_unwinding(self)) return nullptr;
    if (timeout_ns > 0) {
      const std::int64_t now = self->rt->now_ns();
      if (deadline < 0) deadline = now + timeout_ns;
      if (now >= deadline) return nullptr;
      ember::detail::wait_for_message(self, deadline, timer.ref);
    } else {
      ember::detail::wait_for_message(self, -1, timer.ref);
    }
    mb.drain_inbox(prev);
    e = prev ? prev->next : mb.first();
  }
}

void forget_request(process* self, std::uint64_t ref) noexcept { ember::detail::end_request(self, ref); }

void fail_own_request(process* self, std::uint64_t ref, ember::detail::reply_status status,
                      const exit_reason& reason) noexcept {
  ember::detail::request_head h;
  h.caller = self->self_pid();
  h.ref = ref;
  ember::detail::fail_request(h, status, reason);
}

void throw_call_failure(const char* what, envelope* e, const ember::pid& to) {
  const auto& h = ember::detail::head_of<ember::detail::reply_head>(e);
  if (h.status == ember::detail::reply_status::bad_request)
    throw bad_request(std::string(what) + ": " + h.reason.text());
  if (h.status == ember::detail::reply_status::refused)
    throw call_refused(fmt::format("{}: the server {} dropped the request: its mailbox is full", what, to));
  if (h.reason.what() == exit_reason::kind::noproc)
    throw call_noproc(fmt::format("{}: the server {} is not alive", what, to));
  throw call_exited(fmt::format("{}: the server {} exited", what, to), h.reason);
}

}  // namespace ember::gen_server::detail
