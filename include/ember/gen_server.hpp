// ember/gen_server.hpp — OTP's gen_server: a process that owns a C++ object
// and answers typed requests.
//
//   struct counter : ember::gen_server::behaviour<counter> {
//     long n = 0;
//     long handle_call(inc, const ember::gen_server::from&) { return ++n; }   // reply type: long
//     void handle_cast(reset) { n = 0; }
//     using info = ember::gen_server::types<ember::down>;                     // other messages it takes
//     void handle_info(const ember::down& d) { ... }
//   };
//   auto s = ember::gen_server::start<counter>();            // in a process
//   long v = ember::gen_server::call(s.server(), inc{});      // checked at compile time
//
// The contract (every callback, result and failure) is the table in
// docs/behaviours.md; in short:
//  - start/start_link construct the object inside the new process from the
//    arguments, then run init() if it has one.  A constructor or init that
//    throws, or an init that returns stop_with(r), makes start return that
//    reason, and nothing is left running (the process ends normally, so a
//    link made by start_link does not kill the starter).  An init that
//    returns ignore() makes start return ignored() (OTP's `ignore`), the
//    same way.  A taken name makes start return already_started with the
//    holder's pid.  A name is a
//    registered name (name{"n"}) or a via_name (ember::via(registry, key)):
//    the new process takes it before its object is built and gives it back
//    if init fails; a server<S> made from either looks it up at each use.
//  - call(server, req[, timeout]) returns what handle_call(req, from) returns
//    (or the R of its call_reply<R>).  Failures throw: call_timeout (default
//    5000 ms; a reply that comes later is dropped, never seen), call_noproc
//    (no such process or name), call_exited (the server exited first; its
//    reason), call_self (a server calling itself), bad_request (a server of
//    another type).
//  - cast(server, msg) sends and returns; handle_cast(msg) runs.
//  - Messages of the types listed in `using info = types<...>` go to
//    handle_info; others are logged and dropped.  A trapped exit signal from
//    the starter (the parent) stops the server with that reason instead.
//  - Handlers may return a `next` (noreply(), .after(t), .then(c),
//    .hibernate(), stop_with(r)) and handle_call a call_reply<R>
//    (reply_with(v), noreply() to answer later with reply(from, v),
//    stop_with(r, v)).  after(t): handle_info(server_timeout) if no message
//    comes within t.  then(c): handle_continue(c) runs before any message.
//  - terminate(reason), if defined, runs when a handler returns stop, when a
//    handler throws (reason: the error), and when the parent's exit signal
//    is trapped — not when the server is killed without trapping exits.
//  - Between messages the server holds no stack: its process hibernates
//    (the stack goes back to the pool) and takes one when a message comes.
//
// Threads: start/call/stop in process context; cast, reply from any
// process.  Ownership: the server object lives in the server process and
// dies with it.
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
#include "ember/detail/start_sync.hpp"
#include "ember/errors.hpp"
#include "ember/heap.hpp"
#include "ember/names.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/spawn.hpp"
#include "ember/timer.hpp"

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
/// No timeout.
inline constexpr std::chrono::milliseconds infinity{-1};

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
}  // namespace detail

