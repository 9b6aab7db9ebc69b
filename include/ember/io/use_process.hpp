// ember/io/use_process.hpp — a completion token for Asio: the calling process
// waits for the operation and gets its result, as straight-line code.
//
//   std::size_t n = sock.async_read_some(boost::asio::buffer(buf), ember::io::use_process);
//   tcp::socket peer = acceptor.async_accept(ember::io::use_process);
//   timer.async_wait(ember::io::use_process.timeout(2s));      // with a timeout
//   boost::system::error_code ec;                              // errors as codes:
//   sock.async_write_some(b, boost::asio::redirect_error(ember::io::use_process, ec));
//   auto [ec2, m] = sock.async_read_some(b, boost::asio::as_tuple(ember::io::use_process));
//
// Contract (process context only; the calling process suspends, the other
// processes of its worker go on):
//  - The result: for a completion `void(error_code, T...)` the T... — void,
//    one value, or a std::tuple of them; an error is thrown as
//    boost::system::system_error.  `void(std::exception_ptr, T...)`
//    rethrows.  Other signatures return all their arguments the same way.
//    Asio's adapters work as with any token: redirect_error (the error goes
//    to an error_code), as_tuple (everything as one tuple).
//  - An exit signal that ends the process (kill, or any untrapped one)
//    arriving while it waits cancels the operation (Asio's per-operation
//    cancellation, every cancellation type), waits for it to complete, then
//    ends the process: no completion ever touches a frame that has gone.
//    A trapped exit signal is a message: it waits in the mailbox, and the
//    operation goes on.  Messages that arrive meanwhile wait for a later
//    receive.
//  - timeout(d): when the operation has not completed d after the wait
//    began, it is cancelled the same way; if it then fails, the failure is
//    boost::asio::error::timed_out (with redirect_error / as_tuple it is
//    whatever the cancelled operation reports, usually operation_aborted);
//    if it completed first, its result stands.  d is any duration >= 0
//    (bad_argument otherwise).
//  - A cancellation never runs beside a step of the operation: every
//    handler of it — the final one, and a composed operation's
//    intermediate ones, which start its next inner operation — runs under
//    a lock of the operation, and the cancellation is emitted under the
//    same lock, so an object used by one process needs no strand.  It is
//    emitted from the I/O object's executor (the one Asio gives the
//    handler): an initiation that posts its work to a strand notes that
//    strand first (asio::get_associated_executor(handler, strand)), and
//    the cancellation queues behind it.  An operation that names no
//    executor is cancelled from the process's own thread.
//  - interruptible(): for a process that traps exits (a connection
//    process of tcp_server, told to drain): an exit_message in its mailbox
//    — one already there when the wait begins, or one that arrives during
//    it — cancels the operation the same way; if it then fails, the
//    failure is boost::asio::error::interrupted.  The exit_message stays in
//    the mailbox for the process to receive.
//  - When the I/O context is destroyed with the operation pending, it fails
//    with operation_aborted.
//  - Misuse: outside a process, not_in_process (nothing is started); inside
//    ember::blocking, ember::error (nothing is started).  Each use spends
//    one reduction, as every runtime call.
//
// Threads: the operation runs and completes on the I/O context's threads;
// its completion wakes the process (detail/completion.hpp).
// Ownership: the operation's state lives in the waiting process's frame,
// and so does the memory Asio allocates for the operation itself (the
// handler's allocator: one block of up to 512 bytes at a time, the heap
// beyond that).  The thread that starts an operation for a process gets
// the per-thread cache Asio otherwise keeps only for threads inside its
// loop, for the cancellation handlers; Asio still sees that thread as
// outside every loop (running_in_this_thread() is false).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/execute.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include "ember/detail/completion.hpp"
#include "ember/detail/spend.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/errors.hpp"

