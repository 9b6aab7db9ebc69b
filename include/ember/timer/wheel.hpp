// ember/timer/wheel.hpp — a worker's timers: a hierarchical timing wheel
// of intrusive timer nodes, and the node pool.
//
// The wheel has 6 levels of 64 slots at 1 ms resolution (level l slot width
// 64^l ms), reaching 64^6 ms (~2.2 years); a node due later waits in the
// top level's farthest slot and is placed again when the wheel gets there.
// A node sits in the slot of the highest level at which its due tick and
// the wheel's position differ, so start and cancel are O(1): find the slot,
// link or unlink.  Advancing visits only occupied slots (one 64-bit
// occupancy mask per level); a slot of a higher level is re-spread over the
// lower levels when the wheel reaches it.  Nodes due in one tick fire in
// the order they were started.
//
// Cancellation races with expiry through one atomic word per timer, in its
// timer_head, `id << 2 | state`: a canceller wins with CAS
// pending→cancelled, the wheel with CAS pending→fired, so exactly one of
// them decides the timer's fate and a stale reference (older id) can never
// touch a reused node.  The winning canceller hands the node back to its
// owner, which unlinks and recycles it later, in a batch (a wheel that meets
// a cancelled node first only unlinks it).
//
// Threads: the wheel and the pool are owner-only (the worker).  A timer's
// head (`word`, `deadline`) is read and CASed from any thread; a canceller on
// another thread hands the node back through the owner's remote-cancel stack.
// Ownership: the pool owns every node (type-stable: nodes are never
// returned to the system while the runtime lives); a pending message timer
// owns its envelope.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "ember/mailbox/envelope.hpp"

namespace ember::detail {

struct process;
class worker;

enum timer_state : std::uint64_t { timer_free = 0, timer_pending = 1, timer_fired = 2, timer_cancelled = 3 };
enum class timer_kind : std::uint8_t { message, named, receive };

/// How a message kept inside the node is delivered or dropped.
struct timer_ops {
  /// Move the value into a new envelope addressed to `serial` (destroys it here).
  envelope* (*deliver)(void* storage, std::uint64_t serial);
  void (*discard)(void* storage) noexcept;  // null: nothing to destroy
};

/// What any thread reads of a timer: its state word and deadline, 16
/// bytes, kept apart from the node in a dense array at the head of the
/// node's slab.  Cancelling touches this and nothing else of the timer, so
/// a million timers cancelled in a row stream through 16 MB instead of
/// waiting for 128 MB of nodes.
struct timer_head {
  std::atomic<std::uint64_t> word{0};     // id << 2 | timer_state
  std::atomic<std::int64_t> deadline{0};  // ns since the runtime's epoch
};
static_assert(sizeof(timer_head) == 16);

/// One timer's node: 128 bytes, the message inline when it fits (most do),
/// so starting a timer allocates nothing but a pooled node.  Owner only,
/// except `remote_next` (written by a canceller that won the timer).
struct alignas(64) timer_node {
  static constexpr std::size_t inline_size = 64;

  timer_node* next = nullptr;  // slot list
  timer_node* prev = nullptr;
  union {
    envelope* msg;           // message/named: a message too big to keep inline
    std::uint64_t wait_seq;  // receive: the wait that armed it
  };
  const timer_ops* ops = nullptr;  // message/named: the message is in `storage`
  union {
    process* dest;             // message/receive
    timer_node* remote_next;   // once cancelled from another thread: the owner's remote stack
  };
  union {
    std::uint64_t dest_serial;  // message/receive
    std::string* dest_name;     // named: looked up when due
  };
  timer_kind kind = timer_kind::message;
  std::uint8_t level = 0;
  std::uint8_t slot = 0;
  bool linked = false;  // in a wheel slot
  alignas(64) unsigned char storage[inline_size];

  timer_node() : msg(nullptr), dest(nullptr), dest_serial(0) {}

