// ember/impl/heap.ipp — the process heap (compiled once, in src/ember.cpp).
// The rules are in heap.hpp.
//
// Small blocks (up to max_small bytes, alignment up to 16) are carved from
// chunks by a bump pointer and recycled through per-size-class free lists;
// the first chunk is exactly the first request (a gen_server's state), the
// next ones grow from 1 KiB to 64 KiB.  Large blocks are separate system
// allocations on a doubly linked list.  Destruction frees every chunk and
// large block, whatever was not deallocated.  Large blocks of 128 KiB or
// more are mapped from the kernel directly, so freeing them (at the latest
// when the process ends) gives the memory back to the system at once,
// whatever the C library's allocator would keep.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <mutex>
#include <new>

#include <spdlog/spdlog.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/signals.hpp"
#include "ember/heap.hpp"
#include "ember/limits.hpp"
#include "ember/this_process.hpp"

namespace ember {

struct process_heap::chunk {
  chunk* next;
  std::size_t size;  // with this header
};  // 16 bytes: blocks after it stay 16-aligned


struct process_heap::large {
  large* prev;
  large* next;
  std::size_t size;    // the whole system block
  std::size_t offset;  // from the system block to the user's block
  std::size_t alignment;  // 0: mapped with mmap
  std::size_t pad;
};


namespace {
constexpr std::size_t heap_classes = 16 + 6;  // 16..256 by 16, then 384..2048
constexpr std::size_t first_grown_chunk = 1024;
constexpr std::size_t max_chunk = 64 * 1024;
constexpr std::size_t map_threshold = 128 * 1024;

std::size_t heap_class(std::size_t n) noexcept {
  if (n <= 256) return n == 0 ? 0 : (n + 15) / 16 - 1;
  if (n <= 384) return 16;
  if (n <= 512) return 17;
  if (n <= 768) return 18;
  if (n <= 1024) return 19;
  if (n <= 1536) return 20;
  return 21;
}
std::size_t heap_class_size(std::size_t c) noexcept {
  static constexpr std::size_t big[] = {384, 512, 768, 1024, 1536, 2048};
  return c < 16 ? (c + 1) * 16 : big[c - 16];
}
}  // namespace

process_heap::process_heap(detail::process* owner, std::size_t limit) noexcept : owner_(owner), limit_(limit) {
  owner_->rt->heap_opened();
}

process_heap::~process_heap() {
  while (chunk* c = chunks_) {
    chunks_ = c->next;
    ::operator delete(c);
  }
  while (large* l = large_) {
    large_ = l->next;
    release_large(l);
  }
  owner_->rt->heap_closed(bytes());
}

void process_heap::over_limit(std::size_t n) {
  const max_heap_size_exceeded m{bytes(), n, limit_};
  exit_reason r = exit_reason::error(m);
  detail::process* self = detail::this_process();
  if (self != owner_) throw std::bad_alloc();  // misuse: another thread's allocation
  try {
    owner_->rt->logger().error("process {} killed: {}", owner_->self_pid(), r.to_string());
  } catch (...) {
    // A failing log sink does not stop the kill.
  }
  {
    std::lock_guard<detail::spin_lock> lk(owner_->hooks_lock);
    if (!owner_->hooks_closed) detail::kill_locked(owner_, r);
  }
  throw detail::exit_exception{std::move(r)};
}

void process_heap::charge(std::size_t n, bool capped) {
  const std::size_t held = bytes();
  if (capped && limit_ != 0 && (held > limit_ || n > limit_ - held)) over_limit(n);
  // ordering: relaxed; only the owner writes, other threads read a snapshot.
  bytes_.store(held + n, std::memory_order_relaxed);
  owner_->rt->heap_grew(std::int64_t(n));
}

void process_heap::credit(std::size_t n) noexcept {
  bytes_.store(bytes() - n, std::memory_order_relaxed);
  owner_->rt->heap_grew(-std::int64_t(n));
}

void* process_heap::allocate_small(std::size_t n, bool capped) {
  const std::size_t c = heap_class(n);
  if (free_ && free_[c]) {
    void* b = free_[c];
    free_[c] = *static_cast<void**>(b);
    return b;
  }
  const std::size_t size = heap_class_size(c);
  if (std::size_t(bump_end_ - bump_) < size) {
    // The first chunk fits the first request exactly; later ones grow.
    const std::size_t payload = chunks_ ? std::max<std::size_t>(next_chunk_, size) : size;
    const std::size_t total = sizeof(chunk) + payload;
    charge(total, capped);
    chunk* k;
    try {
      k = static_cast<chunk*>(::operator new(total));
    } catch (...) {
      credit(total);
      throw;
    }
    k->next = chunks_;
    k->size = total;
    chunks_ = k;
    bump_ = reinterpret_cast<char*>(k + 1);
    bump_end_ = bump_ + payload;
    next_chunk_ = std::uint32_t(chunks_->next ? std::min(max_chunk, std::size_t(next_chunk_) * 2) : first_grown_chunk);
  }
  void* b = bump_;
  bump_ += size;
  return b;
}

void* process_heap::allocate_large(std::size_t n, std::size_t alignment) {
  const std::size_t a = std::max<std::size_t>(alignment, 16);
  const std::size_t offset = (sizeof(large) + a - 1) / a * a;
  if (n > std::size_t(-1) - offset) throw std::bad_alloc();
  const std::size_t total = offset + n;
  charge(total, true);
  const bool mapped = total >= map_threshold && a <= 4096;
  char* base;
  if (mapped) {
    void* m = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      credit(total);
      throw std::bad_alloc();
    }
    base = static_cast<char*>(m);
  } else {
    try {
      base = static_cast<char*>(::operator new(total, std::align_val_t{a}));
    } catch (...) {
      credit(total);
      throw;
    }
  }
  large* l = reinterpret_cast<large*>(base + offset - sizeof(large));
  l->prev = nullptr;
  l->next = large_;
  l->size = total;
  l->offset = offset;
  l->alignment = mapped ? 0 : a;
  if (large_) large_->prev = l;
  large_ = l;
  return base + offset;
}

