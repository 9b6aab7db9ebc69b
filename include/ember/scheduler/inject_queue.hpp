// ember/scheduler/inject_queue.hpp — the runtime-wide queue of runnable
// processes that did not go to a worker's local queue: those made runnable
// by threads outside the runtime, and a worker's overflow.
//
// Threads: any thread.  A mutex guards the list; `len_` lets workers skip
// the lock when the queue is empty.
// Ownership: holds raw pointers to runnable items linked through their
// intrusive `next_run` field; never frees them.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

namespace ember::detail {

template <class T>  // T has a `T* next_run` member
class inject_queue {
public:
  void push(T* t) {
    t->next_run = nullptr;
    std::lock_guard lk(mu_);
    append_locked(t, t, 1);
  }
  /// Push n items in order.
  void push_batch(T* const* items, std::size_t n) {
    if (n == 0) return;
    for (std::size_t i = 0; i + 1 < n; ++i) items[i]->next_run = items[i + 1];
    items[n - 1]->next_run = nullptr;
    std::lock_guard lk(mu_);
    append_locked(items[0], items[n - 1], n);
  }
  /// Pop up to max items into sink(T*), oldest first; returns how many.
  template <class Sink>
  std::size_t pop_batch(std::size_t max, Sink&& sink) {
    if (len_.load(std::memory_order_acquire) == 0) return 0;
    T* h;
    std::size_t n = 0;
    {
      std::lock_guard lk(mu_);
      h = head_;
      T* last = nullptr;
      while (h && n < max) {
        last = h;
        h = h->next_run;
        ++n;
      }
      if (n == 0) return 0;
      T* first = head_;
      head_ = h;
      if (!head_) tail_ = nullptr;
      // ordering: relaxed is enough under the lock; readers only use it as a hint
      len_.store(len_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
      last->next_run = nullptr;
      h = first;
    }
    while (h) {
      T* nx = h->next_run;
      sink(h);
      h = nx;
    }
    return n;
  }
  [[nodiscard]] bool empty() const noexcept { return len_.load(std::memory_order_acquire) == 0; }
  [[nodiscard]] std::size_t len() const noexcept { return len_.load(std::memory_order_acquire); }

private:
  void append_locked(T* first, T* last, std::size_t n) {
    if (tail_) tail_->next_run = first; else head_ = first;
    tail_ = last;
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
  }

  std::mutex mu_;
  T* head_ = nullptr;  // guarded by mu_
  T* tail_ = nullptr;  // guarded by mu_
  std::atomic<std::size_t> len_{0};  // written under mu_, read anywhere
};

}  // namespace ember::detail
