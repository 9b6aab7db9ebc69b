// ember/scheduler/park.hpp — put one worker thread to sleep until it is
// notified or a deadline passes (a futex; no spinning).
//
// Threads: park() owner only (the worker); unpark() any thread.
// Ownership: none.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ember::detail {

class parker {
public:
  /// Sleep until unpark() or `timeout` (negative: no timeout).  A notification
  /// that came before park() makes it return at once.
  void park(std::chrono::nanoseconds timeout);
  /// Wake the parked owner, or make its next park() return at once.
  void unpark();
  /// Owner, instead of park(): consume a pending notification; true when
  /// there was one.
  bool take_notification() noexcept {
    std::uint32_t s = notified;
    // ordering: seq_cst; pairs with unpark()'s exchange (worker::unpark).
    return state_.compare_exchange_strong(s, empty, std::memory_order_seq_cst);
  }

private:
  enum : std::uint32_t { empty = 0, parked = 1, notified = 2 };
  std::atomic<std::uint32_t> state_{empty};
};

}  // namespace ember::detail