void* process_heap::do_allocate(std::size_t n, std::size_t alignment) {
  if (n <= max_small && alignment <= 16) return allocate_small(n, true);
  return allocate_large(n, alignment);
}

void process_heap::do_deallocate(void* p, std::size_t n, std::size_t alignment) {
  if (n <= max_small && alignment <= 16) {
    if (!free_) {
      // The free lists' table comes from the heap itself, uncapped (a
      // deallocation must not fail).
      try {
        free_ = static_cast<void**>(allocate_small(heap_classes * sizeof(void*), false));
      } catch (...) {
        return;  // out of memory: the block stays unused until the heap goes
      }
      std::fill_n(free_, heap_classes, nullptr);
    }
    const std::size_t c = heap_class(n);
    *static_cast<void**>(p) = free_[c];
    free_[c] = p;
    return;
  }
  large* l = reinterpret_cast<large*>(static_cast<char*>(p) - sizeof(large));
  if (l->prev) l->prev->next = l->next; else large_ = l->next;
  if (l->next) l->next->prev = l->prev;
  const std::size_t total = l->size;
  release_large(l);
  credit(total);
}

void process_heap::release_large(large* l) noexcept {
  char* base = reinterpret_cast<char*>(l) + sizeof(large) - l->offset;
  if (l->alignment == 0) ::munmap(base, l->size);
  else ::operator delete(base, std::align_val_t{l->alignment});
}

process_heap& heap() {
  detail::process* self = detail::current_or_throw("heap");
  process_heap* h = self->heap.load(std::memory_order_relaxed);
  if (!h) {
    h = new process_heap(self, self->heap_limit);
    // ordering: release publishes the heap to process_info's readers.
    self->heap.store(h, std::memory_order_release);
  }
  return *h;
}

}  // namespace ember
