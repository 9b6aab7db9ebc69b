// ember/impl/application.ipp — application::run and stop (compiled once, in
// src/ember.cpp).
//
// A run, step by step:
//  1. claim the program's one application slot (already_running if taken)
//     and open the request pipe; its write end is published for stop() and
//     the signal handler;
//  2. install the SIGINT/SIGTERM handlers (handle_signals), keeping the
//     ones they replace;
//  3. make the runtime and spawn the master; start the watcher thread,
//     which reads request bytes from the pipe (a signal number, or 0 for
//     stop()) and sends each to the master as a shutdown_request;
//  4. the master traps exits, calls start, links the root, then waits for
//     the root's exit_message, handling requests and the shutdown deadline
//     on the way (master_loop); it records the exit status and returns;
//  5. run, which waited for the master, restores the old handlers,
//     unpublishes the write end (waiting out a signal handler still using
//     it), closes it — the watcher reads end-of-file and ends — joins the
//     watcher, frees the slot, and stops the runtime.
//
// Why a pipe: a signal handler may only do async-signal-safe things; write
// is one, sending into the runtime (which allocates) is not.  stop() uses
// the same pipe so that nothing but the watcher thread, which run joins
// before the runtime goes away, ever sends into the runtime from outside.
#pragma once

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "ember/application.hpp"
#include "ember/receive.hpp"
#include "ember/runtime.hpp"
#include "ember/signal/link.hpp"
#include "ember/timer.hpp"

