// ember/registry.hpp — a local key→process registry (Elixir's Registry),
// split into partitions by key hash, whose keys also serve as gen_server
// names (OTP's via-names).
//
//   ember::registry<std::string> limiters(ember::registry_keys::unique);
//   // One server per API key, however many first requests race to start it:
//   auto s = ember::gen_server::start<limiter>(ember::via(limiters, key));
//   ember::pid srv = s.pid();                 // ours, or (already_started()) the holder's
//   ember::gen_server::call<limiter>(ember::via(limiters, key), check{});
//
//   ember::registry<std::string> topics(ember::registry_keys::duplicate);
//   topics.register_name("prices");                  // in each subscriber
//   std::size_t n = topics.dispatch("prices", tick{});  // a copy to each
//
// Rules (contract table in docs/behaviours.md; tests in
// tests/behaviour/registry_test.cpp):
//  - unique keys: a key names at most one live process (a process may hold
//    many keys).  duplicate keys: a key names any number of processes, each
//    at most once.
//  - a process's keys vanish when it exits, before its links and monitors
//    hear of the exit (as its registered name does).  A pid is returned only
//    while its process is alive: never a dead process's, nor a newer
//    process's that reuses its control block.
//  - refusals throw registration_error (a taken key, naming its holder; the
//    null pid; a pid that is not alive); whereis and via() on a
//    duplicate-key registry, or too many partitions, throw bad_argument.
//  - ember::via(registry, key) is a via_name (names.hpp) for a unique-key
//    registry: gen_server::start/start_link register the new server under
//    it (already_started with the holder's pid when taken), call/cast/stop
//    and ember::send look it up at each use.
//
// Threads: any thread, except register_name(key) and unregister_name(key)
// (the calling process), which are process context.  A lookup takes one
// partition's lock shared (readers of different keys touch different
// locks); a change takes it exclusive and then the process's hook lock.
// Ownership: a registry is a cheap handle; copies share one table, which
// lives while a handle, a via_name or a process holding a key refers to it.
// Keys are copied into the table; Hash and Eq are default-constructed.
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
#include "ember/names.hpp"
#include "ember/pid.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"

namespace ember {

/// Whether a key names one process or many.
enum class registry_keys { unique, duplicate };

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

/// A few pids, inline up to 16 (what dispatch sends to, outside the lock).
class pid_buffer {
public:
  void push(ember::pid p) {
    if (n_ < inline_.size()) inline_[n_] = p;
    else heap_.push_back(p);
    ++n_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  template <class F>
  void each(F&& f) const {
    for (std::size_t i = 0; i < n_ && i < inline_.size(); ++i) f(inline_[i]);
    for (const ember::pid& p : heap_) f(p);
  }

private:
  std::array<ember::pid, 16> inline_{};
  std::vector<ember::pid> heap_;
  std::size_t n_ = 0;
};

/// The table a registry handle shares.  Partition i guards its part of the
/// map with its own lock; the keys each process holds are also listed in
/// that process's exit hook (a `holder`), which removes them at its exit.
/// Lock order: a partition, then a process's hooks_lock; an exiting process
/// takes its hooks out of its signal state first and then locks partitions.
template <class K, class Hash, class Eq>
class registry_table final : public std::enable_shared_from_this<registry_table<K, Hash, Eq>> {
  using ops = registry_key_ops<K, Hash, Eq>;

public:
  using arg = typename ops::arg;

  registry_table(registry_keys mode, std::size_t partitions)
      : mode_(mode), mask_(partitions - 1), parts_(std::make_unique<part[]>(partitions)) {}

  [[nodiscard]] registry_keys mode() const noexcept { return mode_; }
  [[nodiscard]] std::size_t partitions() const noexcept { return mask_ + 1; }

  /// Put p under key.  nullopt: done.  Otherwise the key was taken (unique:
  /// by a live process; duplicate: by p itself) and this is the holder.
  /// Throws registration_error for the null pid or a process not alive.
  std::optional<ember::pid> claim(arg key, ember::pid p, const char* op) {
    if (p.is_null() || !p.block()) throw registry_null_pid(op, registry_key_text(key));
    const std::size_t h = ops::hash(key);
    part& s = part_of(h);
    std::unique_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it != s.map.end()) {
      slot& sl = it->second;
      if (mode_ == registry_keys::unique) {
        if (registry_holder_alive(sl.first)) return sl.first;
        // Its holder is exiting and has not dropped it yet: its hook will
        // find the key no longer its own.
        s.map.erase(it);
        --s.entries;
        it = s.map.end();
      } else if (sl.first == p || std::find(sl.more.begin(), sl.more.end(), p) != sl.more.end()) {
        return p;
      }
    }
    if (it == s.map.end()) it = s.map.emplace(ops::make(key), slot{p, {}}).first;
    else it->second.more.push_back(p);
    ++s.entries;
    try {
      attach(key, p, op);
    } catch (...) {
      remove_locked(s, it, p);
      throw;
    }
    return std::nullopt;
  }