namespace ember::io {

/// The token type; use the `use_process` value.
struct use_process_t {
  std::int64_t timeout_ns = -1;  // -1: none
  bool interrupt_on_exit = false;
  /// The same token, with a timeout on the operation (any duration >= 0).
  [[nodiscard]] use_process_t timeout(ember::detail::timeout_arg d) const {
    return use_process_t{d.ns("io::use_process.timeout", "d"), interrupt_on_exit};
  }
  /// The same token, for a process that traps exits: a trapped exit
  /// signal cancels the operation too (see the top of the file).
  [[nodiscard]] constexpr use_process_t interruptible() const noexcept { return use_process_t{timeout_ns, true}; }
};

/// Wait in the calling process for the operation's result.
inline constexpr use_process_t use_process{};

namespace detail {

/// What a completion's arguments become for the caller.
template <class... Vs>
struct values {
  using type = std::tuple<Vs...>;
  template <std::size_t Skip, class Tuple, std::size_t... I>
  static type take(Tuple&& t, std::index_sequence<I...>) {
    return type(std::get<Skip + I>(std::move(t))...);
  }
};
template <class V>
struct values<V> {
  using type = V;
  template <std::size_t Skip, class Tuple, std::size_t... I>
  static type take(Tuple&& t, std::index_sequence<I...>) {
    return std::get<Skip>(std::move(t));
  }
};
template <>
struct values<> {
  using type = void;
  template <std::size_t Skip, class Tuple, std::size_t... I>
  static void take(Tuple&&, std::index_sequence<I...>) {}
};

template <class... Args>
struct signature {
  static constexpr std::size_t skip = 0;  // no error argument
  using result = values<std::decay_t<Args>...>;
};
template <class A0, class... As>
struct signature<A0, As...> {
  static constexpr bool error_code_first = std::is_same_v<std::decay_t<A0>, boost::system::error_code>;
  static constexpr bool exception_first = std::is_same_v<std::decay_t<A0>, std::exception_ptr>;
  static constexpr std::size_t skip = (error_code_first || exception_first) ? 1 : 0;
  using result = std::conditional_t<skip == 1, values<std::decay_t<As>...>,
                                    values<std::decay_t<A0>, std::decay_t<As>...>>;
};

/// Memory for the operation's own state, in the waiting process's frame.
/// Asio allocates an operation through its handler's allocator and frees
/// it before the handler runs (a rule of its asynchronous model, for
/// composed operations too), so the frame outlives every use.  One block
/// at a time; a larger request, or one while the block is taken (a
/// composed operation with several pending at once), goes to the heap.
struct op_arena {
  static constexpr std::size_t size = 512;
  alignas(std::max_align_t) unsigned char bytes[size];
  std::atomic<bool> taken{false};

