// ember/detail/registry_table.hpp — the table a registry handle shares
// (registry.hpp): entries (key, pid, value) split into partitions by key
// hash, each partition with its own lock, and each process's keys listed in
// its exit hook, which removes them when it exits.
//
// Lock order: a partition, then a process's hooks_lock.  An exiting process
// takes its hooks out of its signal state first and then locks partitions
// (decision 0009).  Values are copied out under a partition's lock; a
// predicate or update function given by the user runs under it (it must not
// call the registry).  Listeners are told after the lock is released.
//
// Threads: any thread.  Ownership: the table owns its keys and values; a
// process's holder owns copies of that process's keys and a reference to
// the table.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/errors.hpp"
#include "ember/pid.hpp"
#include "ember/send.hpp"

namespace ember {

/// Whether a key names one process or many.
enum class registry_keys { unique, duplicate };

/// The value of a registry that keeps none (registry<K>).
struct no_value {
  friend constexpr bool operator==(no_value, no_value) noexcept { return true; }
};

/// One registration: the process and the value it registered with.
template <class V>
struct registry_entry {
  ember::pid pid;
  [[no_unique_address]] V value;
  friend bool operator==(const registry_entry&, const registry_entry&) = default;
};

/// One registration with its key (what select and for_each see).
template <class K, class V>
struct registry_match {
  K key;
  ember::pid pid;
  [[no_unique_address]] V value;
  friend bool operator==(const registry_match&, const registry_match&) = default;
};

/// What a registry's listeners receive (Elixir's {:register, ...} and
/// {:unregister, ...}): a registration (with its value), or an explicit
/// unregistration of `pid` from `key` (one event per unregister call that
/// removed something; exits send none — a listener that cares monitors).
template <class K, class V>
struct registry_event {
  enum class kind : unsigned char { registered, unregistered };
  kind what;
  K key;
  ember::pid pid;
  V value;  // registered: the value; unregistered: V{}
};

namespace detail {

inline constexpr std::size_t max_registry_partitions = 4096;
inline constexpr std::size_t default_registry_partitions_cap = 256;
/// requested (0: one per hardware thread, at most 256), rounded up to a
/// power of two; bad_argument above max_registry_partitions.
std::size_t registry_partitions(std::size_t requested);
/// p's process is alive (takes its hook lock).
bool registry_holder_alive(const ember::pid& p) noexcept;
registration_error registry_null_pid(const char* op, const std::string& key);
registration_error registry_not_alive(const char* op, const std::string& key, const ember::pid& p);
registration_error registry_taken(const char* op, const std::string& key, const ember::pid& holder);

/// How a registry hashes, compares and takes keys: std::string keys (with
/// the standard hash and equality) are looked up by string_view, without
/// allocating; other keys by const K&.
template <class K, class Hash, class Eq>
struct registry_key_ops {
  using arg = const K&;
  static std::size_t hash(const K& k) { return Hash{}(k); }
  static bool equal(const K& a, const K& b) { return Eq{}(a, b); }
  static K make(const K& k) { return k; }
};
template <>
struct registry_key_ops<std::string, std::hash<std::string>, std::equal_to<std::string>> {
  using arg = std::string_view;
  static std::size_t hash(std::string_view k) noexcept { return std::hash<std::string_view>{}(k); }
  static bool equal(std::string_view a, std::string_view b) noexcept { return a == b; }
  static std::string make(std::string_view k) { return std::string(k); }
};

/// A key as error messages show it.
template <class A>
std::string registry_key_text(const A& k) {
  if constexpr (std::is_convertible_v<const A&, std::string_view>) return "\"" + std::string(std::string_view(k)) + "\"";
  else if constexpr (fmt::is_formattable<A>::value) return fmt::format("{}", k);
  else return "(a key that fmt cannot print)";
}

/// A few items, inline up to 16 (what a lookup copies out of the lock).
template <class T>
class small_buffer {
public:
  void push(T v) {
    if (n_ < inline_.size()) inline_[n_] = std::move(v);
    else heap_.push_back(std::move(v));
    ++n_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  template <class F>
  void each(F&& f) {
    for (std::size_t i = 0; i < n_ && i < inline_.size(); ++i) f(inline_[i]);
    for (T& v : heap_) f(v);
  }

private:
  std::array<T, 16> inline_{};
  std::vector<T> heap_;
  std::size_t n_ = 0;
};

template <class K, class V, class Hash, class Eq>
class registry_table final : public std::enable_shared_from_this<registry_table<K, V, Hash, Eq>> {
  using ops = registry_key_ops<K, Hash, Eq>;

public:
  using arg = typename ops::arg;
  using entry = registry_entry<V>;
  using event = registry_event<K, V>;

