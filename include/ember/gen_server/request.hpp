// ember/gen_server/request.hpp — asynchronous requests (OTP 25's
// send_request / wait_response / receive_response / check_response and the
// reqids_* collections): a process can have many calls in flight and match
// each reply to its request.
//
//   auto a = gs::send_request(server_a, get{});          // request_id<long>
//   auto b = gs::send_request(server_b, get{});
//   gs::response<long> ra = gs::receive_response(a, 1s);  // reply, error or timeout
//   if (ra) use(ra.value());
//
//   gs::request_id_collection<long, std::string> all;    // fan out, labelled
//   for (auto& [name, s] : servers) gs::send_request(s, get{}, name, all);
//   while (auto r = gs::receive_response(all, 1s, gs::on_response::remove))
//     if (r.has_response()) ... r.label() ... r.response() ...
//
// Rules (tests in tests/behaviour/gen_server_request_test.cpp; the table in
// docs/behaviours.md):
//  - send_request sends the request (a call the server's handle_call
//    answers) and returns at once; it never throws for the server's state:
//    a dead or unknown server, a full mailbox or a server of another type
//    come back as the response's error.
//  - wait_response(id, t) waits up to t; on timeout the request stays
//    pending (wait again).  receive_response(id, t) gives up on timeout: a
//    reply that comes later is dropped, never seen.  Either returns the
//    reply, or the error: the server exited before answering (its reason;
//    noproc when it was not alive), refused (a full bounded mailbox),
//    bad_request (a server of another type).
//  - check_response(msg, id) tells whether a message a gen_server got in
//    its catch-all handle_info(any_message&) is id's response.  A reply
//    that reaches a server's loop is consumed there: take it in the
//    catch-all or it is logged and dropped.
//  - A collection holds requests with one reply type R and a label each;
//    wait/receive/check on it take the first response of any of them, with
//    its label; on_response::remove takes the request out of the
//    collection.  An empty collection answers no_request.
//  - As for call, the server is not monitored: a server that dies answers
//    the requests it owes with its exit reason (decision 0008).
//
// Threads: process context (the calling process owns its requests).
// Ownership: a request_id is a value; the reply waits in the caller's
// mailbox until taken, and is dropped when the request is given up.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ember/detail/call.hpp"
#include "ember/detail/signals.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"
#include "ember/gen_server/call.hpp"
#include "ember/gen_server/result.hpp"
#include "ember/gen_server/server_loop.hpp"
#include "ember/gen_server/start.hpp"

namespace ember::gen_server {

/// One asynchronous request: which server, and the reply type R.
template <class R>
class request_id {
public:
  request_id() = default;
  [[nodiscard]] ember::pid server() const noexcept { return server_; }
  [[nodiscard]] std::uint64_t ref() const noexcept { return ref_; }
  friend bool operator==(const request_id& a, const request_id& b) noexcept { return a.ref_ == b.ref_; }

  request_id(ember::pid s, std::uint64_t r) noexcept : server_(s), ref_(r) {}

private:
  ember::pid server_;
  std::uint64_t ref_ = 0;
};

/// What a request came to: the reply, an error, or (waiting) a timeout.
template <class R>
class response {
public:
  enum class kind : unsigned char { reply, error, timeout };

  /// True for a reply.
  [[nodiscard]] explicit operator bool() const noexcept { return kind_ == kind::reply; }
  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool timed_out() const noexcept { return kind_ == kind::timeout; }
  /// The reply; for anything else throws what call would have thrown
  /// (call_exited, call_noproc, call_refused, bad_request, call_timeout).
  R& value() {
    if (kind_ != kind::reply) rethrow();
    return *value_;
  }
  /// Why there is no reply: the server's exit reason (noproc: it was not
  /// alive), or a text for refused / bad_request; normal for a reply.
  [[nodiscard]] const exit_reason& error() const noexcept { return reason_; }
  /// The server the request went to.
  [[nodiscard]] ember::pid server() const noexcept { return server_; }

