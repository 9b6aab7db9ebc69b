// ember/scheduler/idle.hpp — which workers are parked, and how many are
// searching for work, so that new work wakes a worker only when needed.
//
// Protocol (each side does its store, a full fence, then its check — so a
// worker going to sleep and a thread publishing work cannot miss each other):
//  1. A worker with nothing to do registers as sleeping (to_parked), then
//     looks at every queue once more; if it finds work it takes itself back
//     (cancel_park) and runs it.
//  2. Whoever publishes work a sleeping worker could steal calls
//     notify_one(): if nobody is searching and someone sleeps, one sleeper
//     is taken off the list and unparked.
//  3. At most half of the awake workers search (steal) at once; a searcher
//     that finds work, if it was the last searcher, wakes another worker
//     (there may be more work behind what it found).
//
// Threads: any thread.  Ownership: none (worker indices only).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace ember::detail {

class idle_set {
public:
  explicit idle_set(std::uint32_t workers) : workers_(workers) { sleepers_.reserve(workers); }

  /// Try to become a searcher; false when enough workers already search.
  bool begin_search() noexcept {
    std::uint32_t s = searching_.load(std::memory_order_relaxed);
    std::uint32_t awake = workers_ - sleeping_.load(std::memory_order_relaxed);
    if (2 * s >= awake) return false;
    searching_.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  /// Stop searching; true when this was the last searcher.
  bool end_search() noexcept { return searching_.fetch_sub(1, std::memory_order_seq_cst) == 1; }

  /// Step 1: register worker w as sleeping.
  void to_parked(std::uint32_t w) {
    std::lock_guard lk(mu_);
    sleepers_.push_back(w);
    sleeping_.fetch_add(1, std::memory_order_seq_cst);
  }
  /// Take w back off the sleeping list; false if a notifier already took it
  /// (then a wake-up is on its way to w and must be consumed).
  bool cancel_park(std::uint32_t w) {
    std::lock_guard lk(mu_);
    for (auto it = sleepers_.begin(); it != sleepers_.end(); ++it) {
      if (*it == w) {
        sleepers_.erase(it);
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        return true;
      }
    }
    return false;
  }
  /// Step 2: pick a sleeper to wake, or -1.  `force` ignores searchers (used
  /// at shutdown and for timers).
  int pick_sleeper(bool force = false) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) == 0) return -1;
    if (!force && searching_.load(std::memory_order_seq_cst) != 0) return -1;
    std::lock_guard lk(mu_);
    if (sleepers_.empty()) return -1;
    std::uint32_t w = sleepers_.back();
    sleepers_.pop_back();
    sleeping_.fetch_sub(1, std::memory_order_seq_cst);
    return int(w);
  }
  /// ordering: seq_cst; the monitor's check before it sleeps with no tick
  /// pairs with a worker's cancel_park then wake_if_asleep (sysmon.hpp).
  [[nodiscard]] std::uint32_t sleeping() const noexcept { return sleeping_.load(std::memory_order_seq_cst); }

private:
  const std::uint32_t workers_;
  std::atomic<std::uint32_t> searching_{0};
  std::atomic<std::uint32_t> sleeping_{0};
  std::mutex mu_;
  std::vector<std::uint32_t> sleepers_;  // guarded by mu_
};

}  // namespace ember::detail
