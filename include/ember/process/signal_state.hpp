// ember/process/signal_state.hpp — a process's links, monitors, exit
// waiters, registered name and exit hooks (the registries it holds keys in).
//
// Allocated on first use (most processes never link or monitor), guarded by
// the process's hooks_lock, and taken by the process when it exits.
//
// Who may change what (the rules that make delivery exactly-once; see
// impl/signals.ipp):
//  - `links` and `watching` are the authority on whether a link or monitor
//    is live for *this* process.  A peer delivers an exit signal or a `down`
//    to this process only if, under this process's lock, it erases its own
//    entry here — so once this process has erased an entry itself (unlink,
//    demonitor), nothing more can arrive for it.
//  - `watchers` is the exiting side's list of whom to tell; entries whose
//    watcher went away are harmless (the watcher's `watching` decides).
//  - `exit_hooks` holds one hook per registry the process holds keys in
//    (registry.hpp); a registry adds to it only while the process is alive,
//    and deliver_exit runs every hook, with no lock held, right after the
//    name is released and before links and monitors are told.
//
// Threads: any thread, holding the owning process's hooks_lock.
// Ownership: owned by the process control block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/pid.hpp"

namespace ember::detail {

struct exit_latch;

/// A map from 64-bit keys to pids: a plain vector while small (cache
/// friendly, no allocation per entry), plus a hash index once it grows, so a
/// process linked to 100,000 others still finds and removes one in O(1).
class pid_table {
public:
  struct entry {
    std::uint64_t key;
    ember::pid who;
  };

  [[nodiscard]] bool contains(std::uint64_t key) const { return find(key) != npos; }
  /// Adds (key, who); false (and no change) when key is present.
  bool insert(std::uint64_t key, ember::pid who) {
    if (find(key) != npos) return false;
    items_.push_back({key, who});
    if (index_) index_->emplace(key, items_.size() - 1);
    else if (items_.size() > linear_limit) build_index();
    return true;
  }
  /// Removes key; false when absent.
  bool erase(std::uint64_t key) {
    std::size_t i = find(key);
    if (i == npos) return false;
    if (index_) index_->erase(key);
    if (i + 1 != items_.size()) {
      items_[i] = items_.back();
      if (index_) (*index_)[items_[i].key] = i;
    }
    items_.pop_back();
    return true;
  }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] const std::vector<entry>& entries() const noexcept { return items_; }
  [[nodiscard]] std::size_t bytes() const noexcept {
    return items_.capacity() * sizeof(entry) + (index_ ? index_->size() * 32 + index_->bucket_count() * 8 : 0);
  }

private:
  static constexpr std::size_t npos = ~std::size_t{0};
  static constexpr std::size_t linear_limit = 16;

  [[nodiscard]] std::size_t find(std::uint64_t key) const {
    if (index_) {
      auto it = index_->find(key);
      return it == index_->end() ? npos : it->second;
    }
    for (std::size_t i = 0; i < items_.size(); ++i)
      if (items_[i].key == key) return i;
    return npos;
  }
  void build_index() {
    index_ = std::make_unique<std::unordered_map<std::uint64_t, std::size_t>>();
    index_->reserve(items_.size() * 2);
    for (std::size_t i = 0; i < items_.size(); ++i) index_->emplace(items_[i].key, i);
  }

  std::vector<entry> items_;
  std::unique_ptr<std::unordered_map<std::uint64_t, std::size_t>> index_;
};

/// Something outside the signal table that must hear of the process's
/// exit: a registry's record of the keys the process holds in it.  Made and
/// changed by its owner under the process's hooks_lock; run once, by
/// deliver_exit, after the process has left the signal table.
class exit_hook {
public:
  explicit exit_hook(const void* owner) noexcept : owner_(owner) {}
  virtual ~exit_hook() = default;
  exit_hook(const exit_hook&) = delete;
  exit_hook& operator=(const exit_hook&) = delete;

  /// Who made it (a registry's table): a process has one hook per owner.
  [[nodiscard]] const void* owner() const noexcept { return owner_; }
  /// The process `me` has exited (closed to signals, serial cleared).
  /// Called with no lock held.
  virtual void process_exited(ember::pid me) noexcept = 0;
  /// Bytes held, for process_info's memory.
  [[nodiscard]] virtual std::size_t bytes() const noexcept = 0;

private:
  const void* owner_;
};

struct signal_state {
  pid_table links;     // key: the linked process's serial
  pid_table watchers;  // monitors on this process — key: monitor id, who: the watcher
  pid_table watching;  // monitors this process holds — key: monitor id, who: the target
  std::vector<std::shared_ptr<exit_latch>> waiters;  // threads outside waiting for the exit
  std::string name;                                  // registered name, empty if none
  std::vector<std::unique_ptr<exit_hook>> exit_hooks;  // registries holding keys for it
  // Asynchronous requests (gen_server::send_request) whose replies this
  // process still takes — key: the request's reference, who: the server.
  // A reply to any other asynchronous reference is dropped.
  pid_table requests;
  // Names of the monitors in `watching` made by name (monitor(name)): the
  // `down` carries it.  Usually empty.
  std::vector<std::pair<std::uint64_t, std::string>> monitor_names;

  /// Take the name of monitor `id` (empty when it was made by pid).
  std::string take_monitor_name(std::uint64_t id) {
    for (auto it = monitor_names.begin(); it != monitor_names.end(); ++it) {
      if (it->first == id) {
        std::string n = std::move(it->second);
        monitor_names.erase(it);
        return n;
      }
    }
    return {};
  }

  /// The hook made by `owner`, or nullptr.
  [[nodiscard]] exit_hook* hook_of(const void* owner) const noexcept {
    for (const auto& h : exit_hooks)
      if (h->owner() == owner) return h.get();
    return nullptr;
  }

  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t hooks = exit_hooks.capacity() * sizeof(exit_hooks[0]);
    for (const auto& h : exit_hooks) hooks += h->bytes();
    return sizeof(*this) + links.bytes() + watchers.bytes() + watching.bytes() + requests.bytes() +
           waiters.capacity() * sizeof(waiters[0]) + name.capacity() + hooks +
           monitor_names.capacity() * sizeof(monitor_names[0]);
  }
};

}  // namespace ember::detail
