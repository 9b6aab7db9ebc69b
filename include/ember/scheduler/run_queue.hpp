// ember/scheduler/run_queue.hpp — a worker's bounded local run queue.
//
// A fixed ring of Capacity slots (a power of two).  The owning worker pushes
// at the tail and pops at the head (FIFO, so a preempted process goes to the
// back); other workers steal half of it at once.  The design follows the
// well-known two-head scheme: `head_` packs (steal, real); a stealer first
// moves `real` forward to claim a range, copies it, then moves `steal` up to
// `real` to release the slots.  The owner never overwrites slots between
// `steal` and its tail, so claimed slots stay intact while they are copied.
//
// Threads: the run_queue object is split by role.  push/pop/overflow are
// owner only (the worker that owns the queue); steal_into and len are for
// any worker (stealer role).
// Ownership: holds raw pointers to runnable items; an item is in exactly one
// queue at a time and the queue never frees it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ember/base/config.hpp"

namespace ember::detail {

template <class T, std::uint32_t Capacity = 256>
class run_queue {
  static_assert((Capacity & (Capacity - 1)) == 0, "capacity must be a power of two");
  static constexpr std::uint32_t mask = Capacity - 1;

  static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }
  static constexpr std::uint32_t steal_of(std::uint64_t h) noexcept { return std::uint32_t(h >> 32); }
  static constexpr std::uint32_t real_of(std::uint64_t h) noexcept { return std::uint32_t(h); }

public:
  static constexpr std::uint32_t capacity = Capacity;

  // -- owner only -----------------------------------------------------------
  /// Push t at the tail.  When full, moves half of the queue plus t into
  /// `overflow` (a callable taking (T** items, size_t n)) and returns.
  template <class Overflow>
  void push(T* t, Overflow&& overflow) {
    for (;;) {
      // ordering: acquire pairs with stealers' release of the steal head.
      std::uint64_t head = head_.load(std::memory_order_acquire);
      std::uint32_t steal = steal_of(head);
      std::uint32_t real = real_of(head);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);  // ordering: owner's own value
      if (tail - steal < Capacity) {
        buf_[tail & mask].store(t, std::memory_order_relaxed);
        // ordering: release publishes the slot to stealers.
        tail_.store(tail + 1, std::memory_order_release);
        return;
      }
      if (steal != real) {  // a stealer is mid-copy: hand t over instead
        T* one[1] = {t};
        overflow(one, std::size_t{1});
        return;
      }
      // Full and no stealer: move half to the overflow in one batch.
      constexpr std::uint32_t half = Capacity / 2;
      if (!head_.compare_exchange_strong(head, pack(real + half, real + half),
                                         std::memory_order_acq_rel, std::memory_order_relaxed))
        continue;  // a stealer got in; retry, there may be room now
      std::array<T*, half + 1> batch;
      for (std::uint32_t i = 0; i < half; ++i)
        batch[i] = buf_[(real + i) & mask].load(std::memory_order_relaxed);
      batch[half] = t;
      overflow(batch.data(), std::size_t{half + 1});
      return;
    }
  }

  /// Pop from the head, or nullptr when empty.
  T* pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      std::uint32_t steal = steal_of(head);
      std::uint32_t real = real_of(head);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (real == tail) return nullptr;
      std::uint64_t next = steal == real ? pack(real + 1, real + 1) : pack(steal, real + 1);
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
        return buf_[real & mask].load(std::memory_order_relaxed);
    }
  }

  // -- any worker (stealer) ---------------------------------------------------
  /// Steal about half of this queue into dst (owned by the caller, and
  /// empty).  Returns one stolen item to run now (the rest are in dst), or
  /// nullptr.
  T* steal_into(run_queue& dst) noexcept {
    std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    std::uint64_t prev = head_.load(std::memory_order_acquire);
    std::uint32_t n;
    std::uint64_t next;
    for (;;) {
      std::uint32_t steal = steal_of(prev);
      std::uint32_t real = real_of(prev);
      if (steal != real) return nullptr;  // another stealer is active
      std::uint32_t tail = tail_.load(std::memory_order_acquire);
      n = tail - real;
      n -= n / 2;
      if (n == 0) return nullptr;
      next = pack(steal, real + n);
      if (head_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
        break;
    }
    std::uint32_t first = steal_of(next);
    for (std::uint32_t i = 0; i < n; ++i)
      dst.buf_[(dst_tail + i) & mask].store(buf_[(first + i) & mask].load(std::memory_order_relaxed),
                                            std::memory_order_relaxed);
    // Release the claimed slots: steal catches up with real.
    prev = next;
    for (;;) {
      std::uint32_t real = real_of(prev);
      if (head_.compare_exchange_weak(prev, pack(real, real), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
        break;
    }
    --n;
    T* ret = dst.buf_[(dst_tail + n) & mask].load(std::memory_order_relaxed);
    if (n > 0) dst.tail_.store(dst_tail + n, std::memory_order_release);
    return ret;
  }

  /// Items queued (approximate while others act on the queue).
  [[nodiscard]] std::uint32_t len() const noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_acquire) - steal_of(head);
  }
  [[nodiscard]] bool empty() const noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_acquire) == real_of(head);
  }

private:
  alignas(cache_line) std::atomic<std::uint64_t> head_{0};
  alignas(cache_line) std::atomic<std::uint32_t> tail_{0};
  std::array<std::atomic<T*>, Capacity> buf_{};
};

}  // namespace ember::detail
