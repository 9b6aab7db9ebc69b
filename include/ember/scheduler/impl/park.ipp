// ember/scheduler/impl/park.ipp — parker (compiled once, in src/ember.cpp).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

#include "ember/scheduler/park.hpp"

namespace ember::detail {

namespace {
void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected, std::chrono::nanoseconds timeout) {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
    tsp = &ts;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_PRIVATE, expected, tsp,
            nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>* addr) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}
}  // namespace

void parker::park(std::chrono::nanoseconds timeout) {
  std::uint32_t s = notified;
  if (state_.compare_exchange_strong(s, empty, std::memory_order_acquire)) return;
  s = empty;
  if (!state_.compare_exchange_strong(s, parked, std::memory_order_acq_rel)) {
    state_.store(empty, std::memory_order_release);  // it was notified meanwhile
    return;
  }
  if (timeout.count() != 0) futex_wait(&state_, parked, timeout);
  // Woken, timed out, or spurious: either way the slot goes back to empty.
  state_.exchange(empty, std::memory_order_acq_rel);
}

void parker::unpark() {
  // ordering: seq_cst (see take_notification).
  if (state_.exchange(notified, std::memory_order_seq_cst) == parked) futex_wake(&state_);
}

}  // namespace ember::detail
