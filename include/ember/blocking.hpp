// ember/blocking.hpp — run blocking work in a process without stalling a
// scheduler (OTP's dirty schedulers; tokio's block_in_place).
//
//   std::string text = ember::blocking([&] { return read_whole_file(path); });
//
// blocking(f) gives the calling process's worker to another thread before
// f runs, so the worker's other processes and timers go on; f runs on the
// calling process's own thread and stack, off the schedulers; when f
// returns (or throws), the process takes a worker again, like any runnable
// process, and blocking returns f's result (or rethrows its exception).
//
// Rules:
//  - exit signals that arrive while f runs take effect when f returns
//    (blocking then ends the process instead of returning);
//  - inside f, what does not need a worker works as anywhere: send, cast,
//    spawn, link, monitor, cancel_timer, the process heap, self().  What
//    would wait or needs a worker throws ember::error: receive that finds
//    no message, gen_server::call, send_after and start_timer.  yield and
//    checkpoint do nothing; blocking inside f just calls f;
//  - at most runtime_options::blocking_threads processes are off the
//    schedulers at once (blocking sections, and processes holding a thread
//    whose worker was handed off): past that, blocking waits — as a process
//    that holds no worker, first come first served — until one ends.
//    Sections that wait on each other past the bound wait for ever: keep
//    the work inside f independent;
//  - it costs two thread hand-overs (about 10-50 us): for work that blocks
//    (files, databases, sleep), not for short computations (checkpoint()).
//
// Threads: process context (not_in_process elsewhere).  Ownership: f is
// called in place and not stored.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include "ember/this_process.hpp"

namespace ember {

namespace detail {
struct process;
/// Whether the calling process runs off the schedulers now.
bool in_blocking(process* p) noexcept;
/// Take a slot (waiting for one as a process if need be) and give the
/// worker away.  A pending exit ends the process here.
void begin_blocking(process* p);
/// Back on a worker (any thread; never throws).
void end_blocking(process* p) noexcept;
/// After end_blocking, outside any unwinding: a pending exit ends the
/// process now.
void after_blocking(process* p);

struct blocking_section {
  process* p;
  ~blocking_section() { end_blocking(p); }
};
}  // namespace detail

/// Run f() off the schedulers (see above); returns its result.
template <class F>
std::invoke_result_t<F&> blocking(F&& f) {
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "ember::blocking: the function must return a value (or void), not a reference");
  detail::process* p = detail::current_or_throw("blocking");
  if (detail::in_blocking(p)) return std::invoke(f);
  detail::begin_blocking(p);
  auto run = [&]() -> R {
    detail::blocking_section section{p};
    return std::invoke(f);
  };
  if constexpr (std::is_void_v<R>) {
    run();
    detail::after_blocking(p);
  } else {
    R r = run();
    detail::after_blocking(p);
    return r;
  }
}

}  // namespace ember
