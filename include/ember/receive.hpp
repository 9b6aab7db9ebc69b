// ember/receive.hpp — typed, selective receive with an optional timeout.
//
//   int n = ember::receive(
//       [](int v) { return v; },                                // by type
//       ember::when([](const job& j) { return j.urgent; },      // type + guard
//                   [](job j) { return run(std::move(j)); }),
//       ember::after(100ms, [] { return -1; }));                // timeout
//
// Each clause is a callable taking one message type (by value, const&, & or
// &&; not generic).  receive takes the oldest message that some clause
// accepts — clauses are tried in order for each message — moves it into
// that clause and returns the clause's result (all clauses must return the
// same type, or one convertible to a common type).  Messages no clause
// accepts stay in the mailbox, in order, for a later receive.
// `after(d, fn)` (last, at most one) runs fn if nothing matched within d; a
// zero (or negative) duration polls; a duration beyond max_receive_timeout
// (+inf, any unit's max()) is taken as that; NaN is bad_argument.
// `after(t, fn)` with an ember::time_point t runs fn if nothing matched by
// then (clock.hpp).  `receive<T>()` takes the next T.
//
// Threads: process context only (throws not_in_process elsewhere).  A kill
// (runtime stop) is noticed here and ends the process.
// Ownership: the matched message is moved out of the mailbox into the
// clause; the mailbox keeps the others.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ember/clock.hpp"
#include "ember/detail/call.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/detail/spend.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/this_process.hpp"
#include "ember/timer.hpp"