/// What the server does after a handler: go on (optionally with a timeout
/// or a continuation) or stop with a reason.
template <class S>
class next {
public:
  next() = default;
  /// If no message comes within t, handle_info(server_timeout{}) runs.
  next after(std::chrono::milliseconds t) && {
    timeout_ = t;
    return std::move(*this);
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
  /// init() returned ignore(): nothing starts (start returns ignored()).
  [[nodiscard]] bool ignores() const noexcept { return ignore_; }
  [[nodiscard]] const std::optional<exit_reason>& stop_reason() const noexcept { return stop_; }
  [[nodiscard]] const std::optional<std::chrono::milliseconds>& timeout() const noexcept { return timeout_; }
  std::unique_ptr<detail::continuation<S>> take_continuation() noexcept { return std::move(cont_); }

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
  bool ignore_ = false;
  std::optional<std::chrono::milliseconds> timeout_;
  std::unique_ptr<detail::continuation<S>> cont_;
};

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
  call_reply after(std::chrono::milliseconds t) && {
    next_ = std::move(next_).after(t);
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
  /// From init only: do not start (OTP's `ignore`).  start returns false
  /// with ignored(); the process ends normally and gives its name back.
  static next ignore() { return next::ignoring(); }
  /// Reply v, then stop with reason.
  template <class R>
  static call_reply<std::decay_t<R>> stop_with(exit_reason r, R&& v) {
    return call_reply<std::decay_t<R>>(std::forward<R>(v), next::stopping(std::move(r)));
  }
};

namespace detail {

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

struct start_ack {
  std::uint64_t ref;
  int status;  // 0 ok, 1 failed, 2 already started, 3 ignored
  exit_reason reason;
  ember::pid existing;
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
  std::optional<std::chrono::milliseconds> timeout;
  ember::timer_ref idle_timer;
  std::uint64_t timeout_seq = 0;
  const char* last_message = "none";
  std::string name;
  bool ended = false;  // end() ran: the exit is under way

