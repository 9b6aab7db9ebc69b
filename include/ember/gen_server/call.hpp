// ember/gen_server/call.hpp — talking to a running gen_server: call (typed,
// with a timeout), cast, reply (a deferred answer) and stop.
//
// A call, step by step (the caller's side):
//  1. check the timeout (bad_argument for a negative one other than
//     infinity, or NaN) and resolve the server (call_noproc, call_self);
//  2. take what has arrived into the save queue and mark its end: the reply
//     can only come after the request, so the wait scans only what arrives
//     after the mark — a call costs the same with 500,000 unrelated
//     messages queued as with none (OTP's receive marker);
//  3. post the request (call_noproc when the server is gone, call_refused
//     when its bounded mailbox is full) and wait for the reply with the
//     call's reference; a reply that comes after the timeout is dropped
//     (the process no longer waits for that reference).
//
// Threads: call and stop in process context; cast and reply from any
// process.  Ownership: the request is moved into the server's mailbox.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <fmt/format.h>

#include "ember/detail/call.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/gen_server/server_loop.hpp"
#include "ember/gen_server/start.hpp"
#include "ember/receive.hpp"
#include "ember/signal/monitor.hpp"

namespace ember::gen_server {

namespace detail {
/// Wait for the reply to ref, looking only at messages after `mark` (the
/// save queue's last envelope when the request was made; nullptr: from the
/// start).  nullptr: the timeout ran out (-1: none).
ember::detail::envelope* await_reply(ember::detail::process* self, std::uint64_t ref, std::int64_t timeout_ns,
                                     ember::detail::envelope* mark);
[[noreturn]] void throw_call_failure(const char* what, ember::detail::envelope* e, const ember::pid& to);
/// Step 2: drain the inbox and return the mark.
inline ember::detail::envelope* mark_mailbox(ember::detail::process* self) noexcept {
  ember::detail::envelope* none = nullptr;
  self->mbox.drain_inbox(none);
  return self->mbox.last();
}
}  // namespace detail

/// Ask the server for req and wait for its answer (see the top of
/// gen_server.hpp for the failures).  timeout: any duration >= 0, or
/// infinity (also any timeout beyond ~146 years); negative or NaN is
/// bad_argument.
template <class S, class Req>
detail::reply_t<S, Req> call(const server<S>& to, Req&& req, ember::detail::timeout_arg timeout = default_timeout) {
  using V = std::remove_cvref_t<Req>;
  using R = detail::reply_t<S, Req>;
  using body = detail::request_body<V>;
  ember::detail::process* self = ember::detail::enter_runtime("gen_server::call");
  const std::int64_t timeout_ns = timeout.ns("gen_server::call", "timeout");
  const ember::pid p = to.pid();
  if (p.is_null()) throw call_noproc("ember::gen_server::call: no process is registered as " + to.describe());
  if (p == self->self_pid()) throw call_self("ember::gen_server::call: a server cannot call itself");
  ember::detail::envelope* mark = detail::mark_mailbox(self);
  const std::uint64_t ref = ++self->call_seq;
  self->call_ref.store(ref, std::memory_order_relaxed);
  struct waiting_guard {
    ember::detail::process* self;
    ~waiting_guard() { self->call_ref.store(0, std::memory_order_relaxed); }
  } g{self};
  ember::detail::envelope* e = ember::detail::make_request<body>(
      p.serial(),
      ember::detail::request_head{ember::detail::request_kind::call, ember::detail::type_tag<S>(),
                                  &detail::dispatch_call<S, V>, typeid(V).name(), self->self_pid(), ref,
                                  ember::detail::type_tag<R>()},
      std::forward<Req>(req));
  switch (ember::detail::post(p, e)) {
    case ember::detail::delivery::sent: break;
    case ember::detail::delivery::closed: throw call_noproc("ember::gen_server::call: the server is not alive");
    case ember::detail::delivery::dropped:
    case ember::detail::delivery::refused:
      throw call_refused(fmt::format("ember::gen_server::call: the server {}{}{}'s mailbox is full ({} messages)", p,
                                     to.describe().empty() ? "" : " ", to.describe(), p.block()->mbox.capacity()));
  }
  ember::detail::envelope* r = detail::await_reply(self, ref, timeout_ns, mark);
  if (!r) throw call_timeout("ember::gen_server::call: no reply within " + timeout.describe());
  ember::detail::envelope_guard rg{r};
  if (ember::detail::head_of<ember::detail::reply_head>(r).status != ember::detail::reply_status::ok)
    detail::throw_call_failure("ember::gen_server::call", r, p);
  return std::move(ember::detail::body_of<ember::detail::reply_body<R>>(r).value);
}
template <class S, class Req>
detail::reply_t<S, Req> call(const ember::pid& to, Req&& req, ember::detail::timeout_arg timeout = default_timeout) {
  return call(server<S>(to), std::forward<Req>(req), timeout);
}

/// Send msg to the server's handle_cast and return at once (dropped if
/// there is no such server, as OTP's cast).  Any process.
template <class S, class Msg>
void cast(const server<S>& to, Msg&& msg) {
  using V = std::remove_cvref_t<Msg>;
  using body = detail::request_body<V>;
  static_assert(requires(S& s, V v) { s.handle_cast(std::move(v)); }, "the server has no handle_cast for this type");
  ember::detail::spend(1);
  const ember::pid p = to.pid();
  if (p.is_null()) return;
  ember::detail::post(p, ember::detail::make_request<body>(
                             p.serial(),
                             ember::detail::request_head{ember::detail::request_kind::cast,
                                                         ember::detail::type_tag<S>(), &detail::dispatch_cast<S, V>,
                                                         typeid(V).name(), {}, 0, nullptr},
                             std::forward<Msg>(msg)));
}
template <class S, class Msg>
void cast(const ember::pid& to, Msg&& msg) {
  cast(server<S>(to), std::forward<Msg>(msg));
}

/// Answer a call a handler left unanswered (it returned noreply()).  Any
/// process.  v's type must be the call's reply type (bad_argument if not);
/// a caller that stopped waiting never sees it.
template <class R>
void reply(const from& f, R&& v) {
  detail::send_reply(f, std::forward<R>(v));
}

/// Stop the server with reason (terminate runs) and wait until it has
/// exited.  Throws call_noproc if it is not alive, call_timeout when it has
/// not exited within timeout (the request stays queued: the server still
/// stops when it gets to it), call_exited when it
/// exited with another reason; bad_argument for a negative timeout other
/// than infinity, or NaN — checked first, so the server is not touched.
template <class S>
void stop(const server<S>& to, exit_reason reason = exit_reason::normal(),
          ember::detail::timeout_arg timeout = infinity) {
  ember::detail::process* self = ember::detail::enter_runtime("gen_server::stop");
  const std::int64_t timeout_ns = timeout.ns("gen_server::stop", "timeout");
  const ember::pid p = to.pid();
  if (p.is_null())
    throw call_noproc(to.describe().empty() ? std::string("ember::gen_server::stop: no such server")
                                            : "ember::gen_server::stop: no process is registered as " +
                                                  to.describe());
  if (p == self->self_pid()) throw call_self("ember::gen_server::stop: a server cannot stop itself this way");
  const ember::monitor_ref m = ember::monitor(p);
  // Not alive: the monitor's down (noproc) says so.
  ember::detail::post(p, ember::detail::make_request<detail::stop_body>(
                             p.serial(),
                             ember::detail::request_head{ember::detail::request_kind::stop, nullptr, nullptr, "stop",
                                                         self->self_pid(), 0, nullptr},
                             reason));
  const std::optional<exit_reason> got = ember::receive(
      ember::when([m](const ember::down& d) { return d.ref == m; },
                  [](ember::down d) { return std::optional(std::move(d.reason)); }),
      ember::after(timeout_ns < 0 ? ember::max_receive_timeout : std::chrono::nanoseconds(timeout_ns),
                   [] { return std::optional<exit_reason>(); }));
  if (!got) {
    ember::demonitor(m, ember::demonitor_option::flush);
    throw call_timeout("ember::gen_server::stop: the server did not exit within " + timeout.describe());
  }
  if (got->what() == exit_reason::kind::noproc) throw call_noproc("ember::gen_server::stop: the server is not alive");
  if (!(*got == reason)) throw call_exited("ember::gen_server::stop: the server exited with another reason", *got);
}
template <class S>
void stop(const ember::pid& to, exit_reason reason = exit_reason::normal(),
          ember::detail::timeout_arg timeout = infinity) {
  stop(server<S>(to), std::move(reason), timeout);
}

}  // namespace ember::gen_server
