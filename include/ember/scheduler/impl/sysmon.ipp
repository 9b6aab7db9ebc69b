// ember/scheduler/impl/sysmon.ipp — the monitor thread (compiled once, in
// src/ember.cpp).  What a tick does is at the top of scheduler/sysmon.hpp.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "ember/base/fast_clock.hpp"
#include "ember/detail/runtime_core.hpp"
#include "ember/process_info.hpp"
#include "ember/scheduler/sysmon.hpp"

namespace ember::detail {

namespace {
enum : std::uint8_t { sm_preempted = 1, sm_long = 2, sm_handoff_due = 4, sm_refused = 8 };

std::chrono::nanoseconds tick_interval(const runtime_options& o) {
  using namespace std::chrono;
  nanoseconds shortest = nanoseconds(milliseconds(20));
  const bool manual = o.clock != nullptr;
  if (!manual && o.time_slice.count() > 0) shortest = std::min<nanoseconds>(shortest, o.time_slice);
  if (!manual && o.handoff_after.count() > 0) shortest = std::min<nanoseconds>(shortest, o.handoff_after);
  return std::clamp<nanoseconds>(shortest / 2, microseconds(50), milliseconds(10));
}
}  // namespace

sysmon::sysmon(runtime_core& rt)
    : rt_(rt),
      interval_(tick_interval(rt.options())),
      backoff_max_(std::max<std::chrono::nanoseconds>(interval_, std::chrono::milliseconds(1))),
      sleep_(interval_),
      // (rt.manual() is not known yet: the runtime is being made.)
      slice_ns_(rt.options().clock ? 0 : std::chrono::nanoseconds(rt.options().time_slice).count()),
      handoff_ns_(rt.options().clock ? 0 : std::chrono::nanoseconds(rt.options().handoff_after).count()),
      long_ns_(std::chrono::nanoseconds(rt.options().long_schedule).count()) {}

void sysmon::start() {
  thread_ = std::thread([this] { main(); });
}

void sysmon::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void sysmon::wake() noexcept {
  {
    std::lock_guard lk(mu_);
    asleep_.store(false, std::memory_order_seq_cst);
  }
  cv_.notify_all();
}

void sysmon::main() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    lk.unlock();
    const std::int64_t now = fast_clock::steady_ns();
    rt_.advance_clock_tick();
    const scan_result seen = scan(now);
    const bool active = seen.active;
    rt_.carriers().reap();
    // Back off while no slice spans a tick (short slices only, or idle
    // spares): a tick wakes this thread, which takes a CPU from a worker
    // when every CPU runs one.  A slice seen twice brings the interval back.
    if (seen.held) {
      sleep_ = interval_;
      quiet_ticks_ = 0;
    } else if (++quiet_ticks_ >= quiet_ticks_to_back_off && sleep_ < backoff_max_) {
      sleep_ = std::min(sleep_ * 2, backoff_max_);
      quiet_ticks_ = 0;
    }
    lk.lock();
    if (stop_) break;
    if (!active) {
      // Asleep with no tick while every worker is parked: the store, then
      // the check (a worker's cancel_park, then its wake_if_asleep, is the
      // other side).
      asleep_.store(true, std::memory_order_seq_cst);
      if (rt_.idle().sleeping() == rt_.worker_count()) {
        cv_.wait(lk, [this] { return stop_ || !asleep_.load(std::memory_order_seq_cst); });
        continue;
      }
      asleep_.store(false, std::memory_order_relaxed);
    }
    cv_.wait_for(lk, sleep_, [this] { return stop_; });
  }
}

sysmon::scan_result sysmon::scan(std::int64_t now) {
  scan_result seen;
  carrier* handoff = nullptr;
  std::uint64_t handoff_slices = 0;
  rt_.carriers().for_each([&](carrier& c) {
    look_at(c, now, seen);
    // One hand-off per tick, after the walk (it takes the pool's mutex).
    if (!handoff && (c.sm_flags & sm_handoff_due) && c.sm_handed_after_ns < 0 && c.owned) {
      handoff = &c;
      handoff_slices = c.sm_slices;
    }
  });
  if (handoff) {
    switch (rt_.carriers().retake(*handoff, handoff_slices)) {
      case retake_result::handed: handoff->sm_handed_after_ns = now - handoff->sm_since_ns; break;
      case retake_result::busy: break;  // in a runtime call: next tick
      case retake_result::refused:
        if (!(handoff->sm_flags & sm_refused)) {
          handoff->sm_flags |= sm_refused;
          refused_.fetch_add(1, std::memory_order_relaxed);
          if (!refused_logged_) {
            refused_logged_ = true;
            try {
              rt_.logger().warn(
                  "scheduler: a worker is held by a process that makes no runtime call, and no thread is left to "
                  "hand it to (runtime_options::blocking_threads = {}); its other processes wait",
                  rt_.carriers().bound());
            } catch (...) {
            }
          }
        }
        break;
    }
  }
  return seen;
}