  void apply(next<S>&& n) {
    if (n.stops()) stopping = *n.stop_reason();
    timeout = n.timeout();
    if (auto c = n.take_continuation()) cont = std::move(c);
  }
};

struct timeout_tick {
  std::uint64_t seq;
};
}  // namespace detail
}  // namespace ember::gen_server
// The behaviour's own messages are system messages: a mailbox bound never
// drops a stop request, the start acknowledgement (the starter may be
// bounded) or the server's idle timeout.
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::stop_body> = true;
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::start_ack> = true;
template <>
inline constexpr bool ember::detail::system_message_v<ember::gen_server::detail::timeout_tick> = true;
namespace ember::gen_server {
namespace detail {

template <class T>
inline constexpr bool is_types = false;
template <class... T>
inline constexpr bool is_types<types<T...>> = true;

template <class S>
constexpr bool has_terminate = requires(S& s, const exit_reason& r) { s.terminate(r); };

/// Send v as the answer to f (the type must be the one the caller expects).
template <class R>
void send_reply(const from& f, R&& v) {
  using V = std::remove_cvref_t<R>;
  using body = ember::detail::reply_body<V>;
  static_assert(ember::detail::head_layout_ok<body>, "reply type too strictly aligned");
  if (f.reply_type != ember::detail::type_tag<V>())
    throw bad_argument(std::string("ember::gen_server::reply: the caller expects another type than ") +
                       typeid(V).name());
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
  st.last_message = typeid(T).name();
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

void log_unexpected(ember::detail::process* self, const std::string& server, const void* tag);
void log_crash(ember::detail::process* self, const std::string& server, const char* last_message,
               const exit_reason& r);
/// Answer every call in `calls` with call_exited(r) (those still waited for).
void notify_exit(const std::vector<from>& calls, const exit_reason& r) noexcept;
/// Take the next envelope from self's mailbox without waiting (nullptr: empty).
ember::detail::envelope* take_next(ember::detail::process* self);
/// Wait for the reply to ref (nullptr: the timeout ran out).
ember::detail::envelope* await_reply(ember::detail::process* self, std::uint64_t ref, std::int64_t timeout_ns);
/// The pid registered under name (null pid: no such name).
inline ember::pid resolve(std::string_view name) { return ember::whereis(name).value_or(ember::pid{}); }
[[noreturn]] void throw_call_failure(const char* what, ember::detail::envelope* e, const ember::pid& to);

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

/// One step of a server's life, called each time its process (re)enters
/// the entry: runs handlers until the mailbox is empty (false: hibernate)
/// or the server ends (true: end() ran).
template <class S>
bool serve(state<S>& st, ember::detail::process* self);

/// End the server: terminate (if run_terminate), answer the calls it owes,
/// report.  st.stopping then holds the final reason (terminate may change
/// it); the entry returns and the process exits with it.
template <class S>
void end(state<S>& st, ember::detail::process* self, exit_reason r, bool run_terminate, bool report) {
  if (run_terminate) {
    if constexpr (has_terminate<S>) {
      try {
        st.obj->terminate(r);
      } catch (const std::exception& e) {
        r = exit_reason::error(std::string("terminate threw: ") + e.what());
        report = true;
      }
    }
  }
  if (st.current) st.deferred.push_back(*st.current);
  notify_exit(st.deferred, r);
  if (report) log_crash(self, st.name, st.last_message, r);
  st.ended = true;
  st.stopping = std::move(r);
}

inline bool reason_is_clean(const exit_reason& r) {
  return r.is_normal() || r.what() == exit_reason::kind::shutdown;
}

template <class S>
bool serve(state<S>& st, ember::detail::process* self) {
  for (;;) {
    if (st.stopping) {
      exit_reason r = *st.stopping;
      end(st, self, std::move(r), true, !reason_is_clean(*st.stopping));
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
      if (st.timeout && !st.idle_timer.node) {
        st.idle_timer = ember::send_after(self->self_pid(), *st.timeout, timeout_tick{++st.timeout_seq});
      }
      return false;  // hibernate until a message comes
    }
    ember::detail::envelope_guard guard{e};
    if (st.idle_timer.node) {  // a message came: the timeout is off
      ember::cancel_timer(st.idle_timer);
      st.idle_timer = {};
      if (e->tag != ember::detail::type_tag<timeout_tick>()) ++st.timeout_seq;
    }
    st.timeout.reset();
    if (e->tag == ember::detail::request_tag()) {
      auto& h = ember::detail::head_of<ember::detail::request_head>(e);
      if (h.kind == ember::detail::request_kind::stop) {
        st.stopping = ember::detail::body_of<stop_body>(e).reason;
      } else if (h.server_type != ember::detail::type_tag<S>()) {
        if (h.kind == ember::detail::request_kind::call)
          ember::detail::fail_request(h, ember::detail::reply_status::bad_request,
                                      exit_reason::error(std::string("a request for another server type (") +
                                                         h.type_name + ") reached " + typeid(S).name()));
        else log_unexpected(self, st.name, e->tag);
      } else {
        h.dispatch(&st, e);
      }
    } else if (e->tag == ember::detail::type_tag<timeout_tick>()) {
      if (ember::detail::payload<timeout_tick>(e).seq == st.timeout_seq) {
        st.idle_timer = {};
        if constexpr (requires { st.obj->handle_info(server_timeout{}); }) run_info(st, server_timeout{});
      }
    } else if (e->tag == ember::detail::type_tag<exit_message>() &&
               ember::detail::payload<exit_message>(e).from == st.parent && !st.parent.is_null()) {
      // The parent's exit signal, trapped: stop with its reason (terminate runs).
      exit_reason r = ember::detail::payload<exit_message>(e).reason;
      end(st, self, std::move(r), true, false);
      return true;
    } else {
      bool taken = false;
      if constexpr (requires { typename S::info; }) {
        static_assert(is_types<typename S::info>, "S::info must be ember::gen_server::types<...>");
        taken = dispatch_info(st, e, static_cast<typename S::info*>(nullptr));
      }
      if (!taken) log_unexpected(self, st.name, e->tag);
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
      end(*st, self, std::move(e.reason), true, !reason_is_clean(e.reason));
    } catch (const std::exception& e) {
      end(*st, self, exit_reason::error(e.what()), true, true);
    } catch (...) {
      end(*st, self, exit_reason::error("unknown exception (not derived from std::exception)"), true, true);
    }
    // Ended: exit with the final reason without unwinding by exception.
    self->w->exit_on_return = std::move(*st->stopping);
  }

  bool boot(ember::detail::process* self) {
    boot_data& b = *boot_;
    auto ack = [&](int status, exit_reason r, ember::pid existing) {
      ember::send(b.starter, start_ack{b.ref, status, std::move(r), existing});
    };
    if (b.name) {
      if (std::optional<ember::pid> holder = b.name.register_name(self->self_pid())) {
        ack(2, exit_reason::error("already started"), *holder);
        return false;
      }
    }
    auto fail = [&](exit_reason r, int status = 1) {
      st.reset();
      if (b.name) b.name.unregister_name(self->self_pid());
      ack(status, std::move(r), {});
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
          if (n.ignores()) return fail(exit_reason::normal(), 3);
          st->apply(std::move(n));
        }
      }
    } catch (ember::detail::exit_exception&) {
      throw;  // killed while starting: the starter's monitor tells it
    } catch (const std::exception& e) {
      return fail(exit_reason::error(e.what()));
    } catch (...) {
      return fail(exit_reason::error("unknown exception (not derived from std::exception)"));
    }
    ack(0, {}, {});
    boot_.reset();
    return true;
  }
};

}  // namespace detail

