// ember/timer/timer_queue.hpp — a worker's pending receive timeouts.
//
// A binary heap ordered by deadline.  An entry names a process incarnation
// and the receive call (wait_seq) that armed it; an entry whose process has
// moved on is simply dropped when it comes due, so cancelling costs nothing.
//
// Threads: owner only (the worker).  Ownership: plain values.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace ember::detail {

struct process;
using clock = std::chrono::steady_clock;

struct timeout_entry {
  clock::time_point deadline;
  process* p;
  std::uint64_t serial;
  std::uint64_t wait_seq;
};

class timer_queue {
public:
  void add(const timeout_entry& e) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), later);
  }
  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] clock::time_point next_deadline() const noexcept { return heap_.front().deadline; }
  /// Pop every entry due at `now`, passing each to fire(entry).
  template <class Fire>
  void expire(clock::time_point now, Fire&& fire) {
    while (!heap_.empty() && heap_.front().deadline <= now) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      timeout_entry e = heap_.back();
      heap_.pop_back();
      fire(e);
    }
  }

private:
  static bool later(const timeout_entry& a, const timeout_entry& b) noexcept {
    return a.deadline > b.deadline;
  }
  std::vector<timeout_entry> heap_;
};

}  // namespace ember::detail