  static response timeout(ember::pid s) {
    response r;
    r.kind_ = kind::timeout;
    r.server_ = s;
    return r;
  }
  /// From a reply envelope (takes its value; the caller frees it).
  static response of(ember::detail::envelope* e, ember::pid s) {
    response r;
    r.server_ = s;
    const auto& h = ember::detail::head_of<ember::detail::reply_head>(e);
    r.status_ = h.status;
    if (h.status == ember::detail::reply_status::ok) {
      r.kind_ = kind::reply;
      r.value_.emplace(std::move(ember::detail::body_of<ember::detail::reply_body<R>>(e).value));
    } else {
      r.kind_ = kind::error;
      r.reason_ = h.reason;
    }
    return r;
  }

private:
  [[noreturn]] void rethrow() const {
    const std::string what = fmt::format("ember::gen_server::response: the request to {}", server_);
    if (kind_ == kind::timeout) throw call_timeout(what + " got no reply in time");
    if (status_ == ember::detail::reply_status::bad_request) throw bad_request(what + ": " + reason_.text());
    if (status_ == ember::detail::reply_status::refused)
      throw call_refused(what + " was dropped: the server's mailbox is full");
    if (reason_.what() == exit_reason::kind::noproc) throw call_noproc(what + ": the server is not alive");
    throw call_exited(what + ": the server exited", reason_);
  }

  kind kind_ = kind::error;
  ember::detail::reply_status status_ = ember::detail::reply_status::exited;
  std::optional<R> value_;
  exit_reason reason_;
  ember::pid server_;
};

/// What a collection's wait/receive/check does with the request whose
/// response it returns (OTP's Delete argument).
enum class on_response : unsigned char {
  keep,    // it stays in the collection
  remove,  // it is taken out
};

/// Requests with one reply type R, each with a label (OTP's reqids_*).
template <class R, class Label>
class request_id_collection {
public:
  /// Add a request under a label (OTP's reqids_add); bad_argument if it
  /// is already in the collection.
  void add(const request_id<R>& id, Label label) {
    for (const auto& e : items_)
      if (e.first == id) throw bad_argument("ember::gen_server::request_id_collection::add: the request is already in it");
    items_.emplace_back(id, std::move(label));
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  /// Every (request, label), in the order they were added (OTP's reqids_to_list).
  [[nodiscard]] const std::vector<std::pair<request_id<R>, Label>>& to_list() const noexcept { return items_; }

  /// The entry for ref (nullptr: none).
  std::pair<request_id<R>, Label>* find(std::uint64_t ref) noexcept {
    for (auto& e : items_)
      if (e.first.ref() == ref) return &e;
    return nullptr;
  }
  void erase(std::uint64_t ref) noexcept {
    for (auto it = items_.begin(); it != items_.end(); ++it)
      if (it->first.ref() == ref) {
        items_.erase(it);
        return;
      }
  }

private:
  std::vector<std::pair<request_id<R>, Label>> items_;
};

/// A collection's answer: a response with its label, a timeout, no request
/// at all (the collection is empty), or — check_response only — no reply
/// (the message answers none of them).
template <class R, class Label>
class collection_response {
public:
  enum class kind : unsigned char { response, timeout, no_request, no_reply };
  /// True when there is a response (a reply or an error) to look at.
  [[nodiscard]] explicit operator bool() const noexcept { return kind_ == kind::response; }
  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] bool has_response() const noexcept { return kind_ == kind::response; }
  [[nodiscard]] bool timed_out() const noexcept { return kind_ == kind::timeout; }
  [[nodiscard]] bool no_request() const noexcept { return kind_ == kind::no_request; }
  [[nodiscard]] bool no_reply() const noexcept { return kind_ == kind::no_reply; }
  gen_server::response<R>& response() { return *resp_; }
  const Label& label() const { return *label_; }
  /// The request answered.
  [[nodiscard]] const request_id<R>& id() const noexcept { return id_; }

