// ember/gen_server/result.hpp — what a gen_server's handlers return: `next`
// (go on, with a timeout or a continuation, or stop), `call_reply<R>`
// (reply now or later, then go on or stop), the `behaviour<S>` base with
// the builders, and the small types handlers see (`from`, `types<...>`,
// `server_timeout`, `any_message`).
//
// Threads: plain values, made and read in the server's process.
// Ownership: a `next` owns its continuation and timeout payload until the
// server takes them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ember/clock.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/detail/type_name.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"

namespace ember::gen_server {

/// A list of message types (the `info` a server takes).
template <class... T>
struct types {};

/// Who waits for a call's answer (OTP's From): what reply() needs.
struct from {
  ember::pid caller;
  std::uint64_t ref = 0;
  const void* reply_type = nullptr;  // the answer's type, checked by reply()
};

/// Delivered to handle_info when a handler's after(t) ran out.
struct server_timeout {};

/// The default call timeout (OTP's 5000 ms).
inline constexpr std::chrono::milliseconds default_timeout{5000};
/// No timeout (call, stop, start, a handler's after).
inline constexpr std::chrono::milliseconds infinity{-1};

/// A message of a type the server does not list in `info`, as a catch-all
/// `handle_info(gen_server::any_message&)` sees it (OTP's handle_info sees
/// every message).  A view: valid during that handle_info only.
class any_message {
public:
  explicit any_message(ember::detail::envelope* e) noexcept : e_(e) {}
  /// The message's C++ type.
  [[nodiscard]] const std::type_info& type() const noexcept { return *e_->ops->type; }
  /// Its demangled name ("ping", "std::string").
  [[nodiscard]] std::string type_name() const { return ember::detail::demangle(type()); }
  /// Whether it is a T.
  template <class T>
  [[nodiscard]] bool is() const noexcept {
    return e_->tag == ember::detail::type_tag<T>();
  }
  /// The T it holds (move from it if you keep it), or nullptr.
  template <class T>
  [[nodiscard]] T* get() noexcept {
    return is<T>() ? &ember::detail::payload<T>(e_) : nullptr;
  }
  /// The envelope (for the runtime's own helpers, e.g. check_response).
  [[nodiscard]] ember::detail::envelope* envelope() const noexcept { return e_; }

private:
  ember::detail::envelope* e_;
};

template <class S>
class next;

namespace detail {
template <class S>
struct continuation {
  virtual ~continuation() = default;
  virtual next<S> run(S& s) = 0;
};
template <class S, class C>
struct continuation_of final : continuation<S> {
  C value;
  explicit continuation_of(C v) : value(std::move(v)) {}
  next<S> run(S& s) override;
};
/// A handler's after(t, msg): the message handle_info gets when t runs out.
template <class S>
struct timeout_payload {
  virtual ~timeout_payload() = default;
  virtual next<S> run(S& s) = 0;
  [[nodiscard]] virtual const char* type_name() const noexcept = 0;  // mangled, for reports
};
template <class S, class M>
struct timeout_payload_of final : timeout_payload<S> {
  M value;
  explicit timeout_payload_of(M v) : value(std::move(v)) {}
  next<S> run(S& s) override;
  [[nodiscard]] const char* type_name() const noexcept override { return typeid(M).name(); }
};

/// A handler's after(t): no timeout (nullopt), or t in ns (0 .. 2^62).
inline std::optional<std::int64_t> checked_after(const ember::detail::timeout_arg& t) {
  const std::int64_t ns = t.ns("gen_server::next::after", "timeout");
  if (ns < 0) return std::nullopt;  // infinity: no timeout, as OTP's
  return ns;
}
}  // namespace detail

/// What the server does after a handler: go on (optionally with a timeout
/// or a continuation) or stop with a reason.
template <class S>
class next {
public:
  next() = default;
  /// If no message comes within t, handle_info(server_timeout{}) runs.
  /// t is any duration >= 0; infinity (or a t beyond ~146 years) means no
  /// timeout.  A negative t or NaN throws bad_argument here, in the handler.
  next after(ember::detail::timeout_arg t) && {
    timeout_ns_ = detail::checked_after(t);
    timeout_at_ = false;
    timeout_msg_.reset();
    return std::move(*this);
  }
  /// If no message comes by t (the runtime's clock, ember::now()),
  /// handle_info(server_timeout{}) runs: a schedule that does not drift
  /// with the time handlers take.  A t already passed runs it as soon as
  /// the mailbox is empty.
  next after(ember::time_point t) && {
    timeout_ns_ = t.time_since_epoch().count();
    timeout_at_ = true;
    timeout_msg_.reset();
    return std::move(*this);
  }
  /// The same, but handle_info(msg) runs instead of handle_info(server_timeout)
  /// (OTP's {timeout, T, Msg}).  msg need not be listed in `info`.
  template <class M>
  next after(ember::detail::timeout_arg t, M&& msg) && {
    using V = std::decay_t<M>;
    static_assert(requires(S& s, V v) { s.handle_info(std::move(v)); },
                  "after(t, msg): the server has no handle_info for the message's type");
    timeout_ns_ = detail::checked_after(t);
    timeout_at_ = false;
    timeout_msg_ = std::make_unique<detail::timeout_payload_of<S, V>>(std::forward<M>(msg));
    return std::move(*this);
  }
  /// after(t, msg) at an absolute time t (the runtime's clock).
  template <class M>
  next after(ember::time_point t, M&& msg) && {
    next n = std::move(*this).after(t);
    using V = std::decay_t<M>;
    static_assert(requires(S& s, V v) { s.handle_info(std::move(v)); },
                  "after(t, msg): the server has no handle_info for the message's type");
    n.timeout_msg_ = std::make_unique<detail::timeout_payload_of<S, V>>(std::forward<M>(msg));
    return n;
  }
  /// handle_continue(c) runs before the next message.
  template <class C>
  next then(C&& c) && {
    cont_ = std::make_unique<detail::continuation_of<S, std::decay_t<C>>>(std::forward<C>(c));
    return std::move(*this);
  }
  /// Accepted for OTP's sake: an ember server always hibernates between
  /// messages.
  next hibernate() && { return std::move(*this); }

