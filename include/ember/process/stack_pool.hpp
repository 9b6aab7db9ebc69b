// ember/process/stack_pool.hpp — fiber stacks carved from large mappings.
//
// A process runs on a stack taken from this pool.  Stacks are carved from
// slabs (one mmap of many stacks, MAP_NORESERVE: the kernel commits only the
// pages a process touches), so a million stacks cost a few hundred mappings,
// far under the kernel's default vm.max_map_count (65530).  The lowest page
// of every stack is a guard page: installed with MADV_GUARD_INSTALL (Linux
// 6.13+, no extra mapping), or with mprotect while the mapping budget allows
// (older kernels), so an overflow faults instead of corrupting a neighbour.
// See docs/guide.md, "Stacks", for exactly when an overflow is detected.
//
// Threads: acquire/release from any thread (a mutex guards the free lists);
// workers keep a small cache of default-size stacks (stack_cache) so the
// common path takes no lock.
// Ownership: the pool owns every slab and unmaps them all when destroyed;
// a stack handed out is owned by its process until released.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ember::detail {

/// The system's page size (sysconf, read once; a plain load after that).
inline std::atomic<std::size_t> page_size_cache{0};
std::size_t read_page_size() noexcept;
inline std::size_t page_bytes() noexcept {
  const std::size_t p = page_size_cache.load(std::memory_order_relaxed);
  return p != 0 ? p : read_page_size();
}

struct stack {
  char* base = nullptr;   // lowest address (the guard page when guarded)
  std::size_t size = 0;   // whole size, guard included
  [[nodiscard]] char* usable_bottom() const noexcept { return base + page_bytes(); }  // above the guard page
  [[nodiscard]] std::size_t usable_size() const noexcept { return size - page_bytes(); }
  explicit operator bool() const noexcept { return base != nullptr; }
};

class stack_pool {
public:
  stack_pool() = default;
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;
  ~stack_pool();

  /// Round a requested usable size up to the size class the pool hands out
  /// (a power of two, at least 16 KiB, guard page included).
  static std::size_t size_class(std::size_t usable) noexcept;
  static std::size_t page_size() noexcept { return page_bytes(); }

  /// A stack of exactly `cls` bytes (a size_class() result).  Throws
  /// std::bad_alloc when the system refuses memory.
  stack acquire(std::size_t cls);
  void release(stack s) noexcept;
  /// Batch forms, for worker caches: one lock per batch.
  void acquire_batch(std::size_t cls, std::vector<stack>& out, std::size_t n);
  void release_batch(std::vector<stack>& in, std::size_t n) noexcept;

  /// Bytes mapped (virtual), and stacks carved so far, for process_info and tests.
  std::size_t mapped_bytes() const;
  std::size_t stacks_carved() const;

private:
  struct size_class_state {
    std::vector<stack> free;
    char* bump = nullptr;      // next uncarved stack in the newest slab
    char* bump_end = nullptr;
  };
  stack carve_locked(std::size_t cls, size_class_state& st);
  void guard(stack& s);

  mutable std::mutex mu_;  // guards everything below
  std::unordered_map<std::size_t, size_class_state> classes_;
  std::vector<std::pair<char*, std::size_t>> slabs_;
  std::size_t mapped_ = 0;
  std::size_t carved_ = 0;
  std::size_t mprotect_guards_ = 0;
};

/// A worker's private cache of stacks of one size class (owner only).
class stack_cache {
public:
  stack_cache(stack_pool& pool, std::size_t cls) : pool_(pool), cls_(cls) {}
  ~stack_cache();
  stack_cache(const stack_cache&) = delete;
  stack_cache& operator=(const stack_cache&) = delete;

  [[nodiscard]] std::size_t size_class() const noexcept { return cls_; }
  stack acquire() {
    if (cache_.empty()) pool_.acquire_batch(cls_, cache_, batch);
    stack s = cache_.back();
    cache_.pop_back();
    return s;
  }
  void release(stack s) {
    if (cache_.size() >= 2 * batch) pool_.release_batch(cache_, batch);
    cache_.push_back(s);
  }

private:
  static constexpr std::size_t batch = 32;
  stack_pool& pool_;
  std::size_t cls_;
  std::vector<stack> cache_;
};

}  // namespace ember::detail