/// A server of type S, named by pid, by registered name or by via_name
/// (names are looked up at each use).
template <class S>
class server {
public:
  server() = default;
  server(ember::pid p) : pid_(p) {}                       // NOLINT: a pid is a server reference
  server(std::string name) : name_(std::move(name)) {}    // NOLINT
  server(const char* name) : name_(name) {}               // NOLINT
  server(ember::via_name v) : via_(std::move(v)) {}       // NOLINT
  /// The process now (the null pid when nobody holds the name).
  [[nodiscard]] ember::pid pid() const {
    if (via_) return via_.whereis();
    return name_.empty() ? pid_ : detail::resolve(std::string_view(name_));
  }
  /// The registered name ("" when named otherwise).
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  /// The via_name (empty when named otherwise).
  [[nodiscard]] const ember::via_name& via() const noexcept { return via_; }
  /// The name as error messages show it ("" for a server named by pid).
  [[nodiscard]] std::string describe() const {
    if (via_) return via_.to_string();
    return name_.empty() ? std::string() : "\"" + name_ + "\"";
  }

private:
  ember::pid pid_;
  std::string name_;
  ember::via_name via_;
};

/// What start returns: the server, or why there is none.
template <class S>
class start_result {
public:
  [[nodiscard]] explicit operator bool() const noexcept { return status_ == 0; }
  /// The server started (or, with already_started(), the one holding the name).
  [[nodiscard]] gen_server::server<S> server() const { return gen_server::server<S>(pid_); }
  [[nodiscard]] ember::pid pid() const noexcept { return pid_; }
  /// Why it did not start (init's error or stop reason, "already started").
  [[nodiscard]] const exit_reason& error() const noexcept { return reason_; }
  [[nodiscard]] bool already_started() const noexcept { return status_ == 2; }
  /// init() returned ignore(): nothing was started (pid() is null).
  [[nodiscard]] bool ignored() const noexcept { return status_ == 3; }

  start_result(int status, ember::pid p, exit_reason r) : status_(status), pid_(p), reason_(std::move(r)) {}

private:
  int status_;
  ember::pid pid_;
  exit_reason reason_;
};

/// A name to register the server under (start/start_link's first argument).
struct name {
  std::string value;
};

/// start/start_link's first argument when the server needs spawn options
/// (a mailbox bound, a heap cap, a stack size), with or without a name:
///   gen_server::start_link<limiter>(gen_server::options{.via = ember::via(reg, key),
///                                   .spawn = {.mailbox = {1000, ember::overflow::refuse}}}, key);
/// At most one of name and via.
struct options {
  std::string name;        // a registered name ("": none)
  ember::via_name via;     // or a via_name (empty: none)
  spawn_options spawn;
};