namespace ember {

/// The longest receive timeout (2^62 ns, about 146 years); a longer
/// after() is taken as this one.
inline constexpr std::chrono::nanoseconds max_receive_timeout{std::int64_t{1} << 62};

namespace detail {

template <class F>
struct callable_traits : callable_traits<decltype(&std::remove_cvref_t<F>::operator())> {};
template <class R, class A>
struct callable_traits<R (*)(A)> {
  using arg = A;
};
template <class R, class A>
struct callable_traits<R(A)> {
  using arg = A;
};
template <class C, class R, class A>
struct callable_traits<R (C::*)(A) const> {
  using arg = A;
};
template <class C, class R, class A>
struct callable_traits<R (C::*)(A)> {
  using arg = A;
};
template <class C, class R, class A>
struct callable_traits<R (C::*)(A) const noexcept> {
  using arg = A;
};
template <class C, class R, class A>
struct callable_traits<R (C::*)(A) noexcept> {
  using arg = A;
};

template <class Guard, class Handler>
struct guarded_clause {
  Guard guard;
  Handler handler;
};

template <class Duration, class Handler>
struct after_clause {
  Duration timeout;  // from the start of receive; or, when `at`, a time on the runtime's clock
  Handler handler;
  bool at = false;
};

template <class C>
struct is_after : std::false_type {};
template <class D, class H>
struct is_after<after_clause<D, H>> : std::true_type {};

template <class C>
struct clause_info {  // a plain handler
  using arg = typename callable_traits<C>::arg;
  using value = std::remove_cvref_t<arg>;
  static bool accepts(C&, envelope* e) { return e->tag == type_tag<value>(); }
  static decltype(auto) call(C& c, envelope* e) {
    if constexpr (std::is_invocable_v<C&, value&&>) return c(std::move(payload<value>(e)));
    else return c(payload<value>(e));
  }
  using result = decltype(call(std::declval<C&>(), nullptr));
};
template <class G, class H>
struct clause_info<guarded_clause<G, H>> {
  using value = std::remove_cvref_t<typename callable_traits<H>::arg>;
  static bool accepts(guarded_clause<G, H>& c, envelope* e) {
    return e->tag == type_tag<value>() && static_cast<bool>(c.guard(std::as_const(payload<value>(e))));
  }
  static decltype(auto) call(guarded_clause<G, H>& c, envelope* e) {
    return clause_info<H>::call(c.handler, e);
  }
  using result = typename clause_info<H>::result;
};
template <class D, class H>
struct clause_info<after_clause<D, H>> {
  using result = std::invoke_result_t<H&>;
};

[[noreturn]] void throw_nan_timeout();
/// after(d): d in nanoseconds, saturated to [0, max_receive_timeout] (a
/// deadline, now + d, must fit the runtime's 64-bit nanosecond clock):
/// negative values (-inf too) poll, +inf and anything longer is the cap.
/// NaN has no meaning: bad_argument.
template <class Rep, class Period>
std::chrono::nanoseconds receive_timeout_of(std::chrono::duration<Rep, Period> d) {
  constexpr std::chrono::nanoseconds cap = max_receive_timeout;
  const long double v = std::chrono::duration<long double, std::nano>(d).count();
  if (v != v) throw_nan_timeout();
  if (!(v > 0)) return std::chrono::nanoseconds::zero();
  if (v >= static_cast<long double>(cap.count())) return cap;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(v));
}

/// Destroys an envelope when the clause that took it returns or throws.
struct envelope_guard {
  envelope* e;
  ~envelope_guard() { free_envelope(e); }
};

/// Make the calling process wait for a message, or until deadline_ns (on
/// the runtime's clock; -1: none).  Returns when woken; the caller re-scans.
/// The first wait with a deadline arms a timer in `timer`.  Under
/// exit_unwinding: with a deadline, returns at once (the caller treats the
/// timeout as run out); without one, the process ends there, abandoned —
/// the rest of its stack is not unwound (reported).
void wait_for_message(process* self, std::int64_t deadline_ns, timer_ref& timer);
/// Cancel a receive timeout armed by wait_for_message, if still pending.
void disarm(const timer_ref& timer) noexcept;
struct receive_timer {
  timer_ref ref;
  ~receive_timer() {
    if (ref.node) disarm(ref);
  }
};
/// Drop stale envelopes (sent to an earlier incarnation) and wake signals;
/// returns true if e is such an envelope (it has been unlinked and freed).
/// Then, as every runtime call, it ends the process if a kill is pending —
/// unless raise_kill is false (a wait that must not be left early: the
/// completion wait, which acts on the kill itself).
bool discard_internal(process* self, envelope* prev, envelope* e, bool raise_kill = true);
inline bool discard_if_internal(process* self, std::uint64_t serial, envelope* prev, envelope* e,
                                bool raise_kill = true) {
  if (EMBER_LIKELY(e->serial == serial && e->tag != type_tag<wake_signal>() && e->tag != reply_tag())) return false;
  return discard_internal(self, prev, e, raise_kill);
}
/// The process has an exit signal pending but cannot be ended by an
/// exception now — it is unwinding (a destructor runs): a runtime call must
/// not wait then.  A receive with a timeout times out at once; a wait with
/// none ends the process there (wait_for_message).
inline bool exit_unwinding(const process* self) noexcept {
  return EMBER_UNLIKELY(self->kill_pending.load(std::memory_order_relaxed)) && std::uncaught_exceptions() > 0;
}

template <class R>
struct result_slot {
  std::optional<R> v;
  template <class F>
  void set(F&& f) { v.emplace(std::forward<F>(f)()); }
  R take() { return std::move(*v); }
};
template <>
struct result_slot<void> {
  template <class F>
  void set(F&& f) { std::forward<F>(f)(); }
  void take() {}
};

template <class R, class... Cs>
bool try_clauses(process* self, envelope* prev, envelope* e, result_slot<R>& out, Cs&... cs) {
  auto one = [&](auto& c) {
    using C = std::remove_cvref_t<decltype(c)>;
    if constexpr (is_after<C>::value) {
      return false;
    } else {
      if (!clause_info<C>::accepts(c, e)) return false;
      self->mbox.unlink(prev, e);
      envelope_guard g{e};
      out.set([&]() -> R { return clause_info<C>::call(c, e); });
      return true;
    }
  };
  return (one(cs) || ...);
}

template <class... Cs>
constexpr std::size_t after_count = (std::size_t(is_after<std::remove_cvref_t<Cs>>::value) + ... + 0);

}  // namespace detail