  [[nodiscard]] bool stops() const noexcept { return stop_.has_value(); }
  [[nodiscard]] const std::optional<exit_reason>& stop_reason() const noexcept { return stop_; }
  /// The timeout in nanoseconds (nullopt: none): a duration, or with
  /// timeout_at() a time on the runtime's clock.
  [[nodiscard]] const std::optional<std::int64_t>& timeout_ns() const noexcept { return timeout_ns_; }
  [[nodiscard]] bool timeout_at() const noexcept { return timeout_at_; }
  std::unique_ptr<detail::continuation<S>> take_continuation() noexcept { return std::move(cont_); }
  /// after(t, msg)'s message (null: handle_info(server_timeout)).
  std::unique_ptr<detail::timeout_payload<S>> take_timeout_message() noexcept { return std::move(timeout_msg_); }
  /// init returned ignore().
  [[nodiscard]] bool ignores() const noexcept { return ignore_; }

  static next stopping(exit_reason r) {
    next n;
    n.stop_ = std::move(r);
    return n;
  }
  static next ignoring() {
    next n;
    n.ignore_ = true;
    return n;
  }

private:
  std::optional<exit_reason> stop_;
  std::optional<std::int64_t> timeout_ns_;
  bool timeout_at_ = false;  // timeout_ns_ is a time, not a duration
  std::unique_ptr<detail::continuation<S>> cont_;
  std::unique_ptr<detail::timeout_payload<S>> timeout_msg_;
  bool ignore_ = false;
};

template <class S, class M>
next<S> detail::timeout_payload_of<S, M>::run(S& s) {
  using R = decltype(s.handle_info(std::move(value)));
  if constexpr (std::is_void_v<R>) {
    s.handle_info(std::move(value));
    return {};
  } else {
    return s.handle_info(std::move(value));
  }
}

template <class S, class C>
next<S> detail::continuation_of<S, C>::run(S& s) {
  using R = decltype(s.handle_continue(std::move(value)));
  if constexpr (std::is_void_v<R>) {
    s.handle_continue(std::move(value));
    return {};
  } else {
    return s.handle_continue(std::move(value));
  }
}

/// What handle_call returns when it does more than reply: the answer (or
/// none yet: reply later with reply(from, v)) and what happens next.
template <class S, class R>
class call_reply {
public:
  using reply_type = R;
  call_reply(next<S> n) : next_(std::move(n)) {}  // NOLINT: noreply(), stop_with(r)
  call_reply(R v, next<S> n = {}) : value_(std::move(v)), next_(std::move(n)) {}  // NOLINT
  call_reply after(ember::detail::timeout_arg t) && {
    next_ = std::move(next_).after(t);
    return std::move(*this);
  }
  template <class M>
  call_reply after(ember::detail::timeout_arg t, M&& msg) && {
    next_ = std::move(next_).after(t, std::forward<M>(msg));
    return std::move(*this);
  }
  template <class C>
  call_reply then(C&& c) && {
    next_ = std::move(next_).then(std::forward<C>(c));
    return std::move(*this);
  }
  call_reply hibernate() && { return std::move(*this); }

  std::optional<R>& value() noexcept { return value_; }
  next<S>& following() noexcept { return next_; }

private:
  std::optional<R> value_;
  next<S> next_;
};

/// A base for server classes: the result builders, knowing the server type.
template <class S>
struct behaviour {
  using next = gen_server::next<S>;
  template <class R>
  using call_reply = gen_server::call_reply<S, R>;
  /// No reply now (a call: answer later with reply(from, v)); go on.
  static next noreply() { return {}; }
  /// Reply v; chain .after/.then on the result.
  template <class R>
  static call_reply<std::decay_t<R>> reply_with(R&& v) {
    return call_reply<std::decay_t<R>>(std::forward<R>(v));
  }
  /// Stop with reason (terminate runs); a pending call is answered with
  /// call_exited(reason).
  static next stop_with(exit_reason r) { return next::stopping(std::move(r)); }
  /// From init only: do not start (OTP's ignore).  start returns a result
  /// with ignored(); the process ends `normal` and its name is released;
  /// a supervisor records the child as not running.  From any other
  /// handler it is an error (bad_argument).
  static next ignore() { return next::ignoring(); }
  /// Reply v, then stop with reason.
  template <class R>
  static call_reply<std::decay_t<R>> stop_with(exit_reason r, R&& v) {
    return call_reply<std::decay_t<R>>(std::forward<R>(v), next::stopping(std::move(r)));
  }
};

}  // namespace ember::gen_server
