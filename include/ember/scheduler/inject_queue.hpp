// ember/scheduler/inject_queue.hpp — the runtime-wide queue of runnable
// processes that did not go to a worker's local queue: those made runnable
// by threads outside the runtime, and a worker's overflow.
//
// Items travel in batches: a node holds an array of pointers, so a worker
// taking work copies one array under the lock instead of walking a list
// through cold control blocks.
//
// Threads: any thread.  A mutex guards the list; `len_` lets workers skip
// the lock when the queue is empty.
// Ownership: holds raw pointers to runnable items and never frees them;
// owns its batch nodes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace ember::detail {

template <class T>
class inject_queue {
  struct batch {
    batch* next;
    std::size_t n;
    std::size_t taken;
    T* items[1];  // really n
  };
  static batch* make_batch(T* const* items, std::size_t n) {
    void* m = std::malloc(sizeof(batch) + (n - 1) * sizeof(T*));
    if (!m) throw std::bad_alloc();
    auto* b = static_cast<batch*>(m);
    b->next = nullptr;
    b->n = n;
    b->taken = 0;
    std::memcpy(b->items, items, n * sizeof(T*));
    return b;
  }

public:
  inject_queue() = default;
  inject_queue(const inject_queue&) = delete;
  inject_queue& operator=(const inject_queue&) = delete;
  ~inject_queue() {
    while (head_) {
      batch* b = head_;
      head_ = b->next;
      std::free(b);
    }
  }

  void push(T* t) { push_batch(&t, 1); }
  /// Push n items in order.
  void push_batch(T* const* items, std::size_t n) {
    if (n == 0) return;
    batch* b = make_batch(items, n);
    std::lock_guard lk(mu_);
    if (tail_) tail_->next = b; else head_ = b;
    tail_ = b;
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
  }
  /// Pop up to max items into sink(T*), oldest first; returns how many.
  template <class Sink>
  std::size_t pop_batch(std::size_t max, Sink&& sink) {
    if (len_.load(std::memory_order_acquire) == 0) return 0;
    T* out[256];
    if (max > 256) max = 256;
    std::size_t n = 0;
    batch* done = nullptr;
    {
      std::lock_guard lk(mu_);
      while (head_ && n < max) {
        batch* b = head_;
        std::size_t k = b->n - b->taken;
        if (k > max - n) k = max - n;
        std::memcpy(out + n, b->items + b->taken, k * sizeof(T*));
        b->taken += k;
        n += k;
        if (b->taken == b->n) {
          head_ = b->next;
          if (!head_) tail_ = nullptr;
          b->next = done;
          done = b;
        }
      }
      // ordering: relaxed is enough under the lock; readers use it as a hint
      len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    while (done) {
      batch* nx = done->next;
      std::free(done);
      done = nx;
    }
    for (std::size_t i = 0; i < n; ++i) sink(out[i]);
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return len_.load(std::memory_order_acquire) == 0; }
  [[nodiscard]] std::size_t len() const noexcept { return len_.load(std::memory_order_acquire); }

private:
  std::mutex mu_;
  batch* head_ = nullptr;  // guarded by mu_
  batch* tail_ = nullptr;  // guarded by mu_
  std::atomic<std::size_t> len_{0};  // written under mu_, read anywhere
};

}  // namespace ember::detail
