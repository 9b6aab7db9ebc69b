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
    envelope* h = inbox_.load(std::memory_order_relaxed);
    for (;;) {
      if (h == closed_marker()) {
        e->destroy(e);
        return push_result::closed;
      }
      e->next = (h == blocked_marker()) ? nullptr : h;
      // ordering: release publishes the envelope; acquire/seq_cst pairs with
      // the owner's block() so exactly one side sees the other.
      if (inbox_.compare_exchange_weak(h, e, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
        return h == blocked_marker() ? push_result::woke_owner : push_result::queued;
    }
  }
  /// Wake a blocked owner without a message (receive timeout).  True when the
  /// caller took the blocked marker and must schedule the owner.
  bool unblock() noexcept {
    envelope* h = blocked_marker();
    return inbox_.compare_exchange_strong(h, nullptr, std::memory_order_acq_rel);
  }

  // -- owner only -----------------------------------------------------------
  /// Move everything pushed so far to the end of the save queue, in order.
  /// Returns the first envelope moved (nullptr if none).
  envelope* drain_inbox() noexcept {
    if (inbox_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    envelope* h = inbox_.exchange(nullptr, std::memory_order_acquire);
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
    save_len_ += n;
    return rev;
  }
  /// Try to block: succeeds only if nothing was pushed since the last drain.
  bool block() noexcept {
    envelope* h = nullptr;
    return inbox_.compare_exchange_strong(h, blocked_marker(), std::memory_order_acq_rel);
  }
  /// Oldest saved envelope (after drain_inbox), or nullptr.
  [[nodiscard]] envelope* first() const noexcept { return save_first_; }
  /// Unlink e, whose predecessor in the save queue is prev (nullptr: e is first).
  void unlink(envelope* prev, envelope* e) noexcept {
    envelope* nx = e->next;
    if (prev) prev->next = nx; else save_first_ = nx;
    if (save_last_ == e) save_last_ = prev;
    --save_len_;
  }
  /// Messages in the save queue (not counting ones still in the inbox).
  [[nodiscard]] std::size_t saved() const noexcept { return save_len_; }
  [[nodiscard]] bool inbox_empty() const noexcept {
    envelope* h = inbox_.load(std::memory_order_acquire);
    return h == nullptr || h == blocked_marker() || h == closed_marker();
  }

  /// Reopen for a new incarnation (the mailbox must be closed).
  void open() noexcept { inbox_.store(nullptr, std::memory_order_release); }
  /// Refuse further pushes and destroy everything held.
  void close() noexcept {
    envelope* h = inbox_.exchange(closed_marker(), std::memory_order_acq_rel);
    if (h != blocked_marker() && h != closed_marker()) destroy_list(h);
    destroy_list(save_first_);
    save_first_ = save_last_ = nullptr;
    save_len_ = 0;
  }

  static envelope* blocked_marker() noexcept { return reinterpret_cast<envelope*>(std::uintptr_t{1}); }
  static envelope* closed_marker() noexcept { return reinterpret_cast<envelope*>(std::uintptr_t{2}); }

private:
  static void destroy_list(envelope* h) noexcept {
    while (h) {
      envelope* nx = h->next;
      h->destroy(h);
      h = nx;
    }
  }

  std::atomic<envelope*> inbox_{closed_marker()};  // any thread
  envelope* save_first_ = nullptr;                 // owner only
  envelope* save_last_ = nullptr;                  // owner only
  std::size_t save_len_ = 0;                       // owner only
};

}  // namespace ember::detail
