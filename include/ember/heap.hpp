// ember/heap.hpp — each process's private heap: a std::pmr memory resource
// that is accounted, can be capped, and is freed whole when the process
// ends.
//
//   std::pmr::vector<order> book{ember::heap_allocator<order>()};  // in a process
//   book.push_back(o);   // the bytes come from this process's heap
//
// Rules (tests in tests/behaviour/heap_test.cpp; docs/guide.md "Memory"):
//  - ember::heap() is the calling process's heap, made on first use.
//    Whatever is still allocated from it when the process ends is freed
//    then (destructors do not run: free memory, not objects with side
//    effects).  A gen_server's state object lives in it, and a state that
//    takes a std::pmr allocator (std::uses_allocator) is given this one, so
//    its containers allocate there too.
//  - process_info(p)->heap_size is what the heap holds from the system
//    (its chunks and large blocks), and counts in `memory`.
//  - With a cap (spawn_options::max_heap_size, or the runtime's default), a
//    request that would take the heap past it kills the process with
//    reason max_heap_size_exceeded (limits.hpp), logs the pid and the
//    figures, and throws (the allocation never returns); the process cannot
//    trap or survive it, as OTP's max_heap_size kill.  Message queues are
//    bounded by mailbox bounds, not by this cap.
//  - Sending a value whose type uses a std::pmr allocator copies it out of
//    the sender's heap into the global heap (send.hpp): a message never
//    points into the heap of a process that may die first.
//
// Threads: a heap belongs to its process: allocate and free only from it
// (the resource is not synchronized).  heap_size may be read from any
// thread.  Ownership: the process owns its heap; the runtime frees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <utility>

namespace ember {

namespace detail {
struct process;
}

class process_heap final : public std::pmr::memory_resource {
public:
  /// limit 0: no cap.  owner: the process killed when the cap is passed.
  process_heap(detail::process* owner, std::size_t limit) noexcept;
  ~process_heap() override;
  process_heap(const process_heap&) = delete;
  process_heap& operator=(const process_heap&) = delete;

  /// Bytes held from the system: chunks and large blocks, with their
  /// headers.  Any thread (a snapshot).
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_.load(std::memory_order_relaxed); }
  /// The cap (0: none).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

  /// Blocks up to this size come from the heap's chunks (size classes,
  /// reused after deallocation); larger ones, and alignments over 16, are
  /// separate blocks from the system.
  static constexpr std::size_t max_small = 2048;

private:
  struct chunk;
  struct large;
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

  void* allocate_small(std::size_t n, bool capped);
  void* allocate_large(std::size_t n, std::size_t alignment);
  static void release_large(large* l) noexcept;
  void charge(std::size_t n, bool capped);  // kills the owner when n would pass the cap
  [[noreturn]] void over_limit(std::size_t n);
  void credit(std::size_t n) noexcept;

  detail::process* owner_;
  std::size_t limit_;
  std::atomic<std::size_t> bytes_{0};
  chunk* chunks_ = nullptr;        // every chunk, newest first
  char* bump_ = nullptr;           // free space in the newest chunk
  char* bump_end_ = nullptr;
  void** free_ = nullptr;          // per size class free lists, made on the first small free
  large* large_ = nullptr;         // every large block (doubly linked)
  std::uint32_t next_chunk_ = 0;   // size of the next chunk
};

/// The calling process's heap (made on first use).  Process context.
[[nodiscard]] process_heap& heap();

/// A std::pmr allocator on the calling process's heap.
template <class T = std::byte>
[[nodiscard]] std::pmr::polymorphic_allocator<T> heap_allocator() {
  return std::pmr::polymorphic_allocator<T>(&heap());
}

/// Destroys an object made by make_on_heap and gives its bytes back.
struct heap_delete {
  process_heap* heap = nullptr;
  template <class T>
  void operator()(T* p) const noexcept {
    p->~T();
    heap->deallocate(p, sizeof(T), alignof(T));
  }
};
/// An object living in a process's heap.  Destroy it (reset, or let it go)
/// in that process, before it ends.
template <class T>
using heap_ptr = std::unique_ptr<T, heap_delete>;

/// T(args...) in the calling process's heap.  A T that takes a std::pmr
/// allocator (std::uses_allocator) is given the heap's, so what it
/// allocates lives there too.
template <class T, class... A>
heap_ptr<T> make_on_heap(A&&... args) {
  process_heap& h = heap();
  void* mem = h.allocate(sizeof(T), alignof(T));
  try {
    T* p = std::uninitialized_construct_using_allocator(static_cast<T*>(mem),
                                                        std::pmr::polymorphic_allocator<std::byte>(&h),
                                                        std::forward<A>(args)...);
    return heap_ptr<T>(p, heap_delete{&h});
  } catch (...) {
    h.deallocate(mem, sizeof(T), alignof(T));
    throw;
  }
}

}  // namespace ember