  void* allocate(std::size_t n) {
    // ordering: acquire pairs with deallocate's release (the block's last
    // user, maybe on another thread, is done with it).
    if (n <= size && !taken.load(std::memory_order_relaxed) && !taken.exchange(true, std::memory_order_acquire))
      return bytes;
    return ::operator new(n);
  }
  void deallocate(void* p) noexcept {
    if (p == bytes) taken.store(false, std::memory_order_release);
    else ::operator delete(p);
  }
};

/// The handler's allocator: the operation's arena.
template <class T>
class frame_allocator {
public:
  using value_type = T;
  explicit frame_allocator(op_arena* a) noexcept : a_(a) {}
  template <class U>
  frame_allocator(const frame_allocator<U>& o) noexcept : a_(o.arena()) {}  // NOLINT: rebinding converts
  T* allocate(std::size_t n) { return static_cast<T*>(a_->allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { a_->deallocate(p); }
  [[nodiscard]] op_arena* arena() const noexcept { return a_; }
  template <class U>
  bool operator==(const frame_allocator<U>& o) const noexcept { return a_ == o.arena(); }

private:
  op_arena* a_;
};

/// Gives the calling thread the per-thread memory cache that Asio keeps
/// only for threads inside its event loop (cancellation handlers are
/// allocated through it); once per thread (use_process.ipp).
void enter_asio_thread();

/// What every operation's state has: the latch, the arena, and the lock
/// that keeps a cancellation apart from the operation's own steps.
///
/// A step is a completion handler of the operation — its final one (ours),
/// or, for a composed operation (async_write, async_compose, Beast's), one
/// of its intermediate handlers, which start the next inner operation and
/// install its cancellation handler in our slot's chain.  Every step runs
/// through op_executor (the handler's associated executor, which composed
/// operations inherit), under the lock; a cancellation emits under it too.
/// So a cancellation never runs beside a step, on any thread, and an I/O
/// object needs no strand for it.  The final handler finishes the latch
/// only after the lock is let go (the frame may go at once after that).
struct op_base {
  explicit op_base(ember::detail::process* self) noexcept : latch(self) {}
  ember::detail::completion_latch latch;
  op_arena arena;
  std::atomic<bool> locked{false};
  bool finish_pending = false;  // the final handler ran inside a step (lock held)

  void lock() noexcept {
    // ordering: acquire pairs with unlock's release (the last step's
    // writes — a new cancellation handler in the chain — are seen).
    while (locked.exchange(true, std::memory_order_acquire))
      while (locked.load(std::memory_order_relaxed)) __builtin_ia32_pause();
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
};

/// The operation whose step the calling thread is running, or null: the
/// calling thread's slot (use_process.ipp).  A call each time, never an
/// address kept across a process switch — a process may go on on another
/// thread.
op_base*& current_step() noexcept;

/// The operation is complete (the final handler stored its result, or was
/// destroyed uncalled): inside one of its steps the step finishes the latch
/// when it lets go of the lock; anywhere else, now, under the lock.
inline void complete_op(op_base* s) noexcept {
  if (current_step() == s) {
    s->finish_pending = true;
    return;
  }
  s->lock();
  s->unlock();
  s->latch.finish();
}

/// Runs one step of the operation under its lock (see op_base).
template <class F>
class op_step {
public:
  op_step(op_base* s, F f) : s_(s), f_(std::move(f)) {}
  void operator()() {
    op_base* s = s_;
    op_base*& current = current_step();  // a step runs on one thread throughout
    if (current == s) {  // dispatched inline from inside a step of its own
      std::move(f_)();
      return;
    }
    s->lock();
    op_base* outer = std::exchange(current, s);
    struct leave {
      op_base*& current;
      op_base* s;
      op_base* outer;
      ~leave() {
        current = outer;
        const bool finish = std::exchange(s->finish_pending, false);
        s->unlock();
        if (finish) s->latch.finish();  // the last touch of s
      }
    } on_leave{current, s, outer};
    std::move(f_)();
  }

private:
  op_base* s_;
  F f_;
};

/// The handler's associated executor: the I/O object's own, with every
/// function it runs made a step of the operation.  Properties are the
/// inner executor's.
template <class Inner>
class op_executor {
public:
  op_executor(const Inner& inner, op_base* s) noexcept : inner_(inner), s_(s) {}

  template <class F>
  void execute(F&& f) const {
    boost::asio::execution::execute(inner_, op_step<std::decay_t<F>>(s_, std::forward<F>(f)));
  }
  template <class P>
  auto query(const P& p) const noexcept(noexcept(boost::asio::query(std::declval<const Inner&>(), p)))
      -> decltype(boost::asio::query(std::declval<const Inner&>(), p)) {
    return boost::asio::query(inner_, p);
  }
  template <class P>
  auto require(const P& p) const
      -> op_executor<std::decay_t<decltype(boost::asio::require(std::declval<const Inner&>(), p))>> {
    return {boost::asio::require(inner_, p), s_};
  }
  template <class P>
  auto prefer(const P& p) const
      -> op_executor<std::decay_t<decltype(boost::asio::prefer(std::declval<const Inner&>(), p))>> {
    return {boost::asio::prefer(inner_, p), s_};
  }
  // No work counted for the handler: the operation is counted by the
  // context until its handler is dispatched, and a dispatch that posts
  // counts itself (counting would be two atomic updates of a counter every
  // thread of the loop shares, per operation).
  op_executor prefer(boost::asio::execution::outstanding_work_t::tracked_t) const noexcept { return *this; }
  friend bool operator==(const op_executor& a, const op_executor& b) noexcept {
    return a.s_ == b.s_ && a.inner_ == b.inner_;
  }
  friend bool operator!=(const op_executor& a, const op_executor& b) noexcept { return !(a == b); }

private:
  Inner inner_;
  op_base* s_;
};

/// The state of one operation, in the waiting process's frame.
template <class... Args>
struct op_state : op_base {
  explicit op_state(ember::detail::process* self) noexcept : op_base(self) {}
  std::optional<std::tuple<std::decay_t<Args>...>> result;
  bool abandoned = false;  // the handler was destroyed uncalled (the context went)
  boost::asio::cancellation_signal signal;
  // The I/O object's executor, noted the first time Asio asks the handler
  // for its own (0 none, 1 being noted, 2 noted).
  std::atomic<int> noted{0};
  std::optional<boost::asio::any_io_executor> executor;

  /// Cancel from the calling thread, under the operation's lock.
  void emit_cancel() noexcept {
    lock();
    signal.emit(boost::asio::cancellation_type::all);
    unlock();
  }

  template <class Executor>
  void note_executor(const Executor& ex) noexcept {
    // An io_context's own executor orders nothing (any of its threads runs
    // what is posted to it): the cancellation is emitted from the waiting
    // process, under the operation's lock, with no copy and no post.
    using plain = boost::asio::io_context::executor_type;
    if constexpr (std::is_same_v<Executor, plain>) {
      return;
    } else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>) {
      if (ex.template target<plain>() != nullptr) return;
    }
    if constexpr (std::is_constructible_v<boost::asio::any_io_executor, const Executor&>) {
      int expect = 0;
      if (noted.load(std::memory_order_relaxed) != 0 ||
          !noted.compare_exchange_strong(expect, 1, std::memory_order_acquire))
        return;
      try {
        executor.emplace(ex);
      } catch (...) {
        return;  // stays "being noted": cancelled from the process's thread
      }
      // ordering: release publishes the executor to the cancelling process.
      noted.store(2, std::memory_order_release);
    }
  }
};

/// The handler given to Asio: stores the result and wakes the process.
template <class... Args>
class handler {
public:
  using cancellation_slot_type = boost::asio::cancellation_slot;
  using allocator_type = frame_allocator<void>;

  explicit handler(op_state<Args...>* s) noexcept : s_(s), base_(s) {}
  handler(handler&& o) noexcept : s_(std::exchange(o.s_, nullptr)), base_(o.base_) {}
  handler(const handler&) = delete;
  handler& operator=(const handler&) = delete;
  handler& operator=(handler&&) = delete;
  ~handler() {
    if (s_) {  // destroyed uncalled: the context is going away
      s_->abandoned = true;
      complete_op(s_);
    }
  }

  // Still the operation's after the handler has been moved from or called.
  [[nodiscard]] allocator_type get_allocator() const noexcept { return allocator_type(&base_->arena); }
  [[nodiscard]] op_base* base() const noexcept { return base_; }
  [[nodiscard]] cancellation_slot_type get_cancellation_slot() const noexcept {
    return s_ ? s_->signal.slot() : cancellation_slot_type();
  }
  template <class Executor>
  void note_executor(const Executor& ex) const noexcept {
    if (s_) s_->note_executor(ex);
  }

  template <class... A>
  void operator()(A&&... a) noexcept {
    op_state<Args...>* s = std::exchange(s_, nullptr);
    s->result.emplace(std::forward<A>(a)...);
    complete_op(s);
  }

private:
  op_state<Args...>* s_;
  op_base* base_;
};

/// A cancellation request, run on the I/O object's executor.
template <class... Args>
class cancel_task {
public:
  explicit cancel_task(op_state<Args...>* s) noexcept : s_(s) {}
  cancel_task(cancel_task&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  cancel_task(const cancel_task&) = delete;
  cancel_task& operator=(const cancel_task&) = delete;
  cancel_task& operator=(cancel_task&&) = delete;
  ~cancel_task() {
    if (s_) s_->latch.finish();  // dropped unrun: nothing left to cancel
  }
  void operator()() noexcept {
    op_state<Args...>* s = std::exchange(s_, nullptr);
    s->emit_cancel();
    // The slot's handler stays: a composed operation (async_compose, Beast's
    // reads and writes) keeps using the state it installed there until it
    // completes.  It goes with the frame, after the latch is done.
    s->latch.finish();
  }

private:
  op_state<Args...>* s_;
};

template <class... Args>
void request_cancel(void* ctx) {
  auto* s = static_cast<op_state<Args...>*>(ctx);
  // ordering: acquire pairs with note_executor's release.
  if (s->noted.load(std::memory_order_acquire) == 2) {
    s->latch.expect();
    try {
      boost::asio::post(*s->executor, cancel_task<Args...>(s));
    } catch (...) {
      // Could not queue it (no memory): the task, destroyed, counted itself
      // done; cancel from here instead.
      s->emit_cancel();
    }
  } else {
    s->emit_cancel();
  }
}

[[noreturn]] void throw_timed_out();
[[noreturn]] void throw_interrupted();
[[noreturn]] void throw_abandoned();
[[noreturn]] void throw_in_blocking();

/// Start the operation (init) with a handler of ours and wait for it.
template <class... Args, class Initiation, class... InitArgs>
typename signature<Args...>::result::type run(Initiation&& init, use_process_t token, InitArgs&&... args) {
  using sig = signature<Args...>;
  ember::detail::process* self = ember::detail::enter_runtime("io::use_process");
  if (self->in_blocking) throw_in_blocking();
  enter_asio_thread();
  op_state<Args...> st(self);
  try {
    std::forward<Initiation>(init)(handler<Args...>(&st), std::forward<InitArgs>(args)...);
  } catch (...) {
    // The handler was destroyed on the way out (which finished the latch).
    while (!st.latch.done()) ember::detail::await_completion(self, st.latch, -1, [](void*) {}, nullptr);
    throw;
  }
  const ember::detail::completion_cancel why =
      ember::detail::await_completion(self, st.latch, token.timeout_ns, &request_cancel<Args...>, &st,
                                      token.interrupt_on_exit);
  if (why == ember::detail::completion_cancel::killed) ember::detail::check_kill_now(self);
  if (st.abandoned) throw_abandoned();
  auto& r = *st.result;
  if constexpr (sig::skip == 1) {
    using first = std::decay_t<std::tuple_element_t<0, std::tuple<Args...>>>;
    if constexpr (std::is_same_v<first, boost::system::error_code>) {
      if (const boost::system::error_code& ec = std::get<0>(r)) {
        if (why == ember::detail::completion_cancel::timed_out) throw_timed_out();
        if (why == ember::detail::completion_cancel::interrupted) throw_interrupted();
        throw boost::system::system_error(ec);
      }
    } else {
      if (const std::exception_ptr& ep = std::get<0>(r)) std::rethrow_exception(ep);
    }
  }
  return sig::result::template take<sig::skip>(std::move(r),
                                               std::make_index_sequence<sizeof...(Args) - sig::skip>());
}

}  // namespace detail
}  // namespace ember::io

namespace boost::asio {

template <class R, class... Args>
class async_result<ember::io::use_process_t, R(Args...)> {
public:
  using return_type = typename ember::io::detail::signature<Args...>::result::type;

  template <class Initiation, class... InitArgs>
  static return_type initiate(Initiation&& init, ember::io::use_process_t token, InitArgs&&... args) {
    return ember::io::detail::run<Args...>(std::forward<Initiation>(init), token, std::forward<InitArgs>(args)...);
  }
};

/// Asio asks the handler for its executor, offering the I/O object's: the
/// handler notes it (the executor a cancellation is run on), and its steps
/// run on it under the operation's lock (op_executor).
template <class... Args, class Executor>
struct associated_executor<ember::io::detail::handler<Args...>, Executor> {
  using type = ember::io::detail::op_executor<Executor>;
  static type get(const ember::io::detail::handler<Args...>& h, const Executor& ex = Executor()) noexcept {
    h.note_executor(ex);
    return type(ex, h.base());
  }
};

}  // namespace boost::asio