  /// Take p from under key; false when it was not there.
  bool release(arg key, ember::pid p) {
    const std::size_t h = ops::hash(key);
    part& s = part_of(h);
    std::unique_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end() || !remove_locked(s, it, p)) return false;
    if (detail::process* b = p.block()) {
      std::lock_guard<spin_lock> hk(b->hooks_lock);
      // ordering: acquire pairs with the serial's publication.
      if (b->serial.load(std::memory_order_acquire) == p.serial() && b->sig)
        if (auto* mine = static_cast<holder*>(b->sig->hook_of(this))) mine->forget(key);
    }
    return true;
  }

  /// The live holder of key (unique), or the null pid.
  [[nodiscard]] ember::pid whereis(arg key) const {
    const std::size_t h = ops::hash(key);
    const part& s = part_of(h);
    std::shared_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end() || !serial_matches(it->second.first)) return {};
    return it->second.first;
  }

  /// Every live process under key, into out.
  void lookup(arg key, pid_buffer& out) const {
    const std::size_t h = ops::hash(key);
    const part& s = part_of(h);
    std::shared_lock lk(s.mu);
    auto it = s.map.find(probe{key, h});
    if (it == s.map.end()) return;
    if (serial_matches(it->second.first)) out.push(it->second.first);
    for (const ember::pid& q : it->second.more)
      if (serial_matches(q)) out.push(q);
  }

  /// The keys p holds here (none when it is not alive).
  [[nodiscard]] std::vector<K> keys(ember::pid p) const {
    std::vector<K> out;
    detail::process* b = p.block();
    if (!b || p.is_null()) return out;
    std::lock_guard<spin_lock> hk(b->hooks_lock);
    if (!alive_locked(b, p.serial()) || !b->sig) return out;
    if (auto* mine = static_cast<const holder*>(b->sig->hook_of(this))) out = mine->keys;
    return out;
  }

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
    ember::pid first;               // unique: the holder
    std::vector<ember::pid> more;   // duplicate: the others
  };
  using map_type = std::unordered_map<K, slot, map_hash, map_eq>;
  struct alignas(64) part {
    mutable std::shared_mutex mu;
    map_type map;             // guarded by mu
    std::size_t entries = 0;  // guarded by mu: (key, pid) pairs
  };

  /// One process's keys in this table: its exit hook.  Guarded by that
  /// process's hooks_lock until the process exits; then owned by the exit.
  struct holder final : exit_hook {
    explicit holder(std::shared_ptr<registry_table> t) : exit_hook(t.get()), table(std::move(t)) {}
    void process_exited(ember::pid me) noexcept override { table->drop(keys, me); }
    [[nodiscard]] std::size_t bytes() const noexcept override { return sizeof(*this) + keys.capacity() * sizeof(K); }
    void forget(arg key) {
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (ops::equal(keys[i], key)) {
          if (i + 1 != keys.size()) keys[i] = std::move(keys.back());
          keys.pop_back();
          return;
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

  /// Take p out of the slot at it (partition lock held); false if absent.
  bool remove_locked(part& s, typename map_type::iterator it, ember::pid p) {
    slot& sl = it->second;
    if (sl.first == p) {
      if (sl.more.empty()) {
        s.map.erase(it);
      } else {
        sl.first = sl.more.back();
        sl.more.pop_back();
      }
    } else {
      auto m = std::find(sl.more.begin(), sl.more.end(), p);
      if (m == sl.more.end()) return false;
      *m = sl.more.back();
      sl.more.pop_back();
    }
    --s.entries;
    return true;
  }

  /// me has exited: take it from under each of its keys.
  void drop(const std::vector<K>& keys, ember::pid me) noexcept {
    for (const K& k : keys) {
      const std::size_t h = ops::hash(k);
      part& s = part_of(h);
      std::unique_lock lk(s.mu);
      auto it = s.map.find(probe{k, h});
      if (it != s.map.end()) remove_locked(s, it, me);
    }
  }

  const registry_keys mode_;
  const std::size_t mask_;
  std::unique_ptr<part[]> parts_;
};

/// A registry key as a via_name.
template <class K, class Hash, class Eq>
class registry_via final : public via_name::service {
public:
  registry_via(std::shared_ptr<registry_table<K, Hash, Eq>> t, K key) : t_(std::move(t)), key_(std::move(key)) {}
  [[nodiscard]] ember::pid whereis() const override { return t_->whereis(key_); }
  [[nodiscard]] std::optional<ember::pid> register_name(ember::pid p) const override {
    return t_->claim(key_, p, "ember::via_name::register_name");
  }
  bool unregister_name(ember::pid p) const override { return t_->release(key_, p); }
  [[nodiscard]] std::string to_string() const override { return "via(registry, " + registry_key_text(key_) + ")"; }

private:
  std::shared_ptr<registry_table<K, Hash, Eq>> t_;
  K key_;
};

}  // namespace detail

/// A handle to a registry of keys of type K.  Copies share the table.
template <class K, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class registry {
  using table = detail::registry_table<K, Hash, Eq>;

public:
  using key_type = K;
  /// How keys are passed: std::string_view for std::string keys, else const K&.
  using key_arg = typename table::arg;

  /// partitions: 0 picks one per hardware thread (at most 256); any count is
  /// rounded up to a power of two; more than 4096 is bad_argument.
  explicit registry(registry_keys keys, std::size_t partitions = 0)
      : t_(std::make_shared<table>(keys, detail::registry_partitions(partitions))) {}

  [[nodiscard]] registry_keys key_mode() const noexcept { return t_->mode(); }
  [[nodiscard]] std::size_t partitions() const noexcept { return t_->partitions(); }

  /// Register the calling process under key.  Process context.
  void register_name(key_arg key) {
    register_name(key, detail::current_or_throw("registry::register_name")->self_pid());
  }
  /// Register p under key.  Any thread.  registration_error: the key is
  /// taken (unique: by a live process; duplicate: by p itself) — the text
  /// names the holder; p is null or not alive.
  void register_name(key_arg key, pid p) {
    static constexpr const char* op = "ember::registry::register_name";
    if (auto holder = t_->claim(key, p, op)) throw detail::registry_taken(op, detail::registry_key_text(key), *holder);
  }
  /// Unregister the calling process from key; false if it was not under
  /// it.  Process context.
  bool unregister_name(key_arg key) {
    return t_->release(key, detail::current_or_throw("registry::unregister_name")->self_pid());
  }
  /// Unregister p from key; false if it was not under it.  Any thread.
  bool unregister_name(key_arg key, pid p) { return t_->release(key, p); }

  /// The live process under key (unique keys; bad_argument otherwise).
  [[nodiscard]] std::optional<pid> whereis(key_arg key) const {
    if (t_->mode() != registry_keys::unique)
      throw bad_argument("ember::registry::whereis: a duplicate-key registry has no single holder; use lookup");
    pid p = t_->whereis(key);
    if (p.is_null()) return std::nullopt;
    return p;
  }
  /// Every live process under key (in no particular order).
  [[nodiscard]] std::vector<pid> lookup(key_arg key) const {
    detail::pid_buffer b;
    t_->lookup(key, b);
    std::vector<pid> out;
    out.reserve(b.size());
    b.each([&](const pid& p) { out.push_back(p); });
    return out;
  }
  /// Send a copy of msg to every process under key; returns how many.
  /// Any thread (in a process: one reduction per send).
  template <class T>
  std::size_t dispatch(key_arg key, const T& msg) const {
    detail::pid_buffer b;
    t_->lookup(key, b);  // sends happen outside the partition's lock
    b.each([&](const pid& p) { ember::send(p, msg); });
    return b.size();
  }
  /// The keys p holds in this registry (empty when it is not alive).
  [[nodiscard]] std::vector<K> keys(pid p) const { return t_->keys(p); }
  /// (key, process) pairs registered now.
  [[nodiscard]] std::size_t count() const { return t_->count(); }

  /// key as a via_name: what gen_server and send take as a name.  Unique
  /// keys only (bad_argument otherwise).  Allocates; keep it to reuse it.
  [[nodiscard]] via_name via(key_arg key) const {
    if (t_->mode() != registry_keys::unique)
      throw bad_argument("ember::via: via-names need a unique-key registry");
    return via_name(std::make_shared<const detail::registry_via<K, Hash, Eq>>(t_, K(key)));
  }

private:
  std::shared_ptr<table> t_;
};

/// ember::via(registry, key): see registry::via.
template <class K, class Hash, class Eq>
[[nodiscard]] via_name via(const registry<K, Hash, Eq>& r, typename registry<K, Hash, Eq>::key_arg key) {
  return r.via(key);
}

}  // namespace ember
