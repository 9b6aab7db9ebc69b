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
// A bounded mailbox (spawn_options::mailbox) also keeps an exact count of
// the ordinary messages it holds: a sender takes a slot with one
// fetch_add before pushing (and gives it back when the bound says no); the
// owner gives a slot back for each ordinary message it removes.  Under
// drop_oldest a sender may go past the capacity, up to twice it; the owner
// drops the oldest ordinary messages when it next drains.  System messages
// (envelope_ops::ordinary false) take no slot.
// The owner also keeps the bytes of the messages it has drained, and the
// long-message-queue flag (set by the sender that saw the length reach the
// threshold, cleared by the owner when it falls to the lower one).
//
// Threads: push/unblock/reserve from any thread; everything else owner only
// (the process, or its worker between its slices).
// Ownership: the mailbox owns every envelope it holds; close() destroys them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ember/base/config.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/options.hpp"

namespace ember::detail {

/// Called for each message a drop_oldest bound drops (just before it is
/// destroyed): a dropped gen_server call is answered "refused" (call.ipp).
void dropped_by_bound(envelope* e) noexcept;

class mailbox {
public:
  enum class push_result { queued, woke_owner, closed };

  /// What reserve() found: room, room past the capacity (drop_oldest: the
  /// owner trims), or no room (the slot was given back).
  enum class admit { ok, over, full };

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
        free_envelope(e);
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
  /// Whether sends must take the slow path: the mailbox is bounded or its
  /// length is watched.
  [[nodiscard]] bool watched() const noexcept { return watch_.load(std::memory_order_relaxed) != 0; }
  [[nodiscard]] std::uint32_t capacity() const noexcept {
    return std::uint32_t(watch_.load(std::memory_order_relaxed));
  }
  [[nodiscard]] overflow policy() const noexcept {
    return overflow((watch_.load(std::memory_order_relaxed) >> 32) & 0xff);
  }
  /// Take a slot for an ordinary message (bounded mailboxes only).
  admit reserve() noexcept {
    const std::uint64_t w = watch_.load(std::memory_order_relaxed);
    const std::uint32_t cap = std::uint32_t(w);
    // ordering: relaxed; the count is one variable, its RMWs are exact.
    const std::uint32_t n = counted_.fetch_add(1, std::memory_order_relaxed);
    if (EMBER_LIKELY(n < cap)) return admit::ok;
    if (overflow((w >> 32) & 0xff) == overflow::drop_oldest && n < 2 * std::uint64_t(cap)) return admit::over;
    counted_.fetch_sub(1, std::memory_order_relaxed);
    return admit::full;
  }
  /// Give back a slot taken by reserve() for a message that was not pushed.
  void unreserve() noexcept { counted_.fetch_sub(1, std::memory_order_relaxed); }
  /// Ordinary messages held by a bounded mailbox (0 when unbounded).
  [[nodiscard]] std::size_t counted() const noexcept { return counted_.load(std::memory_order_relaxed); }
  /// The long-queue thresholds (0: not watched).
  [[nodiscard]] std::size_t long_enable() const noexcept { return std::uint16_t(watch_.load(std::memory_order_relaxed) >> 40); }
  /// Claim the report of a long queue: true for the one caller that set the flag.
  bool claim_long_report() noexcept {
    return !long_flag_.load(std::memory_order_relaxed) && !long_flag_.exchange(true, std::memory_order_relaxed);
  }
  /// Bytes of the messages the owner has drained and not yet removed.
  [[nodiscard]] std::size_t saved_bytes() const noexcept { return save_bytes_.load(std::memory_order_relaxed); }

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
    std::size_t bytes = 0;
    while (h) {
      envelope* nx = h->next;
      h->next = rev;
      rev = h;
      bytes += h->ops->bytes;
      h = nx;
      ++n;
    }
    if (!rev) return nullptr;
    if (save_last_) save_last_->next = rev; else save_first_ = rev;
    save_last_ = last;
    add_saved(std::ptrdiff_t(n), std::ptrdiff_t(bytes));
    return rev;
  }
  /// drain_inbox(), then, in a drop_oldest mailbox past its capacity, drop
  /// the oldest ordinary messages down to it.  `prev` is a scan position in
  /// the save queue (nullptr: before the first); if it is dropped, prev
  /// moves to the envelope before it, so `prev ? prev->next : first()` is
  /// still where the scan goes on.
  envelope* drain_inbox(envelope*& prev) noexcept {
    envelope* got = drain_inbox();
    if (EMBER_UNLIKELY(got && counted_.load(std::memory_order_relaxed) > capacity()) &&
        policy() == overflow::drop_oldest && capacity() != 0)
      trim_oldest(prev);
    return got;
  }
  /// Try to block: succeeds only if nothing was pushed since the last drain.
  bool block() noexcept {
    std::uintptr_t h = 0;
    return inbox_.compare_exchange_strong(h, blocked_word, std::memory_order_acq_rel);
  }
  /// Oldest saved envelope (after drain_inbox), or nullptr.
  [[nodiscard]] envelope* first() const noexcept { return save_first_; }
  /// Newest saved envelope, or nullptr: a mark after which a scan need
  /// only look for messages that arrive later (a call's reply).
  [[nodiscard]] envelope* last() const noexcept { return save_last_; }
  /// Unlink e, whose predecessor in the save queue is prev (nullptr: e is first).
  void unlink(envelope* prev, envelope* e) noexcept {
    envelope* nx = e->next;
    if (prev) prev->next = nx; else save_first_ = nx;
    if (save_last_ == e) save_last_ = prev;
    add_saved(-1, -std::ptrdiff_t(e->ops->bytes));
    if (EMBER_UNLIKELY(watched())) removed(e);
  }
  /// Take e (predecessor prev) out of the save queue but keep counting it
  /// in the mailbox's length, bytes and bound: the owner holds it aside
  /// (a supervisor sorts its messages into lanes).  Hand it back to the
  /// accounting with release_detached() when it is finally taken, or put
  /// the held ones back in front with restore_front().
  void detach(envelope* prev, envelope* e) noexcept {
    envelope* nx = e->next;
    if (prev) prev->next = nx; else save_first_ = nx;
    if (save_last_ == e) save_last_ = prev;
    e->next = nullptr;
  }
  /// A detached envelope leaves the mailbox for good (as unlink does).
  void release_detached(envelope* e) noexcept {
    add_saved(-1, -std::ptrdiff_t(e->ops->bytes));
    if (EMBER_UNLIKELY(watched())) removed(e);
  }
  /// Put detached envelopes first..last (linked through next) back at the
  /// front of the save queue, in that order.
  void restore_front(envelope* first, envelope* last) noexcept {
    if (!first) return;
    last->next = save_first_;
    save_first_ = first;
    if (!save_last_) save_last_ = last;
  }
  /// Messages in the save queue (not counting ones still in the inbox).
  [[nodiscard]] std::size_t saved() const noexcept { return save_len_.load(std::memory_order_relaxed); }
  [[nodiscard]] bool inbox_empty() const noexcept {
    std::uintptr_t h = inbox_.load(std::memory_order_acquire);
    return h == 0 || h == blocked_word || h == closed_word;
  }

