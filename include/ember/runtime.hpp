// ember/runtime.hpp — the runtime: worker threads, the process table, and
// the way in from plain C++ code.
//
// A program makes a runtime, spawns processes on it, and either waits for
// one (wait) or stops it (stop, also run by the destructor): stopping ends
// every process — each unwinds at its next runtime call — and joins every
// worker thread.  ember::run() wraps the usual case: start a runtime, run a
// root process, wait for it, stop.
//
// Threads: every member is callable from any thread, except wait() and
// stop(), which block the caller and so must not be called from inside a
// process of the same runtime (they throw ember::error there).
// Ownership: the runtime owns every process it runs; pids do not keep it
// alive.  Destroying the runtime stops it first.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/clock.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"
#include "ember/send.hpp"

namespace ember {

class runtime {
public:
  /// Starts the workers.  Throws invalid_option for out-of-range options.
  explicit runtime(runtime_options options = {})
      : core_(std::make_unique<detail::runtime_core>(std::move(options))) {}
  ~runtime() {
    core_->stop();
    if (core_->abandoned()) detail::keep_forever(std::move(core_));  // see runtime_options::stop_timeout
  }
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Start a process running fn() (a callable taking no arguments).
  /// Throws runtime_stopped after stop(), invalid_option for a bad stack size.
  template <class F>
  pid spawn(F&& fn, const spawn_options& o = {}) {
    return core_->publish_spawn(core_->make_process(std::forward<F>(fn), o, "spawn"));
  }

  /// A process started with spawn_monitor: its pid, and a wait() that
  /// cannot miss its exit (the watch is set before the process starts).
  class monitored {
  public:
    ember::pid pid;
    /// Block until the process exits; returns its exit reason.  Not from
    /// inside a process of the same runtime.  Call at most once.
    exit_reason wait() { return core_->wait_latch(latch_); }

  private:
    friend class runtime;
    monitored(ember::pid p, detail::runtime_core* c, std::shared_ptr<detail::exit_latch> l)
        : pid(p), core_(c), latch_(std::move(l)) {}
    detail::runtime_core* core_;
    std::shared_ptr<detail::exit_latch> latch_;
  };

  /// spawn(), and watch the new process's exit from outside the runtime.
  template <class F>
  monitored spawn_monitor(F&& fn, const spawn_options& o = {}) {
    detail::process* p = core_->make_process(std::forward<F>(fn), o, "spawn_monitor");
    auto latch = std::make_shared<detail::exit_latch>();
    p->signals().waiters.push_back(latch);  // the block is private until published
    return {core_->publish_spawn(p), core_.get(), std::move(latch)};
  }

  /// Block until the process exits; its exit reason, or noproc when it is
  /// not alive (it may already have exited: use spawn_monitor to wait for a
  /// process you start).  Not from inside a process.
  exit_reason wait(pid p) { return core_->wait(p); }

  /// End every process and join the workers.  Idempotent.  Never hangs:
  /// a process still alive runtime_options::stop_timeout after its kill is
  /// reported and abandoned (see there).
  void stop() { core_->stop(); }

  [[nodiscard]] bool stopped() const noexcept { return core_->stopping(); }
  [[nodiscard]] unsigned workers() const noexcept { return core_->worker_count(); }
  [[nodiscard]] const runtime_options& options() const noexcept { return core_->options(); }
  /// Number of live processes.
  [[nodiscard]] std::size_t process_count() const noexcept { return core_->live(); }
  /// Private heaps alive now, and the bytes they hold from the system
  /// (heap.hpp).  Both are 0 once every process that used one has ended.
  [[nodiscard]] std::size_t heaps() const noexcept { return core_->heaps(); }
  [[nodiscard]] std::size_t heap_bytes() const noexcept { return core_->heap_bytes(); }
  /// A snapshot of every live pid.
  [[nodiscard]] std::vector<pid> processes() const { return core_->processes(); }

  /// Now on this runtime's clock (clock.hpp); any thread.
  [[nodiscard]] time_point now() const noexcept { return time_point(std::chrono::nanoseconds(core_->now_ns())); }
  /// The steady_clock time this runtime's clock counts from (its time 0).
  /// Meaningless with a manual clock.
  [[nodiscard]] std::chrono::steady_clock::time_point epoch() const noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(core_->epoch_ns()));
  }
  /// The scheduler's threads and counters (docs/guide.md, "Scheduling").
  [[nodiscard]] scheduler_stats scheduler() const { return core_->scheduler(); }

  /// Registered names, from any thread (see names.hpp for the rules).
  void register_name(std::string_view name, pid p) { core_->names().add(name, p); }
  bool unregister_name(std::string_view name) { return core_->names().remove(name); }
  [[nodiscard]] std::optional<pid> whereis(std::string_view name) const { return core_->names().whereis(name); }
  /// Send to a registered name from any thread; throws no_such_name.
  template <class T>
  send_result send(std::string_view name, T&& msg) {
    return ember::send(core_->names().resolve(name), std::forward<T>(msg));
  }

  detail::runtime_core& core() noexcept { return *core_; }

private:
  std::unique_ptr<detail::runtime_core> core_;
};

/// Run `root` as the first process of a fresh runtime, wait for it to exit,
/// then stop the runtime (ending every other process).  Returns 0 when the
/// root ended normally (or with shutdown), 1 otherwise — usable as main()'s
/// result.
template <class F>
int run(F&& root, runtime_options options = {}) {
  runtime rt(std::move(options));
  exit_reason r = rt.spawn_monitor(std::forward<F>(root)).wait();
  rt.stop();
  return (r.is_normal() || r.what() == exit_reason::kind::shutdown) ? 0 : 1;
}

}  // namespace ember
