// ember/registry.hpp — a local key→process registry (Elixir's Registry):
// each registration carries a value; keys are unique or duplicate; the
// table is split into partitions by key hash; unique keys also serve as
// gen_server names (OTP's via-names).
//
//   ember::registry<std::string> limiters(ember::registry_keys::unique);
//   // One server per API key, however many first requests race to start it:
//   auto s = ember::gen_server::start<limiter>(ember::via(limiters, key));
//   ember::gen_server::call<limiter>(ember::via(limiters, key), check{});
//
//   // Pub/sub with per-subscriber data (Elixir's dispatch):
//   ember::registry<std::string, filter> topics(ember::registry_keys::duplicate);
//   topics.register_name("prices", filter{.min = 10});       // in each subscriber
//   topics.dispatch("prices", [&](const auto& entries) {
//     for (const auto& [pid, f] : entries) if (f.wants(t)) ember::send(pid, t);
//   });
//
// Rules (contract table in docs/behaviours.md; tests in
// tests/behaviour/registry_test.cpp and registry_values_test.cpp):
//  - unique keys: a key names at most one live process (a process may hold
//    many keys).  duplicate keys: a key names any number of registrations;
//    a process may register under the same key more than once.
//  - each registration has a value of type V (no_value when V is not
//    given): lookup gives (pid, value) entries; update_value lets the
//    owner of a unique key change its value; values(key, pid) reads a
//    process's values; match, count_match and unregister_match select by a
//    predicate on the value (C++'s answer to match specs); select and
//    count_select look at every entry.
//  - unregister_name(key) removes every registration of the process under
//    key; listeners (processes given at construction) receive a
//    registry_event for each registration and each unregistration that
//    removed something (not for exits: a listener monitors).
//  - a process's keys vanish when it exits, before its links and monitors
//    hear of the exit (as its registered name does).  A pid is returned only
//    while its process is alive: never a dead process's, nor a newer
//    process's that reuses its control block.
//  - refusals throw registration_error (a taken key, naming its holder; the
//    null pid; a pid that is not alive); whereis, update_value and via() on
//    a duplicate-key registry, or too many partitions, throw bad_argument.
//  - ember::via(registry, key[, value]) is a via_name (names.hpp) for a
//    unique-key registry: gen_server::start/start_link register the new
//    server under it (with the value), call/cast/stop and ember::send look
//    it up at each use.
//
// Threads: any thread, except the forms that act for the calling process
// (register_name(key[, value]), unregister_name(key),
// unregister_match(key, pred), update_value), which are process context.
// A lookup takes one partition's lock shared (readers of different keys
// touch different locks); a change takes it exclusive and then the
// process's hook lock.  Predicates and update functions run under a
// partition's lock: they must not call the registry.  Called from a
// process, every operation spends a reduction first, whether it succeeds or
// throws (a lookup retried in a loop still yields its worker).
// Ownership: a registry is a cheap handle; copies share one table, which
// lives while a handle, a via_name or a process holding a key refers to it.
// Keys and values are copied into the table; Hash and Eq are
// default-constructed.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/detail/registry_table.hpp"
#include "ember/errors.hpp"
#include "ember/names.hpp"
#include "ember/pid.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"