  registry_table(registry_keys mode, std::size_t partitions, std::vector<ember::pid> listeners)
      : mode_(mode), mask_(partitions - 1), parts_(std::make_unique<part[]>(partitions)),
        listeners_(std::move(listeners)) {}

  [[nodiscard]] registry_keys mode() const noexcept { return mode_; }
  [[nodiscard]] std::size_t partitions() const noexcept { return mask_ + 1; }

  /// Put (p, value) under key.  nullopt: done (listeners are told).
  /// Otherwise the unique key was taken by a live process: nothing changed
  /// and this is the holder.  Throws registration_error for the null pid or
  /// a process not alive.
  std::optional<ember::pid> claim(arg key, ember::pid p, V value, const char* op) {
    if (p.is_null() || !p.block()) throw registry_null_pid(op, registry_key_text(key));
    const std::size_t h = ops::hash(key);
    part& s = part_of(h);
    {
      std::unique_lock lk(s.mu);
      auto it = s.map.find(probe{key, h});
      if (it != s.map.end() && mode_ == registry_keys::unique) {
        if (registry_holder_alive(it->second.first.pid)) return it->second.first.pid;
        // Its holder is exiting and has not dropped it yet: its hook will
        // find the key no longer its own.
        s.entries -= it->second.size();
        s.map.erase(it);
        it = s.map.end();
      }
      const bool fresh = it == s.map.end();
      if (fresh) it = s.map.emplace(ops::make(key), slot{entry{p, listeners_.empty() ? std::move(value) : value}, {}}).first;
      else it->second.more.push_back(entry{p, listeners_.empty() ? std::move(value) : value});
      ++s.entries;
      try {
        attach(key, p, op);
      } catch (...) {
        remove_last_locked(s, it, fresh);
        throw;
      }
    }
    if (!listeners_.empty()) tell(event{event::kind::registered, ops::make(key), p, std::move(value)});
    return std::nullopt;
  }

  /// Take every entry of p from under key (those whose value satisfies
  /// `which`); how many went.  Listeners hear of it when some did.
  template <class Pred>
  std::size_t release(arg key, ember::pid p, Pred&& which) {
    const std::size_t h = ops::hash(key);
    part& s = part_of(h);
    std::size_t n = 0;
    {
      std::unique_lock lk(s.mu);
      auto it = s.map.find(probe{key, h});
      if (it == s.map.end()) return 0;
      n = remove_locked(s, it, [&](const entry& e) { return e.pid == p && which(std::as_const(e.value)); });
      if (n == 0) return 0;
      if (detail::process* b = p.block()) {
        std::lock_guard<spin_lock> hk(b->hooks_lock);
        // ordering: acquire pairs with the serial's publication.
        if (b->serial.load(std::memory_order_acquire) == p.serial() && b->sig)
          if (auto* mine = static_cast<holder*>(b->sig->hook_of(this))) mine->forget(key, n);
      }
    }
    if (!listeners_.empty()) tell(event{event::kind::unregistered, ops::make(key), p, V{}});
    return n;
  }
  std::size_t release(arg key, ember::pid p) {
    return release(key, p, [](const V&) { return true; });
  }

  /// The live holder of key (unique), or the null pid.
  [[nodiscard]] ember::pid whereis(arg key) const {
    const std::size_t h = ops::hash(key);
    const part& s = part_of(h);
    std::shared_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end() || !serial_matches(it->second.first.pid)) return {};
    return it->second.first.pid;
  }