  /// Reopen for a new incarnation (the mailbox must be closed), with its
  /// bound (capacity 0: none; checked by the caller) and long-queue
  /// thresholds (enable 0: not watched; enable <= 65,535).
  void open(const mailbox_bound& b = {}, const long_message_queue& lq = {}) noexcept {
    const std::uint64_t enable = lq.enable;
    const std::uint64_t disable = lq.enable == 0 ? 0 : lq.disable != 0 ? lq.disable : lq.enable / 2;
    watch_.store(std::uint64_t(b.capacity) | (std::uint64_t(b.capacity ? b.policy : overflow{}) << 32) |
                     (enable << 40),
                 std::memory_order_relaxed);
    long_disable_ = std::uint32_t(disable);
    counted_.store(0, std::memory_order_relaxed);
    long_flag_.store(false, std::memory_order_relaxed);
    inbox_.store(0, std::memory_order_release);
  }
  /// Refuse further pushes and destroy everything held, showing each
  /// envelope to `last_look` (noexcept) just before it is destroyed.
  template <class F>
  void close(F&& last_look) noexcept {
    std::uintptr_t h = inbox_.exchange(closed_word, std::memory_order_acq_rel);
    if (h != blocked_word && h != closed_word) destroy_list(pointer_of(h), last_look);
    destroy_list(save_first_, last_look);
    save_first_ = save_last_ = nullptr;
    save_len_.store(0, std::memory_order_relaxed);
    save_bytes_.store(0, std::memory_order_relaxed);
    counted_.store(0, std::memory_order_relaxed);
  }
  void close() noexcept {
    close([](envelope*) noexcept {});
  }
  /// Destroy what was pushed and not yet drained (any thread), leaving the
  /// mailbox open: for a process whose owner may still run but will never
  /// read it (runtime::stop gave up on it while a thread held it).  The
  /// inbox word keeps its pointer beside a count, where no leak checker
  /// sees it.  The owner takes its messages by exchange, so each envelope
  /// is taken by one side only.
  void discard_inbox() noexcept {
    std::uintptr_t h = inbox_.load(std::memory_order_acquire);
    while (h != 0 && h != blocked_word && h != closed_word) {
      if (inbox_.compare_exchange_weak(h, 0, std::memory_order_acq_rel)) {
        auto none = [](envelope*) noexcept {};
        destroy_list(pointer_of(h), none);
        return;
      }
    }
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
  void add_saved(std::ptrdiff_t d, std::ptrdiff_t bytes) noexcept {
    save_len_.store(std::size_t(std::ptrdiff_t(save_len_.load(std::memory_order_relaxed)) + d),
                    std::memory_order_relaxed);
    save_bytes_.store(std::size_t(std::ptrdiff_t(save_bytes_.load(std::memory_order_relaxed)) + bytes),
                      std::memory_order_relaxed);
  }
  // The owner removed e from a watched mailbox: give back its slot, and
  // re-arm the long-queue report once the queue is short again.
  void removed(const envelope* e) noexcept {
    if (e->ops->ordinary && capacity() != 0) counted_.fetch_sub(1, std::memory_order_relaxed);
    if (long_flag_.load(std::memory_order_relaxed) && length() <= long_disable_)
      long_flag_.store(false, std::memory_order_relaxed);
  }
  void trim_oldest(envelope*& scan) noexcept {
    envelope* prev = nullptr;
    envelope* e = save_first_;
    while (e && counted_.load(std::memory_order_relaxed) > capacity()) {
      envelope* nx = e->next;
      if (e->ops->ordinary) {
        if (scan == e) scan = prev;
        unlink(prev, e);
        dropped_by_bound(e);
        free_envelope(e);
      } else {
        prev = e;
      }
      e = nx;
    }
  }

  template <class F>
  static void destroy_list(envelope* h, F& last_look) noexcept {
    while (h) {
      envelope* nx = h->next;
      last_look(h);
      free_envelope(h);
      h = nx;
    }
  }

  std::atomic<std::uintptr_t> inbox_{closed_word};  // any thread
  // capacity (bits 0-31), policy (32-39), long-queue enable (40-55); 0:
  // neither.  Set by open() before the incarnation is published; atomic
  // because a sender holding a stale pid may read it while it is set.
  std::atomic<std::uint64_t> watch_{0};
  std::atomic<std::uint32_t> counted_{0};           // any thread (bounded)
  std::atomic<bool> long_flag_{false};              // any thread
  std::uint32_t long_disable_ = 0;                  // set with watch_
  envelope* save_first_ = nullptr;                  // owner only
  envelope* save_last_ = nullptr;                   // owner only
  std::atomic<std::size_t> save_len_{0};            // owner writes; any thread reads
  std::atomic<std::size_t> save_bytes_{0};          // owner writes; any thread reads
};

}  // namespace ember::detail