  [[nodiscard]] static std::uint64_t make_word(std::uint64_t id, timer_state s) noexcept { return id << 2 | s; }
  /// Its state word and deadline (any thread).
  [[nodiscard]] timer_head& head() const noexcept;
  /// The worker whose wheel and pool it belongs to (any thread).
  [[nodiscard]] worker* owner() const noexcept;
  [[nodiscard]] std::uint64_t tick() const noexcept {
    const std::int64_t d = head().deadline.load(std::memory_order_relaxed);
    return d <= 0 ? 0 : std::uint64_t((d + 999999) / 1000000);  // rounded up: never early
  }
  /// Destroy the message it holds, if any (owner, or a thread that owns it).
  void drop_message() noexcept {
    if (kind == timer_kind::receive) return;
    if (ops) {
      if (ops->discard) ops->discard(storage);
      ops = nullptr;
    } else if (msg) {
      free_envelope(msg);
      msg = nullptr;
    }
    if (kind == timer_kind::named) {
      delete dest_name;
      dest_name = nullptr;
    }
  }
};
static_assert(sizeof(timer_node) == 128);

/// A 2 MiB slab, aligned to its size: the owner, then every node's head,
/// then the nodes.  A node finds its slab by masking its own address.
struct timer_slab {
  static constexpr std::size_t bytes = std::size_t{2} << 20;
  static constexpr std::size_t heads_at = 64;
  static constexpr std::size_t per_slab = (bytes - heads_at - alignof(timer_node)) / (sizeof(timer_head) + sizeof(timer_node));
  static constexpr std::size_t nodes_at =
      (heads_at + per_slab * sizeof(timer_head) + alignof(timer_node) - 1) / alignof(timer_node) * alignof(timer_node);
  static_assert(nodes_at + per_slab * sizeof(timer_node) <= bytes);

  static char* base(const void* node) noexcept {
    return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(node) & ~(std::uintptr_t(bytes) - 1));
  }
  static std::size_t index(const timer_node* n) noexcept {
    return std::size_t(reinterpret_cast<const char*>(n) - base(n) - nodes_at) / sizeof(timer_node);
  }
  static worker*& owner_slot(char* slab) noexcept { return *reinterpret_cast<worker**>(slab); }
  static timer_head* heads(char* slab) noexcept { return std::launder(reinterpret_cast<timer_head*>(slab + heads_at)); }
  static timer_node* nodes(char* slab) noexcept { return std::launder(reinterpret_cast<timer_node*>(slab + nodes_at)); }
};

inline timer_head& timer_node::head() const noexcept { return timer_slab::heads(timer_slab::base(this))[timer_slab::index(this)]; }
inline worker* timer_node::owner() const noexcept { return timer_slab::owner_slot(timer_slab::base(this)); }

/// Timer nodes in 2 MiB slabs (transparent huge pages where the kernel
/// offers them: a million timers fault in 70 pages, not 35,000), recycled
/// through a free list.  Owner only.
class timer_pool {
public:
  explicit timer_pool(worker* owner) : owner_(owner) {}
  timer_pool(const timer_pool&) = delete;
  timer_pool& operator=(const timer_pool&) = delete;
  ~timer_pool() {
    for (char* s : slabs_) std::free(s);
  }
  timer_node* get() {
    if (free_.empty()) grow();
    timer_node* n = free_.back();
    free_.pop_back();
    return n;
  }
  void put(timer_node* n) { free_.push_back(n); }
  /// Calls f(node) for every node (runtime teardown).
  template <class F>
  void for_each(F&& f) {
    for (char* s : slabs_)
      for (std::size_t i = 0; i < timer_slab::per_slab; ++i) f(timer_slab::nodes(s) + i);
  }

private:
  void grow() {
    auto* mem = static_cast<char*>(std::aligned_alloc(timer_slab::bytes, timer_slab::bytes));
    if (!mem) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    ::madvise(mem, timer_slab::bytes, MADV_HUGEPAGE);
#endif
    slabs_.push_back(mem);
    ::new (static_cast<void*>(mem)) worker*(owner_);
    for (std::size_t i = 0; i < timer_slab::per_slab; ++i) ::new (static_cast<void*>(mem + timer_slab::heads_at + i * sizeof(timer_head))) timer_head();
    free_.reserve(free_.size() + timer_slab::per_slab);
    for (std::size_t i = timer_slab::per_slab; i-- > 0;)
      free_.push_back(::new (static_cast<void*>(mem + timer_slab::nodes_at + i * sizeof(timer_node))) timer_node());
  }
  worker* owner_;
  std::vector<char*> slabs_;
  std::vector<timer_node*> free_;
};

class timer_wheel {
public:
  static constexpr unsigned bits = 6;
  static constexpr unsigned slots = 1u << bits;
  static constexpr unsigned levels = 6;
  static constexpr std::uint64_t horizon = std::uint64_t{1} << (bits * levels);
  static constexpr unsigned top_shift = bits * (levels - 1);