namespace detail {
template <class S, bool Link, class... A>
start_result<S> start_impl(ember::via_name nm, const spawn_options& so, A&&... args) {
  ember::detail::process* self = ember::detail::current_or_throw(Link ? "gen_server::start_link" : "gen_server::start");
  using E = entry<S, std::decay_t<A>...>;
  const std::uint64_t ref = ++self->call_seq;
  E e;
  e.boot_ = std::make_unique<typename E::boot_data>(
      typename E::boot_data{self->self_pid(), ref, std::move(nm), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)});
  const ember::pid child = Link ? ember::spawn_link(std::move(e), so) : ember::spawn(std::move(e), so);
  const ember::monitor_ref m = ember::monitor(child);
  bool down_taken = false;
  auto r = ember::receive(
      ember::when([ref](const start_ack& a) { return a.ref == ref; },
                  [&](start_ack a) {
                    return start_result<S>(a.status, a.status == 2 ? a.existing : a.status == 3 ? ember::pid{} : child,
                                           std::move(a.reason));
                  }),
      ember::when([m](const ember::down& d) { return d.ref == m; },
                  [&](ember::down d) {
                    down_taken = true;
                    return start_result<S>(1, child, std::move(d.reason));
                  }));
  if (r) {
    ember::demonitor(m, true);
    return r;
  }
  // The server ends after a failed start: wait for it, and leave no
  // exit_message of it in a trapping starter's mailbox (as OTP's proc_lib).
  ember::detail::settle_failed_start(child, m, down_taken, Link);
  return r;
}
/// start_impl under a registered name ("": none).
template <class S, bool Link, class... A>
start_result<S> start_impl(std::string nm, A&&... args) {
  ember::via_name v = nm.empty() ? ember::via_name() : ember::via_name(std::make_shared<const local_name>(std::move(nm)));
  return start_impl<S, Link>(std::move(v), spawn_options{}, std::forward<A>(args)...);
}

/// The name an options value gives (bad_argument when it gives two).
inline ember::via_name checked_name(const options& o, const char* op) {
  if (!o.name.empty() && o.via)
    throw bad_argument(std::string("ember::gen_server::") + op + ": options give both a name and a via_name");
  if (o.via) return o.via;
  return o.name.empty() ? ember::via_name() : ember::via_name(std::make_shared<const local_name>(o.name));
}

/// The name start takes it under (bad_argument when empty).
inline ember::via_name checked_name(name n, const char* op) {
  if (n.value.empty()) throw bad_argument(std::string("ember::gen_server::") + op + ": the name is empty");
  return ember::via_name(std::make_shared<const local_name>(std::move(n.value)));
}
inline ember::via_name checked_name(ember::via_name n, const char* op) {
  if (!n) throw bad_argument(std::string("ember::gen_server::") + op + ": the via_name is empty");
  return n;
}
}  // namespace detail