namespace ember::application {

namespace detail {
namespace {

/// A shutdown request, as the master receives it.
struct shutdown_request {
  int signal;  // the signal number, or 0 for stop()
};
/// The master's shutdown_timeout ran out.
struct shutdown_deadline {};
/// The root, killed, has not exited within the runtime's stop_timeout.
struct kill_deadline {};

static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

std::mutex slot_mu;        // guards slot_taken, and publishing/unpublishing request_fd
bool slot_taken = false;   // a run is active
// The pipe's write end while a run is active, else -1.  Read by the signal
// handler (no lock there) and by stop() (under slot_mu).  seq_cst, paired
// with handlers_inside: see active_run::finish.
std::atomic<int> request_fd{-1};
std::atomic<int> handlers_inside{0};  // signal handlers now running on_signal

constexpr int handled_signals[] = {SIGINT, SIGTERM};

void put_request(int fd, int signo) noexcept {
  const unsigned char b = static_cast<unsigned char>(signo);
  ssize_t n;
  do {
    n = ::write(fd, &b, 1);
  } while (n < 0 && errno == EINTR);
  // A full pipe (EAGAIN: tens of thousands of unread requests) loses this
  // one; the shutdown those already ask for goes on.
}

void on_signal(int signo) {
  const int saved = errno;
  handlers_inside.fetch_add(1);
  const int fd = request_fd.load();
  if (fd >= 0) put_request(fd, signo);
  handlers_inside.fetch_sub(1);
  errno = saved;
}

const char* signal_name(int signo) {
  switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

std::string request_source(int signo) {
  if (signo == 0) return "ember::application::stop()";
  return fmt::format("signal {} ({})", signo, signal_name(signo));
}

/// What the master shares with run.
struct session {
  const options* opts;
  start_fn fn;
  void* start;
  spdlog::logger* log;
  int status = -1;         // the exit status, set by the master before it returns
  bool root_started = false;
  std::chrono::milliseconds stop_timeout{};  // the runtime's last resort
};

/// Steps 1, 2, 3 (watcher) and 5 of the protocol above; finish() undoes
/// them in reverse, and the destructor runs it if run did not.
class active_run {
public:
  explicit active_run(bool handle_signals) {
    int fds[2];
    {
      std::lock_guard lk(slot_mu);
      if (slot_taken) throw already_running();
      if (::pipe2(fds, O_CLOEXEC) != 0)
        throw ember::error(std::string("ember::application::run: cannot make the request pipe: ") +
                           std::strerror(errno));
      ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);  // a handler never blocks
      slot_taken = true;
      read_fd_ = fds[0];
      write_fd_ = fds[1];
      request_fd.store(write_fd_);
    }
    if (handle_signals) {
      struct sigaction sa {};
      sa.sa_handler = &on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      for (std::size_t i = 0; i < std::size(handled_signals); ++i) {
        if (::sigaction(handled_signals[i], &sa, &old_[i]) != 0) {
          const int err = errno;
          finish();
          throw ember::error(std::string("ember::application::run: cannot install a signal handler: ") +
                             std::strerror(err));
        }
        installed_ = i + 1;
      }
    }
  }
  ~active_run() { finish(); }
  active_run(const active_run&) = delete;
  active_run& operator=(const active_run&) = delete;

  /// Start the watcher: each request byte becomes a shutdown_request to master.
  void watch(ember::pid master) {
    watcher_ = std::thread([fd = read_fd_, master] {
      for (;;) {
        unsigned char b;
        const ssize_t n = ::read(fd, &b, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // end of file: run is finishing
        ember::send(master, shutdown_request{int(b)});
      }
    });
  }

  void finish() noexcept {
    if (read_fd_ < 0) return;
    // 1. Give the signals back to the handlers run found.
    for (std::size_t i = installed_; i-- > 0;) ::sigaction(handled_signals[i], &old_[i], nullptr);
    installed_ = 0;
    // 2. Unpublish the write end.  A handler that loaded it before this
    //    store has already counted itself in handlers_inside (seq_cst on
    //    both sides), so waiting for zero waits for it; one that comes
    //    later reads -1.
    {
      std::lock_guard lk(slot_mu);
      request_fd.store(-1);
    }
    while (handlers_inside.load() != 0) std::this_thread::yield();
    // 3. Close it: the watcher reads end-of-file and returns.
    ::close(write_fd_);
    if (watcher_.joinable()) watcher_.join();
    ::close(read_fd_);
    read_fd_ = write_fd_ = -1;
    std::lock_guard lk(slot_mu);
    slot_taken = false;
  }

private:
  int read_fd_ = -1;
  int write_fd_ = -1;
  struct sigaction old_[std::size(handled_signals)] {};
  std::size_t installed_ = 0;
  std::thread watcher_;
};

bool is_clean(const exit_reason& r) { return r.is_normal() || r.what() == exit_reason::kind::shutdown; }

/// Step 4 after start: wait for the root to exit; returns the exit status.
int master_loop(session& s, ember::pid root) {
  spdlog::logger& log = *s.log;
  const std::chrono::milliseconds timeout = s.opts->shutdown_timeout;
  bool stopping = false;  // exit(root, shutdown) was sent
  bool killing = false;   // exit(root, kill) was sent
  ember::timer_ref deadline, last_resort;
  std::optional<exit_reason> ended;
  bool abandoned = false;
  auto kill_root = [&] {
    killing = true;
    ember::exit(root, exit_reason::kill());
    // The last resort: a root that swallows its kill is given up on.
    last_resort = ember::send_after(ember::self(), s.stop_timeout, kill_deadline{});
  };
  while (!ended) {
    ember::receive(
        [&](exit_message m) {
          if (m.from == root) ended = std::move(m.reason);  // others (other links of start's) are dropped
        },
        [&](shutdown_request r) {
          if (!stopping) {
            stopping = true;
            log.info("application: shutdown requested by {}; stopping root {}", request_source(r.signal), root);
            if (timeout.count() == 0) {
              log.error("application: shutdown_timeout is 0: killing root {} at once", root);
              kill_root();
              return;
            }
            ember::exit(root, exit_reason::shutdown());
            if (timeout.count() > 0) deadline = ember::send_after(ember::self(), timeout, shutdown_deadline{});
          } else if (r.signal != 0 && !killing) {
            log.error("application: {} during the shutdown: killing root {} at once", request_source(r.signal), root);
            kill_root();
          } else {
            log.debug("application: {} ignored: the shutdown is already under way", request_source(r.signal));
          }
        },
        [&](shutdown_deadline) {
          if (killing) return;
          log.error("application: root {} did not shut down within {} ms: killing it", root, timeout.count());
          kill_root();
        },
        [&](kill_deadline) {
          log.error("application: root {} did not exit within {} ms of being killed (runtime_options::stop_timeout); "
                    "abandoning it",
                    root, s.stop_timeout.count());
          abandoned = true;
          ended = exit_reason::killed();
        });
  }
  if (deadline.node) ember::cancel_timer(deadline);
  if (last_resort.node) ember::cancel_timer(last_resort);
  if (abandoned) return exit_status::killed;
  const exit_reason& r = *ended;
  if (is_clean(r)) {
    if (stopping) log.info("application: root {} shut down with reason {}", root, r);
    else log.info("application: root {} exited with reason {}", root, r);
    return exit_status::clean;
  }
  if (killing && r.what() == exit_reason::kind::killed) {
    log.error("application: root {} was killed", root);
    return exit_status::killed;
  }
  log.error("application: root {} exited with reason {}{}", root, r, stopping ? " during the shutdown" : "");
  return exit_status::crashed;
}

/// The master process (step 4).
void master(session& s) {
  ember::process_flag(ember::trap_exit, true);
  start_outcome out;
  try {
    out = s.fn(s.start);
  } catch (const std::exception& e) {
    out = {{}, exit_reason::error(e.what())};
  }
  if (out.failure) {
    s.log->error("application: the root failed to start: {}", *out.failure);
    s.status = exit_status::start_failed;
    return;
  }
  s.root_started = true;
  // Linking twice does nothing; a root started without a link gets one
  // here, and one already gone shows up as exit_message{root, noproc}
  // (after its real exit_message, when it was linked).
  ember::link(out.root);
  s.log->debug("application: started root {}", out.root);
  s.status = master_loop(s, out.root);
}

}  // namespace

int run(options o, start_fn fn, void* start) {
  if (ember::in_process())
    throw ember::error(
        "ember::application::run blocks until the application ends and must not be called from inside an ember "
        "process");
  if (o.shutdown_timeout > ember::max_timer_delay)
    throw invalid_option("ember::application::options::shutdown_timeout: at most " +
                         std::to_string(ember::max_timer_delay.count()) + " ms (or infinity)");
  if (o.shutdown_timeout.count() < 0 && o.shutdown_timeout != infinity)
    throw invalid_option("ember::application::options::shutdown_timeout = " +
                         std::to_string(o.shutdown_timeout.count()) + " ms: must be >= 0 (or infinity)");
  std::unique_ptr<runtime> rt;  // outlives `app`, whose watcher sends into it
  active_run app(o.handle_signals);
  rt = std::make_unique<runtime>(o.runtime);
  session s{&o, fn, start, &rt->core().logger()};
  s.stop_timeout = rt->options().stop_timeout;
  auto m = rt->spawn_monitor([&s] { master(s); });
  app.watch(m.pid);
  const exit_reason mr = m.wait();
  app.finish();
  if (s.status < 0) {
    // The master itself ended first (start called exit(), threw something
    // that is not a std::exception, ...).
    s.log->error("application: the application master exited with reason {}", mr);
    s.status = s.root_started ? exit_status::crashed : exit_status::start_failed;
  }
  rt->stop();
  return s.status;
}

}  // namespace detail

bool stop() {
  std::lock_guard lk(detail::slot_mu);
  const int fd = detail::request_fd.load();
  if (fd < 0) return false;
  detail::put_request(fd, 0);
  return true;
}

}  // namespace ember::application