  static collection_response of(kind k) {
    collection_response c;
    c.kind_ = k;
    return c;
  }
  static collection_response of(gen_server::response<R> r, const request_id<R>& id, Label l) {
    collection_response c;
    c.kind_ = kind::response;
    c.resp_.emplace(std::move(r));
    c.id_ = id;
    c.label_.emplace(std::move(l));
    return c;
  }

private:
  kind kind_ = kind::no_request;
  std::optional<gen_server::response<R>> resp_;
  request_id<R> id_;
  std::optional<Label> label_;
};

namespace detail {
/// Take the caller's reply envelope whose ref `match` accepts, waiting up
/// to timeout_ns (-1: for ever); nullptr when the time ran out.
ember::detail::envelope* await_async(ember::detail::process* self, bool (*match)(void*, std::uint64_t), void* ctx,
                                     std::int64_t timeout_ns);
/// Record ref as a request whose reply the caller takes (to: the server);
/// end_request stops taking them (a late one is dropped).
using ember::detail::begin_request;
using ember::detail::end_request;
/// The ref of a reply envelope.
inline std::uint64_t reply_ref(ember::detail::envelope* e) noexcept {
  return ember::detail::head_of<ember::detail::reply_head>(e).ref;
}
/// A failure response to ref, delivered to self (send_request's own errors).
void fail_own_request(ember::detail::process* self, std::uint64_t ref, ember::detail::reply_status status,
                      const exit_reason& reason) noexcept;

template <class S, class Req>
request_id<reply_t<S, Req>> send_request_to(const server<S>& to, Req&& req) {
  using V = std::remove_cvref_t<Req>;
  using R = reply_t<S, Req>;
  using body = request_body<V>;
  ember::detail::process* self = ember::detail::enter_runtime("gen_server::send_request");
  const ember::pid p = to.pid();
  const std::uint64_t ref = ++self->call_seq | ember::detail::async_request_bit;
  begin_request(self, ref, p);
  if (p.is_null()) {
    fail_own_request(self, ref, ember::detail::reply_status::exited, exit_reason::noproc());
    return {p, ref};
  }
  ember::detail::envelope* e = ember::detail::make_request<body>(
      p.serial(),
      ember::detail::request_head{ember::detail::request_kind::call, ember::detail::type_tag<S>(),
                                  &dispatch_call<S, V>, typeid(V).name(), self->self_pid(), ref,
                                  ember::detail::type_tag<R>()},
      std::forward<Req>(req));
  switch (ember::detail::post(p, e)) {
    case ember::detail::delivery::sent: break;
    case ember::detail::delivery::closed:
      fail_own_request(self, ref, ember::detail::reply_status::exited, exit_reason::noproc());
      break;
    case ember::detail::delivery::dropped:
    case ember::detail::delivery::refused:
      fail_own_request(self, ref, ember::detail::reply_status::refused, exit_reason{});
      break;
  }
  return {p, ref};
}

template <class R, class Label>
bool in_collection(void* c, std::uint64_t ref) {
  return static_cast<request_id_collection<R, Label>*>(c)->find(ref) != nullptr;
}
inline bool is_ref(void* want, std::uint64_t ref) { return *static_cast<std::uint64_t*>(want) == ref; }

template <class R, class Label>
collection_response<R, Label> take_from(request_id_collection<R, Label>& c, ember::detail::envelope* e,
                                        on_response what) {
  ember::detail::envelope_guard g{e};
  const std::uint64_t ref = reply_ref(e);
  auto* entry = c.find(ref);
  end_request(ember::detail::this_process(), ref);
  auto out = collection_response<R, Label>::of(response<R>::of(e, entry->first.server()), entry->first,
                                               what == on_response::remove ? std::move(entry->second) : entry->second);
  if (what == on_response::remove) c.erase(ref);
  return out;
}

template <class R, class Label>
collection_response<R, Label> await_collection(request_id_collection<R, Label>& c, ember::detail::timeout_arg t,
                                               on_response what, bool give_up, const char* fn) {
  ember::detail::process* self = ember::detail::current_or_throw(fn);
  const std::int64_t ns = t.ns(fn, "timeout");
  if (c.empty()) return collection_response<R, Label>::of(collection_response<R, Label>::kind::no_request);
  ember::detail::envelope* e = await_async(self, &in_collection<R, Label>, &c, ns);
  if (!e) {
    if (give_up) {  // receive_response: every request in it is given up
      for (const auto& [id, label] : c.to_list()) end_request(self, id.ref());
      c = request_id_collection<R, Label>();
    }
    return collection_response<R, Label>::of(collection_response<R, Label>::kind::timeout);
  }
  return take_from(c, e, what);
}
}  // namespace detail

/// Send req to the server as an asynchronous call and return at once.
/// Process context.
template <class S, class Req>
request_id<detail::reply_t<S, Req>> send_request(const server<S>& to, Req&& req) {
  return detail::send_request_to(to, std::forward<Req>(req));
}
template <class S, class Req>
request_id<detail::reply_t<S, Req>> send_request(const ember::pid& to, Req&& req) {
  return detail::send_request_to(server<S>(to), std::forward<Req>(req));
}
/// send_request, adding the request to a collection under a label.
template <class S, class Req, class Label>
void send_request(const server<S>& to, Req&& req, Label label,
                  request_id_collection<detail::reply_t<S, Req>, Label>& into) {
  into.add(detail::send_request_to(to, std::forward<Req>(req)), std::move(label));
}

/// Wait up to timeout for id's response.  On timeout the request stays
/// pending (a later wait or receive may still get it).  timeout as call's.
template <class R>
response<R> wait_response(const request_id<R>& id, ember::detail::timeout_arg timeout = infinity) {
  ember::detail::process* self = ember::detail::current_or_throw("gen_server::wait_response");
  const std::int64_t ns = timeout.ns("gen_server::wait_response", "timeout");
  std::uint64_t want = id.ref();
  ember::detail::envelope* e = detail::await_async(self, &detail::is_ref, &want, ns);
  if (!e) return response<R>::timeout(id.server());
  ember::detail::envelope_guard g{e};
  detail::end_request(self, id.ref());
  return response<R>::of(e, id.server());
}
/// As wait_response, but a timeout gives the request up: a reply that
/// comes later is dropped and never seen.
template <class R>
response<R> receive_response(const request_id<R>& id, ember::detail::timeout_arg timeout = infinity) {
  ember::detail::process* self = ember::detail::current_or_throw("gen_server::receive_response");
  const std::int64_t ns = timeout.ns("gen_server::receive_response", "timeout");
  std::uint64_t want = id.ref();
  ember::detail::envelope* e = detail::await_async(self, &detail::is_ref, &want, ns);
  if (!e) {
    detail::end_request(self, id.ref());
    // A reply that got in before the request was given up goes too.
    if (ember::detail::envelope* late = detail::await_async(self, &detail::is_ref, &want, 0))
      ember::detail::free_envelope(late);
    return response<R>::timeout(id.server());
  }
  ember::detail::envelope_guard g{e};
  detail::end_request(self, id.ref());
  return response<R>::of(e, id.server());
}
/// Whether m (a message a gen_server's catch-all handle_info got) is id's
/// response: nullopt if not.  Taking it ends the request.
template <class R>
std::optional<response<R>> check_response(const any_message& m, const request_id<R>& id) {
  ember::detail::envelope* e = m.envelope();
  if (e->tag != ember::detail::reply_tag() || detail::reply_ref(e) != id.ref()) return std::nullopt;
  detail::end_request(ember::detail::current_or_throw("gen_server::check_response"), id.ref());
  return response<R>::of(e, id.server());
}

/// The first response of any request in the collection, waiting up to
/// timeout (OTP's wait_response/3): on timeout the requests stay pending.
template <class R, class Label>
collection_response<R, Label> wait_response(request_id_collection<R, Label>& c, ember::detail::timeout_arg timeout,
                                             on_response what) {
  return detail::await_collection(c, timeout, what, false, "gen_server::wait_response");
}
/// The same, but a timeout gives up every request in the collection (it is
/// then empty; late replies are dropped) (OTP's receive_response/3).
template <class R, class Label>
collection_response<R, Label> receive_response(request_id_collection<R, Label>& c, ember::detail::timeout_arg timeout,
                                                on_response what) {
  return detail::await_collection(c, timeout, what, true, "gen_server::receive_response");
}
/// Whether m answers a request in the collection (OTP's check_response/3):
/// no_reply if it does not, no_request if the collection is empty.
template <class R, class Label>
collection_response<R, Label> check_response(const any_message& m, request_id_collection<R, Label>& c,
                                              on_response what) {
  using cr = collection_response<R, Label>;
  if (c.empty()) return cr::of(cr::kind::no_request);
  ember::detail::envelope* e = m.envelope();
  if (e->tag != ember::detail::reply_tag() || !c.find(detail::reply_ref(e))) return cr::of(cr::kind::no_reply);
  auto* entry = c.find(detail::reply_ref(e));
  detail::end_request(ember::detail::current_or_throw("gen_server::check_response"), entry->first.ref());
  auto out = cr::of(response<R>::of(e, entry->first.server()), entry->first,
                    what == on_response::remove ? std::move(entry->second) : entry->second);
  if (what == on_response::remove) c.erase(entry->first.ref());
  return out;
}

}  // namespace ember::gen_server