  /// Visit every live entry under key (lock held shared: f must only copy).
  /// size(n) is told first how many entries the key has, live or not.
  template <class Size, class F>
  void visit(arg key, Size&& size, F&& f) const {
    const std::size_t h = ops::hash(key);
    const part& s = part_of(h);
    std::shared_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end()) return;
    const slot& sl = it->second;
    size(sl.size());
    if (serial_matches(sl.first.pid)) f(sl.first);
    for (const entry& e : sl.more)
      if (serial_matches(e.pid)) f(e);
  }
  template <class F>
  void visit(arg key, F&& f) const {
    visit(key, [](std::size_t) {}, std::forward<F>(f));
  }

  /// Every live entry under key, copied out (for small, trivial values into
  /// a buffer on the stack under the lock, and allocated outside it).
  [[nodiscard]] std::vector<entry> entries(arg key) const {
    std::vector<entry> out;
    if constexpr (std::is_trivially_copyable_v<entry> && std::is_trivially_default_constructible_v<V> &&
                  sizeof(entry) <= 32) {
      small_buffer<entry> b;
      visit(key, [&](const entry& e) { b.push(e); });
      out.reserve(b.size());
      b.each([&](entry& e) { out.push_back(e); });
    } else {
      visit(key, [&](std::size_t n) { out.reserve(n); }, [&](const entry& e) { out.push_back(e); });
    }
    return out;
  }

  /// Replace the value p holds under key with fn(old value); the new and
  /// the old value, or nullopt when p holds no such key.  Unique keys.
  template <class F>
  std::optional<std::pair<V, V>> update(arg key, ember::pid p, F&& fn) {
    const std::size_t h = ops::hash(key);
    part& s = part_of(h);
    std::unique_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end() || it->second.first.pid != p) return std::nullopt;
    V& v = it->second.first.value;
    V next = fn(std::as_const(v));
    std::pair<V, V> out{next, std::move(v)};
    v = std::move(next);
    return out;
  }

  /// Visit every live entry in the table, partition by partition (each
  /// under its lock, shared): f(key, entry).
  template <class F>
  void visit_all(F&& f) const {
    for (std::size_t i = 0; i <= mask_; ++i) {
      const part& s = parts_[i];
      std::shared_lock lk(s.mu);
      for (const auto& [k, sl] : s.map) {
        if (serial_matches(sl.first.pid)) f(k, sl.first);
        for (const entry& e : sl.more)
          if (serial_matches(e.pid)) f(k, e);
      }
    }
  }

  /// The keys p holds here, once per registration (none when not alive).
  [[nodiscard]] std::vector<K> keys(ember::pid p) const {
    std::vector<K> out;
    detail::process* b = p.block();
    if (!b || p.is_null()) return out;
    std::lock_guard<spin_lock> hk(b->hooks_lock);
    if (!alive_locked(b, p.serial()) || !b->sig) return out;
    if (auto* mine = static_cast<const holder*>(b->sig->hook_of(this))) out = mine->keys;
    return out;
  }

  /// Entries registered now.
  [[nodiscard]] std::size_t count() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i <= mask_; ++i) {
      std::shared_lock lk(parts_[i].mu);
      n += parts_[i].entries;
    }
    return n;
  }

