// ember/detail/message_lanes.hpp — a supervisor's mailbox, sorted into two
// lanes as it is read: trapped exit signals (exit_message) in one, every
// other message in the other, each in arrival order.
//
// Why: a supervisor must see a child's exit before it answers a call that
// was queued earlier (which_children must not report a dead child as
// running for longer than the restart takes), and its own waits during a
// shutdown (for each child's `down`) must not rescan calls queued behind
// them — with n children and m queued calls that was O(n·m).  Every
// message is looked at once, when the lanes sweep it out of the mailbox;
// the supervisor's own selective receives then only see what arrived since.
//
// The messages stay counted in the mailbox's length, bytes and bound while
// they are in the lanes (mailbox::detach); a message taken from the lanes
// leaves the count then.  Whatever is still in the lanes when the
// supervisor ends goes back to the mailbox, so the runtime answers the
// calls among them with the supervisor's exit reason, as for any server.
//
// Threads: owner only (the supervisor's process).
// Ownership: the lanes own the envelopes they hold.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "ember/detail/runtime_core.hpp"
#include "ember/mailbox/envelope.hpp"
#include "ember/receive.hpp"
#include "ember/signal/link.hpp"

namespace ember::detail {

class message_lanes {
public:
  message_lanes() = default;
  message_lanes(const message_lanes&) = delete;
  message_lanes& operator=(const message_lanes&) = delete;
  ~message_lanes() { give_back(); }

  /// Move every message now in `self`'s mailbox into the lanes, in order;
  /// internal envelopes (wake signals, stale replies) are dropped as a
  /// receive drops them.  `keep(e)` sees each message first; when it
  /// returns true it has taken what it wants from e, which goes in no lane
  /// and is freed.
  template <class Keep>
  void sweep(process* self, Keep&& keep) {
    mailbox& mb = self->mbox;
    const std::uint64_t serial = self->serial.load(std::memory_order_relaxed);
    for (;;) {
      envelope* none = nullptr;
      mb.drain_inbox(none);
      envelope* e = mb.first();
      if (!e) return;
      for (; e; e = mb.first()) {
        if (discard_if_internal(self, serial, nullptr, e)) continue;
        mb.detach(nullptr, e);
        if (keep(e)) {
          mb.release_detached(e);
          free_envelope(e);
          continue;
        }
        if (e->tag == type_tag<exit_message>()) {
          push(exits_, e);
          first_exit_.try_emplace(payload<exit_message>(e).from.serial(), e);
        } else {
          push(others_, e);
        }
      }
    }
  }
  void sweep(process* self) {
    sweep(self, [](envelope*) { return false; });
  }

  /// The next message to handle: the oldest exit signal, else the oldest
  /// other message; nullptr when both lanes are empty.  The caller owns it.
  envelope* take(process* self) noexcept {
    envelope* e = pop(exits_);
    if (e) {
      auto it = first_exit_.find(payload<exit_message>(e).from.serial());
      if (it != first_exit_.end() && it->second == e) first_exit_.erase(it);
    } else {
      e = pop(others_);
    }
    if (e) self->mbox.release_detached(e);
    return e;
  }

  /// The first exit_message from the process with this serial still held
  /// in the lanes, or nullptr.
  [[nodiscard]] const exit_message* exit_from(std::uint64_t serial) const noexcept {
    auto it = first_exit_.find(serial);
    return it == first_exit_.end() ? nullptr : &payload<exit_message>(it->second);
  }

  [[nodiscard]] bool empty() const noexcept { return !exits_.first && !others_.first; }

  /// Put every held message back at the front of the calling process's
  /// mailbox (exit signals first, then the others); with no process to
  /// give them to, free them.
  void give_back() noexcept {
    if (empty()) return;
    process* self = this_process();
    if (exits_.last) exits_.last->next = others_.first;
    envelope* first = exits_.first ? exits_.first : others_.first;
    envelope* last = others_.last ? others_.last : exits_.last;
    exits_ = {};
    others_ = {};
    first_exit_.clear();
    if (self) {
      self->mbox.restore_front(first, last);
      return;
    }
    while (first) {
      envelope* nx = first->next;
      free_envelope(first);
      first = nx;
    }
  }

private:
  struct fifo {
    envelope* first = nullptr;
    envelope* last = nullptr;
  };
  static void push(fifo& q, envelope* e) noexcept {
    e->next = nullptr;
    if (q.last) q.last->next = e;
    else q.first = e;
    q.last = e;
  }
  static envelope* pop(fifo& q) noexcept {
    envelope* e = q.first;
    if (!e) return nullptr;
    q.first = e->next;
    if (!q.first) q.last = nullptr;
    e->next = nullptr;
    return e;
  }

  fifo exits_;
  fifo others_;
  // from-serial -> the first exit_message from it still in exits_
  std::unordered_map<std::uint64_t, envelope*> first_exit_;
};

}  // namespace ember::detail
