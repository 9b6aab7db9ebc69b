// ember/gen_server/server_loop.hpp — the inside of a gen_server process:
// the wire format of its requests, its state, the loop that hands each
// message to a handler, how it ends (terminate, owed replies, the report),
// and the process entry that boots it (name, object, init, acknowledgement).
//
// A server's life, step by step:
//  1. boot (first entry): take the name (already_started if taken), build
//     the object in the process heap, run init; acknowledge the starter
//     (ok, failed with a reason, already started, ignore).  A failed or
//     ignored start releases the name and ends the process `normal`;
//  2. serve (each entry): a continuation first, then each queued message —
//     calls, casts, stop requests, the idle timeout, the parent's trapped
//     exit, and other messages (`info`, or the catch-all) — until the
//     mailbox is empty: then arm the idle timeout, if any, and hibernate;
//  3. end: run terminate (at most once; an exception or exit out of it
//     becomes the final reason, and both reasons are reported), answer
//     every call still owed with call_exited, log the error report for an
//     abnormal reason (server, reason, last message, client), and exit.
//  A kill, or an exit signal the server does not trap, skips terminate.
//
// Threads: the server's own process (worker only).  Ownership: the state
// lives in the server's heap and dies with the process.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ember/detail/call.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/errors.hpp"
#include "ember/gen_server/result.hpp"
#include "ember/heap.hpp"
#include "ember/names.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/timer.hpp"

namespace ember::gen_server::detail {

template <class T>
struct is_call_reply : std::false_type {};
template <class S, class R>
struct is_call_reply<call_reply<S, R>> : std::true_type {};

template <class S, class Req>
auto invoke_call(S& s, Req&& req, const from& f) {
  if constexpr (requires { s.handle_call(std::forward<Req>(req), f); }) return s.handle_call(std::forward<Req>(req), f);
  else return s.handle_call(std::forward<Req>(req));
}

template <class T>
struct reply_of {
  using type = T;
};
template <class S, class R>
struct reply_of<call_reply<S, R>> {
  using type = R;
};

template <class S, class Req>
struct call_traits {
  using result = decltype(invoke_call(std::declval<S&>(), std::declval<Req>(), std::declval<const from&>()));
  static_assert(!std::is_void_v<result>, "handle_call must return the reply (or a call_reply<R>)");
  static_assert(!std::is_same_v<result, next<S>>,
                "handle_call must return the reply or a call_reply<R> (which names the reply type R)");
  using reply = typename reply_of<result>::type;
};

/// The server type a request was made for, and the reply a call gets.
template <class S, class Req>
using reply_t = typename call_traits<S, std::remove_cvref_t<Req>>::reply;

template <class Req>
struct request_body {
  ember::detail::request_head head;
  Req req;
};

struct stop_body {
  ember::detail::request_head head;
  exit_reason reason;
};

/// How a start ended, as the new server tells its starter.
enum class start_status : int { ok = 0, failed = 1, already_started = 2, ignored = 3, timed_out = 4 };

struct start_ack {
  std::uint64_t ref;
  start_status status;
  exit_reason reason;
  ember::pid existing;
};

struct timeout_tick {
  std::uint64_t seq;
};

/// Everything a running server keeps besides its object.
template <class S>
struct state {
  std::optional<S> obj;
  ember::pid parent;
  std::vector<from> deferred;   // calls left unanswered by their handler
  std::optional<from> current;  // the call being handled
  std::unique_ptr<continuation<S>> cont;
  std::optional<exit_reason> stopping;
  std::optional<std::int64_t> timeout_ns;  // the last handler's after(t)
  bool timeout_at = false;                 // ... given as a time_point: timeout_ns is when
  std::unique_ptr<timeout_payload<S>> timeout_msg;  // its after(t, msg)'s message, if any
  std::int64_t timeout_deadline = 0;       // when the armed timeout is due (runtime clock)
  ember::timer_ref idle_timer;
  bool idle_armed = false;  // idle_timer runs (a delay of 0 delivers at once: its ref has no node)
  std::uint64_t timeout_seq = 0;
  const char* last_message = "none";  // a mangled type name, or a word
  std::string name;
  bool ended = false;       // end() ran: the exit is under way
  bool terminated = false;  // terminate has run (it runs at most once)

