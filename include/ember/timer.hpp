// ember/timer.hpp — timers: send_after, start_timer, cancel_timer,
// read_timer (erlang:send_after/3, start_timer/3, cancel_timer/1,
// read_timer/1).
//
//   auto ref = ember::send_after(self(), 55s, back_to_idle{driver});
//   ...
//   if (auto left = ember::cancel_timer(ref))   // still pending: cancelled
//     hand_over(driver, *left);                 // milliseconds it had left
//
// Rules (tests in tests/behaviour/timer_test.cpp; docs/guide.md "Timers"):
//  - a timer delivers its message once, at or after its delay (1 ms
//    resolution: never early), unless cancelled;
//  - cancel_timer returns the time left (rounded up to whole ms, 0 if due
//    but not yet delivered) when it cancelled a pending timer — then the
//    message is guaranteed never to arrive, even if the timer was due that
//    very instant; it returns nullopt when the timer already fired (its
//    message was or will be delivered), was cancelled before, or the
//    reference is unknown;
//  - read_timer returns the time left, or nullopt, without changing
//    anything;
//  - start_timer delivers timeout<T>{ref, msg}, so the receiver can tell
//    which timer it was;
//  - a timer to a process that has exited is dropped when due; a timer to
//    a name looks the name up when due (no process, no message);
//  - delays run from 0 to 2^32 - 1 ms (~49.7 days), in any unit, integer
//    or floating; others (negative, longer, NaN, the infinities, any
//    unit's max() or min()) throw bad_argument naming the delay.  A delay
//    of 0, or an absolute time (a time_point on the runtime's clock,
//    ember::now()) already passed, delivers at once, as a send would: its
//    reference is never pending; one more than 2^32 - 1 ms ahead is
//    bad_argument;
//  - a busy worker fires its due timers within about a monitor tick
//    (runtime_options::time_slice / 2) plus the slice that runs then; a
//    worker held by a process that makes no runtime call is handed to
//    another thread after runtime_options::handoff_after, and its timers
//    fire there (docs/guide.md, "Scheduling").
//
// Threads: send_after/start_timer in process context (the timer lives in
// the caller's worker); cancel_timer/read_timer from any thread.  Each
// costs O(1).  Ownership: a pending timer owns its message.
#pragma once

#include <chrono>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ember/clock.hpp"
#include "ember/detail/spend.hpp"
#include "ember/errors.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/pid.hpp"
#include "ember/scheduler/carrier.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"
#include "ember/timer/wheel.hpp"