/// Start a server process running S(args...), then S::init() if defined.
/// Process context.  Waits until init is done.
template <class S, class... A>
start_result<S> start(A&&... args) {
  return detail::start_impl<S, false>(ember::via_name(), spawn_options{}, std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start(name n, A&&... args) {
  return detail::start_impl<S, false>(detail::checked_name(std::move(n), "start"), spawn_options{}, std::forward<A>(args)...);
}
/// start, registering the server under a via_name (ember::via(registry, key)).
template <class S, class... A>
start_result<S> start(ember::via_name n, A&&... args) {
  return detail::start_impl<S, false>(detail::checked_name(std::move(n), "start"), spawn_options{}, std::forward<A>(args)...);
}
/// start with spawn options (and optionally a name).
template <class S, class... A>
start_result<S> start(options o, A&&... args) {
  return detail::start_impl<S, false>(detail::checked_name(o, "start"), o.spawn, std::forward<A>(args)...);
}
/// start, linked to the caller (the caller is the server's parent).
template <class S, class... A>
start_result<S> start_link(A&&... args) {
  return detail::start_impl<S, true>(ember::via_name(), spawn_options{}, std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(name n, A&&... args) {
  return detail::start_impl<S, true>(detail::checked_name(std::move(n), "start_link"), spawn_options{}, std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(options o, A&&... args) {
  return detail::start_impl<S, true>(detail::checked_name(o, "start_link"), o.spawn, std::forward<A>(args)...);
}
template <class S, class... A>
start_result<S> start_link(ember::via_name n, A&&... args) {
  return detail::start_impl<S, true>(detail::checked_name(std::move(n), "start_link"), spawn_options{}, std::forward<A>(args)...);
}

/// Ask the server for req and wait for its answer (see the top of this file
/// for the failures).  timeout: infinity waits for ever.
template <class S, class Req>
detail::reply_t<S, Req> call(const server<S>& to, Req&& req, std::chrono::milliseconds timeout = default_timeout) {
  using V = std::remove_cvref_t<Req>;
  using R = detail::reply_t<S, Req>;
  using body = detail::request_body<V>;
  ember::detail::process* self = ember::detail::current_or_throw("gen_server::call");
  const ember::pid p = to.pid();
  if (p.is_null()) throw call_noproc("ember::gen_server::call: no process is registered as " + to.describe());
  if (p == self->self_pid()) throw call_self("ember::gen_server::call: a server cannot call itself");
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
  ember::detail::spend_in(self, 1);
  ember::detail::envelope* r =
      detail::await_reply(self, ref, timeout.count() < 0 ? -1 : std::int64_t(timeout.count()) * 1000000);
  if (!r) throw call_timeout("ember::gen_server::call: no reply within " + std::to_string(timeout.count()) + " ms");
  ember::detail::envelope_guard rg{r};
  if (ember::detail::head_of<ember::detail::reply_head>(r).status != ember::detail::reply_status::ok)
    detail::throw_call_failure("ember::gen_server::call", r, p);
  return std::move(ember::detail::body_of<ember::detail::reply_body<R>>(r).value);
}
template <class S, class Req>
detail::reply_t<S, Req> call(const ember::pid& to, Req&& req, std::chrono::milliseconds timeout = default_timeout) {
  return call(server<S>(to), std::forward<Req>(req), timeout);
}

/// Send msg to the server's handle_cast and return at once (dropped if
/// there is no such server, as OTP's cast).  Any process.
template <class S, class Msg>
void cast(const server<S>& to, Msg&& msg) {
  using V = std::remove_cvref_t<Msg>;
  using body = detail::request_body<V>;
  static_assert(requires(S& s, V v) { s.handle_cast(std::move(v)); }, "the server has no handle_cast for this type");
  const ember::pid p = to.pid();
  if (p.is_null()) return;
  ember::detail::post(p, ember::detail::make_request<body>(
                             p.serial(),
                             ember::detail::request_head{ember::detail::request_kind::cast,
                                                         ember::detail::type_tag<S>(), &detail::dispatch_cast<S, V>,
                                                         typeid(V).name(), {}, 0, nullptr},
                             std::forward<Msg>(msg)));
  ember::detail::spend(1);
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
/// not exited within timeout, call_exited when it exited with another reason.
template <class S>
void stop(const server<S>& to, exit_reason reason = exit_reason::normal(),
          std::chrono::milliseconds timeout = infinity) {
  ember::detail::process* self = ember::detail::current_or_throw("gen_server::stop");
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
      ember::after(timeout.count() < 0 ? ember::max_receive_timeout : std::chrono::nanoseconds(timeout),
                   [] { return std::optional<exit_reason>(); }));
  if (!got) {
    ember::demonitor(m, true);
    throw call_timeout("ember::gen_server::stop: the server did not exit within " + std::to_string(timeout.count()) +
                       " ms");
  }
  if (got->what() == exit_reason::kind::noproc) throw call_noproc("ember::gen_server::stop: the server is not alive");
  if (!(*got == reason)) throw call_exited("ember::gen_server::stop: the server exited with another reason", *got);
}
template <class S>
void stop(const ember::pid& to, exit_reason reason = exit_reason::normal(),
          std::chrono::milliseconds timeout = infinity) {
  stop(server<S>(to), std::move(reason), timeout);
}

}  // namespace ember::gen_server