  void apply(next<S>&& n) {
    if (n.ignores()) throw bad_argument("ember::gen_server: ignore() is a result of init only");
    if (n.stops()) stopping = *n.stop_reason();
    timeout_ns = n.timeout_ns();
    timeout_at = n.timeout_at();
    timeout_msg = n.take_timeout_message();
    if (auto c = n.take_continuation()) cont = std::move(c);
  }
};

}  // namespace ember::gen_server::detail

// The behaviour's own messages are system messages: a mailbox bound never
// drops a stop request, the start acknowledgement (the starter may be
// bounded) or the server's idle timeout.
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::stop_body> = true;
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::start_ack> = true;
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::timeout_tick> = true;

namespace ember::gen_server::detail {

template <class T>
inline constexpr bool is_types = false;
template <class... T>
inline constexpr bool is_types<types<T...>> = true;

template <class S>
constexpr bool has_terminate = requires(S& s, const exit_reason& r) { s.terminate(r); };
template <class S>
constexpr bool has_catch_all = requires(S& s, any_message& m) { s.handle_info(m); };

/// Send v as the answer to f (the type must be the one the caller expects).
template <class R>
void send_reply(const from& f, R&& v) {
  using V = std::remove_cvref_t<R>;
  using body = ember::detail::reply_body<V>;
  static_assert(ember::detail::head_layout_ok<body>, "reply type too strictly aligned");
  if (f.reply_type != ember::detail::type_tag<V>())
    throw bad_argument("ember::gen_server::reply: the caller expects another type than " +
                       ember::detail::demangle(typeid(V)));
  ember::detail::envelope* e = ember::detail::make_envelope<body>(
      f.caller.serial(), body{ember::detail::reply_head{f.ref, ember::detail::reply_status::ok, {}},
                              V(std::forward<R>(v))});
  e->tag = ember::detail::reply_tag();
  ember::detail::deliver_reply(f.caller, f.ref, e);
}

template <class S, class Req>
void dispatch_call(void* st_, ember::detail::envelope* e) {
  auto& st = *static_cast<state<S>*>(st_);
  auto& b = ember::detail::body_of<request_body<Req>>(e);
  const from f{b.head.caller, b.head.ref, b.head.reply_type};
  st.last_message = typeid(Req).name();
  st.current = f;
  auto result = invoke_call(*st.obj, std::move(b.req), f);
  if constexpr (is_call_reply<decltype(result)>::value) {
    if (result.value()) {
      st.current.reset();
      send_reply(f, std::move(*result.value()));
    }
    st.apply(std::move(result.following()));
    if (st.current) {  // no answer yet: later, by reply(), or the exit's notice
      st.current.reset();
      st.deferred.push_back(f);
    }
  } else {
    st.current.reset();
    send_reply(f, std::move(result));
  }
}

template <class S, class M>
void dispatch_cast(void* st_, ember::detail::envelope* e) {
  auto& st = *static_cast<state<S>*>(st_);
  auto& m = ember::detail::body_of<request_body<M>>(e).req;
  st.last_message = typeid(M).name();
  using R = decltype(st.obj->handle_cast(std::move(m)));
  if constexpr (std::is_void_v<R>) st.obj->handle_cast(std::move(m));
  else st.apply(st.obj->handle_cast(std::move(m)));
}

template <class S, class T>
void run_info(state<S>& st, T&& v) {
  st.last_message = typeid(std::remove_cvref_t<T>).name();
  using R = decltype(st.obj->handle_info(std::forward<T>(v)));
  if constexpr (std::is_void_v<R>) st.obj->handle_info(std::forward<T>(v));
  else st.apply(st.obj->handle_info(std::forward<T>(v)));
}

/// Try each listed info type against e; true when one took it.
template <class S, class... T>
bool dispatch_info(state<S>& st, ember::detail::envelope* e, types<T...>*) {
  return ((e->tag == ember::detail::type_tag<T>() ? (run_info(st, std::move(ember::detail::payload<T>(e))), true)
                                                  : false) ||
          ...);
}

/// A message the server neither lists nor catches: logged (its type,
/// demangled) and dropped.
void log_unexpected(ember::detail::process* self, const std::string& server, const std::type_info& type);
/// The error report of a server ending with an abnormal reason: the
/// server, the reason, the last message's type, the client whose call was
/// being handled (null: none), and terminate's own exit when it ended
/// with another reason (null: it did not).
void log_crash(ember::detail::process* self, const std::string& server, const char* last_message,
               const ember::pid& client, const exit_reason& r, const exit_reason* terminate_exit) noexcept;
/// The server no longer takes replies to its request ref (gen_server/request.hpp).
void forget_request(ember::detail::process* self, std::uint64_t ref) noexcept;
/// Answer every call in `calls` with call_exited(r) (those still waited for).
void notify_exit(const std::vector<from>& calls, const exit_reason& r) noexcept;
/// Take the next envelope from self's mailbox without waiting (nullptr: empty).
ember::detail::envelope* take_next(ember::detail::process* self);
using ember::detail::reason_of_current_exception;
/// The pid registered under name (null pid: no such name).
inline ember::pid resolve(std::string_view name) { return ember::whereis(name).value_or(ember::pid{}); }

/// A registered name (the runtime's name table) seen as a via_name, so a
/// server takes, and gives back, either kind of name in one way.  Process
/// context.
class local_name final : public ember::via_name::service {
public:
  explicit local_name(std::string n) : name_(std::move(n)) {}
  [[nodiscard]] ember::pid whereis() const override { return resolve(name_); }
  [[nodiscard]] std::optional<ember::pid> register_name(ember::pid p) const override {
    try {
      ember::register_name(name_, p);
      return std::nullopt;
    } catch (const registration_error&) {
      return whereis();  // the null pid if the holder has gone meanwhile
    }
  }
  bool unregister_name(ember::pid p) const override { return whereis() == p && ember::unregister_name(name_); }
  [[nodiscard]] std::string to_string() const override { return name_; }

private:
  std::string name_;
};

inline bool reason_is_clean(const exit_reason& r) {
  return r.is_normal() || r.what() == exit_reason::kind::shutdown;
}

/// End the server (step 3 at the top of this file).  st.stopping then
/// holds the final reason; the entry returns and the process exits with it.
/// Never throws.
template <class S>
void end(state<S>& st, ember::detail::process* self, exit_reason r, bool run_terminate, bool report) noexcept {
  std::optional<exit_reason> own;  // terminate's own exit, if it ended another way
  if (run_terminate && !st.terminated) {
    st.terminated = true;
    if constexpr (has_terminate<S>) {
      try {
        st.obj->terminate(r);
      } catch (ember::detail::exit_exception& x) {
        // exit() (or a kill) inside terminate: that is the final reason.
        own = std::move(x.reason);
      } catch (...) {
        own = reason_of_current_exception();
      }
    }
  }
  const ember::pid client = st.current ? st.current->caller : ember::pid{};
  if (st.current) st.deferred.push_back(*st.current);
  st.current.reset();
  // Killed during terminate (a supervisor's shutdown time ran out): no report.
  const bool killed = own && own->what() == exit_reason::kind::killed;
  if (own && !(*own == r)) {
    if (!killed && (report || !reason_is_clean(*own))) log_crash(self, st.name, st.last_message, client, r, &*own);
    r = std::move(*own);
  } else if (report) {
    log_crash(self, st.name, st.last_message, client, r, nullptr);
  }
  notify_exit(st.deferred, r);
  st.deferred.clear();
  st.ended = true;
  st.stopping = std::move(r);
}

/// Arm the idle timeout: the first leg at now + t, or the next leg of a
/// timeout longer than one timer can wait (max_timer_delay).
template <class S>
void arm_idle(state<S>& st, ember::detail::process* self, bool fresh) {
  const std::int64_t now = self->rt->now_ns();
  if (fresh) st.timeout_deadline = st.timeout_at ? *st.timeout_ns : now + *st.timeout_ns;
  constexpr std::int64_t leg_max = std::int64_t(max_timer_delay.count()) * 1000000;
  const std::int64_t left = st.timeout_deadline > now ? st.timeout_deadline - now : 0;
  st.idle_armed = true;
  st.idle_timer = ember::send_after(self->self_pid(), std::chrono::nanoseconds(left < leg_max ? left : leg_max),
                                    timeout_tick{st.timeout_seq});
}

/// One step of a server's life, called each time its process (re)enters
/// the entry: runs handlers until the mailbox is empty (false: hibernate)
/// or the server ends (true: end() ran).
template <class S>
bool serve(state<S>& st, ember::detail::process* self) {
  for (;;) {
    if (st.stopping) {
      exit_reason r = *st.stopping;
      const bool report = !reason_is_clean(r);
      end(st, self, std::move(r), true, report);
      return true;
    }
    if (st.cont) {
      auto c = std::move(st.cont);
      st.last_message = "continue";
      st.apply(c->run(*st.obj));
      continue;
    }
    ember::detail::envelope* e;
    if constexpr (requires(S& s) { s.take_message(self); }) {
      // A server that orders its own messages (the supervisors: exit
      // signals first; see detail/message_lanes.hpp).
      e = st.obj->take_message(self);
    } else {
      e = take_next(self);
    }
    if (!e) {
      if (st.timeout_ns && !st.idle_armed) arm_idle(st, self, true);
      return false;  // hibernate until a message comes
    }
    ember::detail::envelope_guard guard{e};
    if (e->tag == ember::detail::type_tag<timeout_tick>()) {
      // The idle timeout's own message: not a message that cancels it.
      if (ember::detail::payload<timeout_tick>(e).seq == st.timeout_seq && st.idle_armed) {
        st.idle_timer = {};
        st.idle_armed = false;
        if (self->rt->now_ns() < st.timeout_deadline) {
          arm_idle(st, self, false);  // a long timeout: its next leg
        } else {
          st.timeout_ns.reset();
          ++st.timeout_seq;
          if (auto m = std::move(st.timeout_msg)) {
            st.last_message = m->type_name();
            st.apply(m->run(*st.obj));
          } else if constexpr (requires { st.obj->handle_info(server_timeout{}); }) {
            run_info(st, server_timeout{});
          }
        }
      }
      ember::detail::spend_in(self, 1);
      continue;
    }
    if (st.idle_armed) {  // a message came: the timeout is off
      ember::cancel_timer(st.idle_timer);
      st.idle_timer = {};
      st.idle_armed = false;
      ++st.timeout_seq;
    }
    st.timeout_ns.reset();
    st.timeout_msg.reset();
    if (e->tag == ember::detail::request_tag()) {
      auto& h = ember::detail::head_of<ember::detail::request_head>(e);
      if (h.kind == ember::detail::request_kind::stop) {
        st.stopping = ember::detail::body_of<stop_body>(e).reason;
      } else if (h.server_type != ember::detail::type_tag<S>()) {
        if (h.kind == ember::detail::request_kind::call)
          ember::detail::fail_request(h, ember::detail::reply_status::bad_request,
                                      exit_reason::error("a request for another server type (" +
                                                         ember::detail::demangle(h.type_name) + ") reached " +
                                                         ember::detail::demangle(typeid(S))));
        else log_unexpected(self, st.name, *e->ops->type);
      } else {
        h.dispatch(&st, e);
      }
    } else if (e->tag == ember::detail::type_tag<exit_message>() &&
               ember::detail::payload<exit_message>(e).from == st.parent && !st.parent.is_null()) {
      // The parent's exit signal, trapped: stop with its reason (terminate runs).
      exit_reason r = ember::detail::payload<exit_message>(e).reason;
      end(st, self, std::move(r), true, false);
      return true;
    } else if (e->tag == ember::detail::reply_tag()) {
      // A reply to a request this server sent with send_request: its
      // catch-all takes it (check_response tells which); it is consumed
      // here either way.
      if constexpr (has_catch_all<S>) {
        any_message m(e);
        st.last_message = "a response";
        using R = decltype(st.obj->handle_info(m));
        if constexpr (std::is_void_v<R>) st.obj->handle_info(m);
        else st.apply(st.obj->handle_info(m));
      } else {
        log_unexpected(self, st.name, *e->ops->type);
      }
      forget_request(self, ember::detail::head_of<ember::detail::reply_head>(e).ref);
    } else {
      bool taken = false;
      if constexpr (requires { typename S::info; }) {
        static_assert(is_types<typename S::info>, "S::info must be ember::gen_server::types<...>");
        taken = dispatch_info(st, e, static_cast<typename S::info*>(nullptr));
      }
      if (!taken) {
        if constexpr (has_catch_all<S>) {
          any_message m(e);
          st.last_message = e->ops->type->name();
          using R = decltype(st.obj->handle_info(m));
          if constexpr (std::is_void_v<R>) st.obj->handle_info(m);
          else st.apply(st.obj->handle_info(m));
        } else {
          log_unexpected(self, st.name, *e->ops->type);
        }
      }
    }
    ember::detail::spend_in(self, 1);
  }
}

/// The process entry of a server.  First call: register the name, build
/// the object, run init, acknowledge the starter.  Every call (first, and
/// after each hibernation): serve what is in the mailbox.
template <class S, class... A>
struct entry {
  struct boot_data {
    ember::pid starter;
    std::uint64_t ref;
    ember::via_name name;  // empty: no name
    std::tuple<A...> args;
  };
  std::unique_ptr<boot_data> boot_;
  ember::heap_ptr<state<S>> st;  // in the server's heap