namespace ember {

/// A registry's options beyond its key mode.
struct registry_options {
  /// 0 picks one per hardware thread (at most 256); any count is rounded up
  /// to a power of two; more than 4096 is bad_argument.
  std::size_t partitions = 0;
  /// Processes told of every registration and unregistration (Elixir's
  /// :listeners), with a registry_event<K, V> message.
  std::vector<pid> listeners;
};

namespace detail {

/// A registry key (and the value to register with) as a via_name.
template <class K, class V, class Hash, class Eq>
class registry_via final : public via_name::service {
public:
  registry_via(std::shared_ptr<registry_table<K, V, Hash, Eq>> t, K key, V value)
      : t_(std::move(t)), key_(std::move(key)), value_(std::move(value)) {}
  [[nodiscard]] ember::pid whereis() const override { return t_->whereis(key_); }
  [[nodiscard]] std::optional<ember::pid> register_name(ember::pid p) const override {
    return t_->claim(key_, p, value_, "ember::via_name::register_name");
  }
  bool unregister_name(ember::pid p) const override { return t_->release(key_, p) != 0; }
  [[nodiscard]] std::string to_string() const override { return "via(registry, " + registry_key_text(key_) + ")"; }

private:
  std::shared_ptr<registry_table<K, V, Hash, Eq>> t_;
  K key_;
  V value_;
};

}  // namespace detail

/// A handle to a registry of keys of type K, each registration carrying a
/// value of type V.  Copies share the table.
template <class K, class V = no_value, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class registry {
  using table = detail::registry_table<K, V, Hash, Eq>;

public:
  using key_type = K;
  using value_type = V;
  /// How keys are passed: std::string_view for std::string keys, else const K&.
  using key_arg = typename table::arg;
  /// (pid, value): what lookup, match and dispatch's function see.
  using entry = registry_entry<V>;
  /// (key, pid, value): what select sees.
  using match_type = registry_match<K, V>;
  /// What listeners receive.
  using event = registry_event<K, V>;

  explicit registry(registry_keys keys, std::size_t partitions = 0)
      : registry(keys, registry_options{.partitions = partitions, .listeners = {}}) {}
  registry(registry_keys keys, registry_options o)
      : t_(std::make_shared<table>(keys, detail::registry_partitions(o.partitions), std::move(o.listeners))) {}

  [[nodiscard]] registry_keys key_mode() const noexcept { return t_->mode(); }
  [[nodiscard]] std::size_t partitions() const noexcept { return t_->partitions(); }

  // -- registering ----------------------------------------------------------
  /// Register the calling process under key (value V{}).  Process context.
  void register_name(key_arg key) { register_name(key, self_for("registry::register_name"), V{}); }
  /// Register the calling process under key with value (Elixir's
  /// register/3).  Process context.
  void register_name(key_arg key, V value)
    requires(!std::is_same_v<V, pid>)
  {
    register_name(key, self_for("registry::register_name"), std::move(value));
  }
  /// Register p under key (value V{}).  Any thread.
  void register_name(key_arg key, pid p) { register_name(key, p, V{}); }
  /// Register p under key with value.  Any thread.  registration_error:
  /// the unique key is taken by a live process (the text names it); p is
  /// null or not alive.
  void register_name(key_arg key, pid p, V value) {
    static constexpr const char* op = "ember::registry::register_name";
    detail::spend(1);
    if (auto holder = t_->claim(key, p, std::move(value), op))
      throw detail::registry_taken(op, detail::registry_key_text(key), *holder);
  }

  /// Remove every registration of the calling process under key; false if
  /// it had none.  Process context.
  bool unregister_name(key_arg key) { return t_->release(key, self_for("registry::unregister_name")) != 0; }
  /// The same for p.  Any thread.
  bool unregister_name(key_arg key, pid p) {
    detail::spend(1);
    return t_->release(key, p) != 0;
  }
  /// Remove the calling process's registrations under key whose value
  /// satisfies pred(const V&); how many went.  Process context.
  template <class Pred>
  std::size_t unregister_match(key_arg key, Pred&& pred) {
    return t_->release(key, self_for("registry::unregister_match"), std::forward<Pred>(pred));
  }

  /// Replace the calling process's value under a unique key with
  /// fn(const V& old); the new and the old value, or nullopt when the
  /// process does not hold the key (Elixir's update_value).  Process
  /// context; bad_argument on a duplicate-key registry.
  template <class F>
  std::optional<std::pair<V, V>> update_value(key_arg key, F&& fn) {
    if (t_->mode() != registry_keys::unique)
      throw bad_argument("ember::registry::update_value: a duplicate-key registry has no single owner per key");
    return t_->update(key, self_for("registry::update_value"), std::forward<F>(fn));
  }

  // -- looking up -------------------------------------------------------------
  /// The live process under a unique key (bad_argument otherwise).
  [[nodiscard]] std::optional<pid> whereis(key_arg key) const {
    detail::spend(1);
    if (t_->mode() != registry_keys::unique)
      throw bad_argument("ember::registry::whereis: a duplicate-key registry has no single holder; use lookup");
    pid p = t_->whereis(key);
    if (p.is_null()) return std::nullopt;
    return p;
  }
  /// Every live registration under key, (pid, value), in no particular order.
  [[nodiscard]] std::vector<entry> lookup(key_arg key) const {
    detail::spend(1);
    return t_->entries(key);
  }
  /// The processes of lookup(key) only (one per registration).
  [[nodiscard]] std::vector<pid> pids(key_arg key) const {
    detail::spend(1);
    detail::small_buffer<pid> b;
    t_->visit(key, [&](const entry& e) { b.push(e.pid); });
    std::vector<pid> out;
    out.reserve(b.size());
    b.each([&](pid& p) { out.push_back(p); });
    return out;
  }
  /// The values p registered under key (none, one, or — duplicate keys —
  /// several).
  [[nodiscard]] std::vector<V> values(key_arg key, pid p) const {
    detail::spend(1);
    std::vector<V> out;
    t_->visit(key, [&](const entry& e) {
      if (e.pid == p) out.push_back(e.value);
    });
    return out;
  }
  /// The registrations under key whose value satisfies pred(const V&).
  template <class Pred>
  [[nodiscard]] std::vector<entry> match(key_arg key, Pred&& pred) const {
    detail::spend(1);
    std::vector<entry> out;
    t_->visit(key, [&](const entry& e) {
      if (pred(std::as_const(e.value))) out.push_back(e);
    });
    return out;
  }
  template <class Pred>
  [[nodiscard]] std::size_t count_match(key_arg key, Pred&& pred) const {
    detail::spend(1);
    std::size_t n = 0;
    t_->visit(key, [&](const entry& e) { n += pred(std::as_const(e.value)) ? 1 : 0; });
    return n;
  }
  /// Every registration (key, pid, value) that satisfies
  /// pred(const K&, pid, const V&), partition by partition (each seen at
  /// one moment, not the whole table at once).
  template <class Pred>
  [[nodiscard]] std::vector<match_type> select(Pred&& pred) const {
    detail::spend(1);
    std::vector<match_type> out;
    t_->visit_all([&](const K& k, const entry& e) {
      if (pred(k, e.pid, std::as_const(e.value))) out.push_back(match_type{k, e.pid, e.value});
    });
    return out;
  }
  template <class Pred>
  [[nodiscard]] std::size_t count_select(Pred&& pred) const {
    detail::spend(1);
    std::size_t n = 0;
    t_->visit_all([&](const K& k, const entry& e) { n += pred(k, e.pid, std::as_const(e.value)) ? 1 : 0; });
    return n;
  }
  /// The keys p holds in this registry, once per registration (empty when
  /// it is not alive).
  [[nodiscard]] std::vector<K> keys(pid p) const {
    detail::spend(1);
    return t_->keys(p);
  }
  /// Registrations now.
  [[nodiscard]] std::size_t count() const {
    detail::spend(1);
    return t_->count();
  }

  // -- dispatching ------------------------------------------------------------
  /// Call fn with the registrations under key (a const std::vector<entry>&),
  /// outside the registry's locks, if there are any (Elixir's dispatch/3);
  /// returns how many there were.  Any thread.
  template <class F>
    requires std::is_invocable_v<F&, const std::vector<registry_entry<V>>&>
  std::size_t dispatch(key_arg key, F&& fn) const {
    const std::vector<entry> es = lookup(key);
    if (!es.empty()) fn(es);
    return es.size();
  }
  /// Send a copy of msg to every process under key (once per
  /// registration); returns how many.  Any thread (in a process: one
  /// reduction per send).
  template <class T>
  std::size_t dispatch(key_arg key, const T& msg) const {
    detail::spend(1);
    detail::small_buffer<pid> b;
    t_->visit(key, [&](const entry& e) { b.push(e.pid); });  // sends happen outside the lock
    b.each([&](pid& p) { ember::send(p, msg); });
    return b.size();
  }

  // -- via-names --------------------------------------------------------------
  /// key as a via_name: what gen_server and send take as a name; a server
  /// started under it registers with `value`.  Unique keys only
  /// (bad_argument otherwise).  Allocates; keep it to reuse it.
  [[nodiscard]] via_name via(key_arg key, V value = V{}) const {
    if (t_->mode() != registry_keys::unique)
      throw bad_argument("ember::via: via-names need a unique-key registry");
    return via_name(std::make_shared<const detail::registry_via<K, V, Hash, Eq>>(t_, K(key), std::move(value)));
  }

private:
  static pid self_for(const char* op) { return detail::enter_runtime(op)->self_pid(); }
  std::shared_ptr<table> t_;
};

/// ember::via(registry, key[, value]): see registry::via.
template <class K, class V, class Hash, class Eq>
[[nodiscard]] via_name via(const registry<K, V, Hash, Eq>& r, typename registry<K, V, Hash, Eq>::key_arg key) {
  return r.via(key);
}
template <class K, class V, class Hash, class Eq>
[[nodiscard]] via_name via(const registry<K, V, Hash, Eq>& r, typename registry<K, V, Hash, Eq>::key_arg key,
                           V value) {
  return r.via(key, std::move(value));
}

}  // namespace ember