private:
  /// A lookup key with its hash, so a lookup hashes the key once (to pick
  /// the partition) and never builds a K.
  struct probe {
    arg key;
    std::size_t hash;
  };
  struct map_hash {
    using is_transparent = void;
    // Not noexcept on purpose: libstdc++ then stores each node's hash, so
    // lookups and rehashing never hash a stored key again.
    std::size_t operator()(const K& k) const { return ops::hash(k); }
    std::size_t operator()(const probe& p) const noexcept { return p.hash; }
  };
  struct map_eq {
    using is_transparent = void;
    bool operator()(const K& a, const K& b) const { return ops::equal(a, b); }
    bool operator()(const probe& a, const K& b) const { return ops::equal(a.key, b); }
    bool operator()(const K& a, const probe& b) const { return ops::equal(a, b.key); }
  };
  struct slot {
    entry first;              // unique: the holder
    std::vector<entry> more;  // duplicate: the others (a process may appear more than once)
    [[nodiscard]] std::size_t size() const noexcept { return 1 + more.size(); }
  };
  using map_type = std::unordered_map<K, slot, map_hash, map_eq>;
  struct alignas(64) part {
    mutable std::shared_mutex mu;
    map_type map;             // guarded by mu
    std::size_t entries = 0;  // guarded by mu: registrations
  };

  /// One process's keys in this table (once per registration): its exit
  /// hook.  Guarded by that process's hooks_lock until the process exits;
  /// then owned by the exit.
  struct holder final : exit_hook {
    explicit holder(std::shared_ptr<registry_table> t) : exit_hook(t.get()), table(std::move(t)) {}
    void process_exited(ember::pid me) noexcept override { table->drop(keys, me); }
    [[nodiscard]] std::size_t bytes() const noexcept override { return sizeof(*this) + keys.capacity() * sizeof(K); }
    /// Forget n registrations under key.
    void forget(arg key, std::size_t n) {
      for (std::size_t i = keys.size(); i-- > 0 && n > 0;)
        if (ops::equal(keys[i], key)) {
          if (i + 1 != keys.size()) keys[i] = std::move(keys.back());
          keys.pop_back();
          --n;
        }
    }
    std::shared_ptr<registry_table> table;  // ownership: keeps the table while p holds keys
    std::vector<K> keys;
  };

  part& part_of(std::size_t h) const noexcept {
    // Fibonacci hashing: the partition comes from other bits than the
    // map's bucket, and a weak hash (identity for integers) still spreads.
    return parts_[std::size_t((std::uint64_t(h) * 0x9E3779B97F4A7C15ull) >> 32) & mask_];
  }

  static bool serial_matches(const ember::pid& q) noexcept {
    // ordering: acquire pairs with the serial's publication; a cleared or
    // reused block fails the comparison.
    return q.block() && q.block()->serial.load(std::memory_order_acquire) == q.serial();
  }

  /// List key in p's exit hook, if p is alive (partition lock held).
  void attach(arg key, ember::pid p, const char* op) {
    detail::process* b = p.block();
    std::lock_guard<spin_lock> hk(b->hooks_lock);
    if (!alive_locked(b, p.serial())) throw registry_not_alive(op, registry_key_text(key), p);
    signal_state& st = b->signals();
    auto* mine = static_cast<holder*>(st.hook_of(this));
    if (!mine) {
      st.exit_hooks.push_back(std::make_unique<holder>(this->shared_from_this()));
      mine = static_cast<holder*>(st.exit_hooks.back().get());
    }
    mine->keys.push_back(ops::make(key));
  }

  /// Undo the entry claim just added at it (partition lock held).
  void remove_last_locked(part& s, typename map_type::iterator it, bool fresh) {
    if (fresh) s.map.erase(it);
    else it->second.more.pop_back();
    --s.entries;
  }

  /// Remove the entries at it that `gone` picks (partition lock held); how
  /// many.
  template <class Gone>
  std::size_t remove_locked(part& s, typename map_type::iterator it, Gone&& gone) {
    slot& sl = it->second;
    std::size_t n = std::size_t(std::erase_if(sl.more, [&](const entry& e) { return gone(e); }));
    if (gone(std::as_const(sl.first))) {
      ++n;
      if (sl.more.empty()) {
        s.map.erase(it);
      } else {
        sl.first = std::move(sl.more.back());
        sl.more.pop_back();
      }
    }
    s.entries -= n;
    return n;
  }

  /// me has exited: take it from under each of its keys.
  void drop(const std::vector<K>& keys, ember::pid me) noexcept {
    for (const K& k : keys) {
      const std::size_t h = ops::hash(k);
      part& s = part_of(h);
      std::unique_lock lk(s.mu);
      auto it = s.map.find(probe{k, h});
      if (it != s.map.end()) remove_locked(s, it, [&](const entry& e) { return e.pid == me; });
    }
  }

  /// Tell every listener (no lock held).
  void tell(const event& e) const {
    for (const ember::pid& l : listeners_) ember::send(l, e);
  }

  const registry_keys mode_;
  const std::size_t mask_;
  std::unique_ptr<part[]> parts_;
  const std::vector<ember::pid> listeners_;
};

}  // namespace detail
}  // namespace ember