void sysmon::look_at(carrier& c, std::int64_t now, scan_result& seen) {
  // ordering: acquire; the count is compared between ticks (retake()
  // re-checks it inside the handshake).
  const std::uint64_t slices = c.slices_.load(std::memory_order_acquire);
  if (slices != c.sm_slices) {
    c.sm_slices = slices;
    c.sm_since_ns = now;
    c.sm_flags = 0;
    c.sm_handed_after_ns = -1;
    c.sm_cpu_at = -1;
    if (slices & 1) seen.active = true;
    return;
  }
  if (!(slices & 1)) return;  // between slices (scheduler code, or parked)
  seen.active = true;
  if (c.blocking_.load(std::memory_order_relaxed)) return;  // ember::blocking: off the schedulers on purpose
  // A slice that spans a tick on a carrier that still runs a worker: it
  // may be a loop to hand off, so the ticks keep their pace.
  if (c.owned) seen.held = true;
  // The slice began up to a tick before the monitor first saw it.
  const std::int64_t age = now - c.sm_since_ns + interval_.count();
  if (slice_ns_ > 0 && age >= slice_ns_) {
    // The process of this slice: read between two reads of the count (the
    // carrier writes the process, then the count).  A slice that ends just
    // after the check costs its process one early yield at worst.  Again
    // at every tick while the slice goes on: the process's own update of
    // its budget may have overwritten the revocation.
    process* p = c.running_.load(std::memory_order_acquire);
    if (p && c.slices_.load(std::memory_order_acquire) == slices) {
      p->budget.store(budget_revoked, std::memory_order_relaxed);
      if (!(c.sm_flags & sm_preempted)) preemptions_.fetch_add(1, std::memory_order_relaxed);
    }
    c.sm_flags |= sm_preempted;
  }
  if (long_ns_ > 0 && age >= long_ns_ && !(c.sm_flags & sm_long)) {
    c.sm_flags |= sm_long;
    // The carrier reports it when the slice ends (carrier::slice_end).
    c.mark_long_schedule(slices, c.sm_since_ns - interval_.count());
  }
  // Outside a lease: its process has made no runtime call that touches the
  // worker since it began (retake() makes sure).  Hand it off when its
  // thread is running the process's own code or blocked in the kernel —
  // not when the system merely has not given the thread a CPU (handing
  // the worker to yet another thread would not help then).
  if (handoff_ns_ > 0 && c.owned && c.busy_.load(std::memory_order_relaxed) == 0 && age >= handoff_ns_ / 2 &&
      !(c.sm_flags & sm_handoff_due)) {
    const std::int64_t cpu = thread_cpu_ns(c);
    if (c.sm_cpu_at < 0) {
      c.sm_cpu_ns = cpu;
      c.sm_cpu_at = now;
    } else if (age >= handoff_ns_) {
      const std::int64_t window = now - c.sm_cpu_at;
      if (cpu < 0 || cpu - c.sm_cpu_ns >= window / 4 || thread_blocked(c)) {
        c.sm_flags |= sm_handoff_due;
      } else {  // waiting for a CPU: look again later
        c.sm_cpu_ns = cpu;
        c.sm_cpu_at = now;
      }
    }
  }
}

std::int64_t sysmon::thread_cpu_ns(const carrier& c) noexcept {
  timespec ts{};
  if (::clock_gettime(c.cpu_clock, &ts) != 0) return -1;
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool sysmon::thread_blocked(const carrier& c) noexcept {
  // The state in /proc/self/task/<tid>/stat: "tid (comm) S ...".
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(c.tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // cannot tell: judge by time alone
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = 0;
  const char* paren = std::strrchr(buf, ')');
  if (!paren || paren[1] != ' ') return true;
  const char state = paren[2];
  return state != 'R';
}

}  // namespace ember::detail