  void operator()() {
    ember::detail::process* self = ember::detail::this_process();
    if (!st && !boot(self)) return;  // init failed or name taken: the process ends normally
    try {
      ember::detail::spend_in(self, 0);  // a kill that came while it hibernated
      if (!serve(*st, self)) {
        self->hibernate_on_return = true;
        return;
      }
    } catch (ember::detail::exit_exception& e) {
      if (st->ended) throw;
      if (self->kill_pending.load(std::memory_order_relaxed)) {
        // Killed, or an exit signal it does not trap: no terminate.
        if (st->current) st->deferred.push_back(*st->current);
        notify_exit(st->deferred, e.reason);
        throw;
      }
      // exit() in a handler: terminate runs.
      const bool report = !reason_is_clean(e.reason);
      end(*st, self, std::move(e.reason), true, report);
    } catch (...) {
      end(*st, self, reason_of_current_exception(), true, true);
    }
    // Ended: exit with the final reason without unwinding by exception.
    ember::detail::set_exit_on_return(std::move(*st->stopping));
  }

  bool boot(ember::detail::process* self) {
    boot_data& b = *boot_;
    auto ack = [&](start_status status, exit_reason r, ember::pid existing) {
      ember::send(b.starter, start_ack{b.ref, status, std::move(r), existing});
    };
    if (b.name) {
      if (std::optional<ember::pid> holder = b.name.register_name(self->self_pid())) {
        ack(start_status::already_started, exit_reason::error("already started"), *holder);
        return false;
      }
    }
    auto fail = [&](exit_reason r) {
      st.reset();
      if (b.name) b.name.unregister_name(self->self_pid());
      ack(start_status::failed, std::move(r), {});
      return false;
    };
    try {
      st = ember::make_on_heap<state<S>>();
      st->parent = b.starter;
      if (b.name) st->name = b.name.to_string();
      if constexpr (std::uses_allocator_v<S, std::pmr::polymorphic_allocator<std::byte>>) {
        // A state that takes a std::pmr allocator gets the heap's.
        std::apply(
            [&](auto&... a) {
              std::apply([&](auto&&... ca) { st->obj.emplace(std::forward<decltype(ca)>(ca)...); },
                         std::uses_allocator_construction_args<S>(ember::heap_allocator(), std::move(a)...));
            },
            b.args);
      } else {
        std::apply([&](auto&... a) { st->obj.emplace(std::move(a)...); }, b.args);
      }
      if constexpr (requires(S& s) { s.init(); }) {
        using R = decltype(st->obj->init());
        if constexpr (std::is_void_v<R>) {
          st->obj->init();
        } else {
          next<S> n = st->obj->init();
          if (n.stops()) return fail(*n.stop_reason());
          if (n.ignores()) {
            st.reset();
            if (b.name) b.name.unregister_name(self->self_pid());
            ack(start_status::ignored, exit_reason::error("ignore"), {});
            return false;
          }
          st->apply(std::move(n));
        }
      }
    } catch (ember::detail::exit_exception& x) {
      // Killed while starting (or an exit signal it does not trap): the
      // starter's monitor tells it.  exit(r) called by init itself is a
      // failed init: start returns r.
      if (self->kill_pending.load(std::memory_order_acquire)) throw;
      return fail(std::move(x.reason));
    } catch (...) {
      return fail(reason_of_current_exception());
    }
    ack(start_status::ok, {}, {});
    boot_.reset();
    return true;
  }
};

}  // namespace ember::gen_server::detail