/// A clause that accepts a message of handler's argument type only when
/// guard(message) is true.
template <class Guard, class Handler>
auto when(Guard&& guard, Handler&& handler) {
  return detail::guarded_clause<std::decay_t<Guard>, std::decay_t<Handler>>{
      std::forward<Guard>(guard), std::forward<Handler>(handler)};
}

/// The timeout clause: fn() runs when nothing matched within d.
/// A zero or negative d times out at once if nothing matches; a d beyond
/// max_receive_timeout (about 146 years) is taken as that (never, in
/// practice); a NaN d throws bad_argument.
template <class Rep, class Period, class Handler>
auto after(std::chrono::duration<Rep, Period> d, Handler&& fn) {
  return detail::after_clause<std::chrono::nanoseconds, std::decay_t<Handler>>{detail::receive_timeout_of(d),
                                                                              std::forward<Handler>(fn)};
}
/// The timeout clause at an absolute time on the runtime's clock
/// (ember::now()): fn() runs when nothing matched by then; a time already
/// passed times out at once if nothing matches.
template <class Handler>
auto after(time_point at, Handler&& fn) {
  const std::int64_t t = at.time_since_epoch().count();
  return detail::after_clause<std::chrono::nanoseconds, std::decay_t<Handler>>{
      std::chrono::nanoseconds(t < 0 ? 0 : t), std::forward<Handler>(fn), true};
}

template <class... Cs>
auto receive(Cs&&... clauses) {
  static_assert(sizeof...(Cs) > 0, "receive needs at least one clause");
  static_assert(detail::after_count<Cs...> <= 1, "receive takes at most one after() clause");
  using R = std::common_type_t<typename detail::clause_info<std::remove_cvref_t<Cs>>::result...>;

  detail::process* self = detail::current_or_throw("receive");
  auto cs = std::forward_as_tuple(clauses...);
  // The timeout, if any.
  std::optional<std::chrono::nanoseconds> timeout;
  bool timeout_at = false;
  auto find_after = [&](auto& c) {
    if constexpr (detail::is_after<std::remove_cvref_t<decltype(c)>>::value) {
      timeout = c.timeout;
      timeout_at = c.at;
    }
  };
  std::apply([&](auto&... c) { (find_after(c), ...); }, cs);

  detail::result_slot<R> out;
  detail::mailbox& mb = self->mbox;
  detail::spend_in(self, 1);  // notices a pending kill
  const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
  detail::envelope* prev = nullptr;
  mb.drain_inbox(prev);
  detail::envelope* e = mb.first();
  std::int64_t deadline = -1;
  detail::receive_timer timer;  // cancelled however receive returns
  for (;;) {
    while (e) {
      if (detail::discard_if_internal(self, serial, prev, e)) {
        e = prev ? prev->next : mb.first();
        continue;
      }
      if (std::apply([&](auto&... c) { return detail::try_clauses<R>(self, prev, e, out, c...); }, cs))
        return out.take();
      prev = e;
      e = e->next;
    }
    if (mb.drain_inbox(prev)) {
      e = prev ? prev->next : mb.first();
      continue;
    }
    if (timeout) {
      const std::int64_t now = self->rt->now_ns();
      if (deadline < 0) deadline = timeout_at ? timeout->count() : now + timeout->count();
      if (now >= deadline || detail::exit_unwinding(self)) {
        auto run_after = [&](auto& c) {
          if constexpr (detail::is_after<std::remove_cvref_t<decltype(c)>>::value)
            out.set([&]() -> R { return c.handler(); });
        };
        std::apply([&](auto&... c) { (run_after(c), ...); }, cs);
        return out.take();
      }
      detail::wait_for_message(self, deadline, timer.ref);
    } else {
      detail::wait_for_message(self, -1, timer.ref);
    }
    mb.drain_inbox(prev);
    e = prev ? prev->next : mb.first();
  }
}

/// Take the next message of type T (skipping, and keeping, others).
template <class T>
T receive() {
  return receive([](T&& v) -> T { return std::move(v); });
}

}  // namespace ember
