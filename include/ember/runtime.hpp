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
#include <utility>
#include <vector>

#include "ember/detail/runtime_core.hpp"
#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"

namespace ember {

class runtime {
public:
  /// Starts the workers.  Throws invalid_option for out-of-range options.
  explicit runtime(runtime_options options = {})
      : core_(std::make_unique<detail::runtime_core>(std::move(options))) {}
  ~runtime() { core_->stop(); }
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Start a process running fn() (a callable taking no arguments).
  /// Throws runtime_stopped after stop(), invalid_option for a bad stack size.
  template <class F>
  pid spawn(F&& fn, const spawn_options& o = {}) {
    detail::process* p = core_->prepare_spawn(o, "spawn");
    try {
      p->set_entry(std::forward<F>(fn));
    } catch (...) {
      core_->abandon_spawn(p);
      throw;
    }
    return core_->publish_spawn(p);
  }

  /// Block until the process exits; its exit reason, or noproc when it is
  /// not alive.  Not from inside a process.
  exit_reason wait(pid p) { return core_->wait(p); }

  /// End every process and join the workers.  Idempotent.
  void stop() { core_->stop(); }

  [[nodiscard]] bool stopped() const noexcept { return core_->stopping(); }
  [[nodiscard]] unsigned workers() const noexcept { return core_->worker_count(); }
  [[nodiscard]] const runtime_options& options() const noexcept { return core_->options(); }
  /// Number of live processes.
  [[nodiscard]] std::size_t process_count() const noexcept { return core_->live(); }
  /// A snapshot of every live pid.
  [[nodiscard]] std::vector<pid> processes() const { return core_->processes(); }

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
  exit_reason r = rt.wait(rt.spawn(std::forward<F>(root)));
  rt.stop();
  return (r.is_normal() || r.what() == exit_reason::kind::shutdown) ? 0 : 1;
}

}  // namespace ember
