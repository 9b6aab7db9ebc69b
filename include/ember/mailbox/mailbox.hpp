// ember/mailbox/mailbox.hpp — a process's mailbox: a lock-free inbox that any
// thread pushes to, and the process's private, ordered save queue that
// selective receive scans.
//
// The inbox is one atomic word.  It holds a LIFO list of envelopes pushed by
// senders (one CAS each), or one of two markers:
//   blocked — the owner is waiting for a message: the sender whose CAS
//             replaces the marker is the one that must wake the owner
//             (exactly one sender sees it), so waking needs no other state;
//   closed  — the owner has exited: senders drop their message.
// The word's top 16 bits count the envelopes in the inbox (saturating at
// 65,535), so the queue length can be read from any thread at no cost to
// senders (user-space pointers fit in 48 bits).
// The owner takes the whole inbox with one exchange and appends it, reversed
// back into send order, to the save queue.  Order between one sender and one
// receiver is therefore kept: a sender's pushes are ordered by its CASes.
//
// Threads: push/unblock from any thread; everything else owner only (the
// process, or its worker between its slices).
// Ownership: the mailbox owns every envelope it holds; close() destroys them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ember/mailbox/envelope.hpp"

namespace ember::detail {

class mailbox {
public:
  enum class push_result { queued, woke_owner, closed };

  mailbox() = default;
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;

  // -- any thread -----------------------------------------------------------
  /// Publish e.  Returns woke_owner when the owner was blocked and the caller
  /// must now schedule it; closed when the owner is gone (e is destroyed).
  push_result push(envelope* e) noexcept {
    std::uintptr_t h = inbox_.load(std::memory_order_relaxed);
    for (;;) {
      if (h == closed_word) {
        e->destroy(e);
        return push_result::closed;
      }
      std::uintptr_t n = count_of(h);
      if (h == blocked_word) {
        e->next = nullptr;
        n = 0;
      } else {
        e->next = pointer_of(h);
      }
      n += n < max_count;
      // ordering: release publishes the envelope; acquire/seq_cst pairs with
      // the owner's block() so exactly one side sees the other.
      if (inbox_.compare_exchange_weak(h, reinterpret_cast<std::uintptr_t>(e) | (n << count_shift),
                                       std::memory_order_acq_rel, std::memory_order_relaxed))
        return h == blocked_word ? push_result::woke_owner : push_result::queued;
    }
  }
  /// Wake a blocked owner without a message (receive timeout).  True when the
  /// caller took the blocked marker and must schedule the owner.
  bool unblock() noexcept {
    std::uintptr_t h = blocked_word;
    return inbox_.compare_exchange_strong(h, 0, std::memory_order_acq_rel);
  }
  /// Messages queued (saved plus not yet drained; the undrained part
  /// saturates at 65,535).  Any thread; a racy snapshot.
  [[nodiscard]] std::size_t length() const noexcept {
    std::uintptr_t h = inbox_.load(std::memory_order_relaxed);
    std::size_t inbox = (h == blocked_word || h == closed_word) ? 0 : count_of(h);
    return inbox + save_len_.load(std::memory_order_relaxed);
  }

  // -- owner only -----------------------------------------------------------
  /// Move everything pushed so far to the end of the save queue, in order.
  /// Returns the first envelope moved (nullptr if none).
  envelope* drain_inbox() noexcept {
    if (inbox_.load(std::memory_order_relaxed) == 0) return nullptr;
    envelope* h = pointer_of(inbox_.exchange(0, std::memory_order_acquire));
    envelope* rev = nullptr;
    envelope* last = h;
    std::size_t n = 0;
    while (h) {
      envelope* nx = h->next;
      h->next = rev;
      rev = h;
      h = nx;
      ++n;
    }
    if (!rev) return nullptr;
    if (save_last_) save_last_->next = rev; else save_first_ = rev;
    save_last_ = last;
    add_saved(std::ptrdiff_t(n));
    return rev;
  }
  /// Try to block: succeeds only if nothing was pushed since the last drain.
  bool block() noexcept {
    std::uintptr_t h = 0;
    return inbox_.compare_exchange_strong(h, blocked_word, std::memory_order_acq_rel);
  }
  /// Oldest saved envelope (after drain_inbox), or nullptr.
  [[nodiscard]] envelope* first() const noexcept { return save_first_; }
  /// Unlink e, whose predecessor in the save queue is prev (nullptr: e is first).
  void unlink(envelope* prev, envelope* e) noexcept {
    envelope* nx = e->next;
    if (prev) prev->next = nx; else save_first_ = nx;
    if (save_last_ == e) save_last_ = prev;
    add_saved(-1);
  }
  /// Messages in the save queue (not counting ones still in the inbox).
  [[nodiscard]] std::size_t saved() const noexcept { return save_len_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool inbox_empty() const noexcept {
    std::uintptr_t h = inbox_.load(std::memory_order_acquire);
    return h == 0 || h == blocked_word || h == closed_word;
  }

  /// Reopen for a new incarnation (the mailbox must be closed).
  void open() noexcept { inbox_.store(0, std::memory_order_release); }
  /// Refuse further pushes and destroy everything held, showing each
  /// envelope to `last_look` (noexcept) just before it is destroyed.
  template <class F>
  void close(F&& last_look) noexcept {
    std::uintptr_t h = inbox_.exchange(closed_word, std::memory_order_acq_rel);
    if (h != blocked_word && h != closed_word) destroy_list(pointer_of(h), last_look);
    destroy_list(save_first_, last_look);
    save_first_ = save_last_ = nullptr;
    save_len_.store(0, std::memory_order_relaxed);
  }
  void close() noexcept {
    close([](envelope*) noexcept {});
  }

private:
  static constexpr std::uintptr_t blocked_word = 1;
  static constexpr std::uintptr_t closed_word = 2;
  static constexpr unsigned count_shift = 48;
  static constexpr std::uintptr_t max_count = 0xffff;
  static constexpr std::uintptr_t pointer_mask = (std::uintptr_t{1} << count_shift) - 1;

  static envelope* pointer_of(std::uintptr_t w) noexcept {
    return reinterpret_cast<envelope*>(w & pointer_mask);
  }
  static std::uintptr_t count_of(std::uintptr_t w) noexcept { return w >> count_shift; }
  // ordering: relaxed; only the owner writes, other threads read a snapshot.
  void add_saved(std::ptrdiff_t d) noexcept {
    save_len_.store(std::size_t(std::ptrdiff_t(save_len_.load(std::memory_order_relaxed)) + d),
                    std::memory_order_relaxed);
  }

  template <class F>
  static void destroy_list(envelope* h, F& last_look) noexcept {
    while (h) {
      envelope* nx = h->next;
      last_look(h);
      h->destroy(h);
      h = nx;
    }
  }

  std::atomic<std::uintptr_t> inbox_{closed_word};  // any thread
  envelope* save_first_ = nullptr;                  // owner only
  envelope* save_last_ = nullptr;                   // owner only
  std::atomic<std::size_t> save_len_{0};            // owner writes; any thread reads
};

}  // namespace ember::detail