namespace ember {

/// Names one timer.  Comparable; never reused within a runtime.
struct timer_ref {
  detail::timer_node* node = nullptr;
  std::uint64_t id = 0;
  friend bool operator==(const timer_ref& a, const timer_ref& b) noexcept { return a.id == b.id; }
};

/// What start_timer delivers.
template <class T>
struct timeout {
  timer_ref ref;
  T msg;
};

/// The longest delay a timer accepts.
inline constexpr std::chrono::milliseconds max_timer_delay{(std::int64_t{1} << 32) - 1};

namespace detail {
class carrier;
class worker;
/// The calling process's worker, leased while a timer is made (carrier.hpp).
/// A process whose carrier has lost its worker first switches out and goes
/// on on a worker; inside ember::blocking there is none (ember::error).
class timer_lease {
public:
  timer_lease(process* self, const char* what) : w(enter(self, what, c_)) {}
  ~timer_lease() { c_->leave(); }
  timer_lease(const timer_lease&) = delete;
  timer_lease& operator=(const timer_lease&) = delete;
  worker* const w;

private:
  static worker* enter(process* self, const char* what, carrier*& c) {
    c = this_carrier();
    if (worker* w = c->enter(); EMBER_LIKELY(w != nullptr)) return w;
    return enter_slow(self, what, c);
  }
  static worker* enter_slow(process* self, const char* what, carrier*& c);
  carrier* c_;
};
/// A fresh, unpublished timer node of the leased worker, due at deadline_ns
/// (now_ns: the runtime's clock, read by the caller; or -1: deadline_ns is
/// a delay, from the clock read here).
timer_ref timer_begin(timer_lease& l, std::int64_t now_ns, std::int64_t deadline_ns);
/// Publish it (its message set): delivered to dest when due, or to whoever
/// holds dest_name then, when dest_name is not empty.
void timer_commit(timer_lease& l, timer_ref ref, pid dest, std::string_view dest_name);
/// Give back a node from timer_begin that was not committed.
void timer_abandon(timer_lease& l, timer_ref ref) noexcept;
/// A timer that is due already: a fresh id, no node (cancel_timer and
/// read_timer answer nullopt, as for a timer that has fired).
timer_ref timer_fired_at_once(process* self);
/// The runtime's clock reading for self's runtime.
std::int64_t now_ns_of(process* self) noexcept;
/// whereis on self's runtime.
std::optional<pid> whereis_in(process* self, std::string_view name);

template <class M>
inline constexpr bool timer_inline_v = sizeof(M) <= timer_node::inline_size && alignof(M) <= 16 &&
                                       std::is_nothrow_move_constructible_v<M>;
template <class M>
inline constexpr timer_ops inline_timer_ops{
    [](void* s, std::uint64_t serial) {
      M* v = std::launder(static_cast<M*>(s));
      envelope* e = make_envelope<M>(serial, std::move(*v));
      v->~M();
      return e;
    },
    std::is_trivially_destructible_v<M> ? nullptr
                                        : +[](void* s) noexcept { std::launder(static_cast<M*>(s))->~M(); }};

/// The delay in nanoseconds; bad_argument naming the delay for anything
/// outside 0 .. max_timer_delay, NaN and the infinities included.  Compared
/// in long double, so no unit's max() or min() can overflow.
template <class Rep, class Period>
std::int64_t checked_delay(std::chrono::duration<Rep, Period> d, const char* what) {
  const long double ms = std::chrono::duration<long double, std::milli>(d).count();
  if (!(ms >= 0 && ms <= static_cast<long double>(max_timer_delay.count())))  // NaN fails both
    throw bad_argument(std::string("ember::") + what + ": delay = " +
                       (ms != ms ? std::string("NaN") : std::to_string(static_cast<double>(ms))) +
                       " ms: must be between 0 and " + std::to_string(max_timer_delay.count()) + " ms");
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();  // in range: no overflow
}

/// Start a timer due at deadline_ns (on the runtime's clock, which read
/// now_ns; -1: deadline_ns is a delay from now) delivering the message M
/// built by make(ref); `due` says it is due already: then it is delivered
/// at once.
template <class M, class Make>
timer_ref start_at(process* self, const char* what, pid dest, std::string_view name, std::int64_t now_ns,
                   std::int64_t deadline_ns, bool due, Make&& make) {
  if (due) {
    timer_ref ref = timer_fired_at_once(self);
    if (name.empty()) ember::send(dest, make(ref));
    else if (std::optional<pid> to = whereis_in(self, name)) ember::send(*to, make(ref));
    return ref;
  }
  timer_ref ref;
  {
    timer_lease lease(self, what);
    ref = timer_begin(lease, now_ns, deadline_ns);
    try {
      if constexpr (timer_inline_v<M>) {
        ::new (static_cast<void*>(ref.node->storage)) M(make(ref));
        ref.node->ops = &inline_timer_ops<M>;
      } else {
        ref.node->msg = make_envelope<M>(dest.serial(), make(ref));
      }
    } catch (...) {
      timer_abandon(lease, ref);
      throw;
    }
    timer_commit(lease, ref, dest, name);
  }
  return ref;
}

/// Start a timer delivering the message M built by make(ref) after d.
template <class M, class Rep, class Period, class Make>
timer_ref start(const char* what, pid dest, std::string_view name, std::chrono::duration<Rep, Period> d, Make&& make) {
  process* self = enter_runtime(what);
  const std::int64_t ns = checked_delay(d, what);
  return start_at<M>(self, what, dest, name, -1, ns, ns == 0, std::forward<Make>(make));
}
/// The same at an absolute time on the runtime's clock, at most
/// max_timer_delay ahead (a time passed already delivers at once).
template <class M, class Make>
timer_ref start(const char* what, pid dest, std::string_view name, time_point at, Make&& make) {
  process* self = enter_runtime(what);
  const std::int64_t now = now_ns_of(self);
  const std::int64_t t = at.time_since_epoch().count();
  if (t > now && t - now > std::chrono::duration_cast<std::chrono::nanoseconds>(max_timer_delay).count())
    throw bad_argument(std::string("ember::") + what + ": the time is more than " +
                       std::to_string(max_timer_delay.count()) + " ms ahead");
  return start_at<M>(self, what, dest, name, now, t, t <= now, std::forward<Make>(make));
}
}  // namespace detail

/// Deliver msg to dest after delay.
template <class Rep, class Period, class T>
timer_ref send_after(pid dest, std::chrono::duration<Rep, Period> delay, T&& msg) {
  using V = std::remove_cvref_t<T>;
  return detail::start<V>("send_after", dest, {}, delay, [&](timer_ref) -> V { return std::forward<T>(msg); });
}
/// Deliver msg to whatever process holds `name` when the timer is due.
template <class Rep, class Period, class T>
timer_ref send_after(std::string_view name, std::chrono::duration<Rep, Period> delay, T&& msg) {
  if (name.empty()) throw bad_argument("ember::send_after: the name is empty");
  using V = std::remove_cvref_t<T>;
  return detail::start<V>("send_after", pid{}, name, delay, [&](timer_ref) -> V { return std::forward<T>(msg); });
}
/// Deliver timeout<T>{ref, msg} to dest after delay.
template <class Rep, class Period, class T>
timer_ref start_timer(pid dest, std::chrono::duration<Rep, Period> delay, T&& msg) {
  using V = std::remove_cvref_t<T>;
  return detail::start<timeout<V>>("start_timer", dest, {}, delay,
                                   [&](timer_ref r) { return timeout<V>{r, V(std::forward<T>(msg))}; });
}
template <class Rep, class Period, class T>
timer_ref start_timer(std::string_view name, std::chrono::duration<Rep, Period> delay, T&& msg) {
  if (name.empty()) throw bad_argument("ember::start_timer: the name is empty");
  using V = std::remove_cvref_t<T>;
  return detail::start<timeout<V>>("start_timer", pid{}, name, delay,
                                   [&](timer_ref r) { return timeout<V>{r, V(std::forward<T>(msg))}; });
}

/// Deliver msg to dest at `at` on the runtime's clock (ember::now()); a time
/// already passed delivers at once.
template <class T>
timer_ref send_after(pid dest, time_point at, T&& msg) {
  using V = std::remove_cvref_t<T>;
  return detail::start<V>("send_after", dest, {}, at, [&](timer_ref) -> V { return std::forward<T>(msg); });
}
template <class T>
timer_ref send_after(std::string_view name, time_point at, T&& msg) {
  if (name.empty()) throw bad_argument("ember::send_after: the name is empty");
  using V = std::remove_cvref_t<T>;
  return detail::start<V>("send_after", pid{}, name, at, [&](timer_ref) -> V { return std::forward<T>(msg); });
}
/// Deliver timeout<T>{ref, msg} to dest at `at` on the runtime's clock.
template <class T>
timer_ref start_timer(pid dest, time_point at, T&& msg) {
  using V = std::remove_cvref_t<T>;
  return detail::start<timeout<V>>("start_timer", dest, {}, at,
                                   [&](timer_ref r) { return timeout<V>{r, V(std::forward<T>(msg))}; });
}
template <class T>
timer_ref start_timer(std::string_view name, time_point at, T&& msg) {
  if (name.empty()) throw bad_argument("ember::start_timer: the name is empty");
  using V = std::remove_cvref_t<T>;
  return detail::start<timeout<V>>("start_timer", pid{}, name, at,
                                   [&](timer_ref r) { return timeout<V>{r, V(std::forward<T>(msg))}; });
}

/// Cancel a pending timer: the time it had left, or nullopt if it was not
/// pending (fired, cancelled, unknown).  After a non-empty result the
/// message never arrives.
std::optional<std::chrono::milliseconds> cancel_timer(const timer_ref& ref);
/// The time a pending timer has left, or nullopt.
[[nodiscard]] std::optional<std::chrono::milliseconds> read_timer(const timer_ref& ref);

}  // namespace ember