  /// The tick up to which everything due has been handed out.
  [[nodiscard]] std::uint64_t elapsed() const noexcept { return elapsed_; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  /// With the wheel empty, move it to tick `now` (nothing can be missed), so
  /// that new nodes are placed relative to the present.
  void catch_up(std::uint64_t now) noexcept {
    if (count_ == 0 && now > elapsed_) elapsed_ = now;
  }

  /// Link n (its deadline set; a tick already passed becomes "due now").
  void insert(timer_node* n) noexcept {
    std::uint64_t tick = n->tick();
    if (tick < elapsed_) tick = elapsed_;
    unsigned lv = level_for(tick);
    unsigned sl = unsigned(tick >> (lv * bits)) & (slots - 1);
    if (lv == levels - 1 && (tick >> top_shift) - (elapsed_ >> top_shift) >= slots) {
      // Beyond the top level's turn: park it in the farthest slot; when the
      // wheel gets there, the node is placed again from there.
      sl = (unsigned(elapsed_ >> top_shift) - 1) & (slots - 1);
    }
    n->level = std::uint8_t(lv);
    n->slot = std::uint8_t(sl);
    level& L = levels_[lv];
    n->next = nullptr;
    n->prev = L.tail[sl];
    if (L.tail[sl]) L.tail[sl]->next = n;
    else L.head[sl] = n;
    L.tail[sl] = n;
    L.occupied |= std::uint64_t{1} << sl;
    n->linked = true;
    ++count_;
  }

  void remove(timer_node* n) noexcept {
    level& L = levels_[n->level];
    unsigned sl = n->slot;
    if (n->prev) n->prev->next = n->next;
    else L.head[sl] = n->next;
    if (n->next) n->next->prev = n->prev;
    else L.tail[sl] = n->prev;
    if (!L.head[sl]) L.occupied &= ~(std::uint64_t{1} << sl);
    n->next = n->prev = nullptr;
    n->linked = false;
    --count_;
  }

  /// The earliest tick at which some slot is due, or false when empty.
  /// (A slot of a higher level is "due" when the wheel reaches its start;
  /// its nodes may then move down rather than fire.)
  bool next_tick(std::uint64_t& out) const noexcept {
    for (unsigned lv = 0; lv < levels; ++lv) {
      const level& L = levels_[lv];
      if (!L.occupied) continue;
      const unsigned shift = lv * bits;
      const unsigned pos = unsigned(elapsed_ >> shift) & (slots - 1);
      const std::uint64_t rotated = std::rotr(L.occupied, int(pos));
      const unsigned sl = (pos + unsigned(std::countr_zero(rotated))) & (slots - 1);
      const std::uint64_t level_range = std::uint64_t{1} << (shift + bits);
      const std::uint64_t slot_range = std::uint64_t{1} << shift;
      std::uint64_t start = (elapsed_ & ~(level_range - 1)) + sl * slot_range;
      if (sl < pos) start += level_range;  // wrapped into the next turn
      // The current slot of a higher level started in the past: due now.
      out = start < elapsed_ ? elapsed_ : start;
      return true;
    }
    return false;
  }

  /// Move the wheel to tick `now`, calling fire(node) for each node due, in
  /// due order (nodes are unlinked before fire sees them).
  template <class Fire>
  void advance(std::uint64_t now, Fire&& fire) {
    std::uint64_t t;
    while (next_tick(t) && t <= now) {
      elapsed_ = t;
      // Take every slot that starts at t, highest level first, so nodes
      // moving down land before the level-0 slot is fired.
      for (unsigned lv = levels; lv-- > 1;) {
        const unsigned shift = lv * bits;
        if ((t & ((std::uint64_t{1} << shift) - 1)) != 0) continue;
        cascade(lv, unsigned(t >> shift) & (slots - 1));
      }
      level& L = levels_[0];
      const unsigned sl = unsigned(t) & (slots - 1);
      timer_node* n = L.head[sl];
      if (!n) continue;
      L.head[sl] = L.tail[sl] = nullptr;
      L.occupied &= ~(std::uint64_t{1} << sl);
      while (n) {
        timer_node* nx = n->next;
        n->next = n->prev = nullptr;
        n->linked = false;
        --count_;
        fire(n);
        n = nx;
      }
    }
    if (now > elapsed_) elapsed_ = now;
  }

private:
  struct level {
    std::uint64_t occupied = 0;
    timer_node* head[slots] = {};
    timer_node* tail[slots] = {};
  };

  [[nodiscard]] unsigned level_for(std::uint64_t tick) const noexcept {
    std::uint64_t masked = (elapsed_ ^ tick) | (slots - 1);
    if (masked >= horizon) masked = horizon - 1;
    return unsigned(63 - std::countl_zero(masked)) / bits;
  }

  void cascade(unsigned lv, unsigned sl) noexcept {
    level& L = levels_[lv];
    timer_node* n = L.head[sl];
    if (!n) return;
    L.head[sl] = L.tail[sl] = nullptr;
    L.occupied &= ~(std::uint64_t{1} << sl);
    while (n) {
      timer_node* nx = n->next;
      --count_;
      insert(n);
      n = nx;
    }
  }

  level levels_[levels];
  std::uint64_t elapsed_ = 0;
  std::size_t count_ = 0;
};

}  // namespace ember::detail
