// ember/binary.hpp — an immutable byte string that messages share instead
// of copying (BEAM's reference-counted binaries).
//
//   ember::binary frame(payload);                    // copies the bytes once
//   for (pid p : subscribers) ember::send(p, frame); // each send: a counter increment
//
// Rules (tests in tests/behaviour/binary_test.cpp):
//  - Up to inline_max (64) bytes are stored inside the binary and copied
//    with it, like BEAM's heap binaries: cheaper than sharing.  Longer ones
//    live once in a reference-counted block; copying a binary (sending it
//    to 10,000 processes) shares that block, never the bytes.
//  - The bytes never change after construction, so any number of processes
//    on any threads may read one block at once.  The block is freed when
//    the last binary referring to it goes.
//  - binary::make(n, fill) writes the bytes in place (no second copy).
//  - binary::shared_blocks() / shared_bytes() count the live blocks of the
//    whole program (for tests and leak hunting).
//
// Threads: a binary value is like an int: one per thread at a time;
// copies on other threads are independent.  Ownership: shared block,
// counted; the last copy frees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace ember {

class binary {
public:
  static constexpr std::size_t inline_max = 64;

  binary() noexcept = default;
  binary(const void* data, std::size_t n) : size_(n) {
    if (n > inline_max) block_ = new_block(n);
    if (n != 0) std::memcpy(mutable_data(), data, n);
  }
  explicit binary(std::string_view s) : binary(s.data(), s.size()) {}
  explicit binary(std::span<const std::byte> s) : binary(s.data(), s.size()) {}

  /// A binary of n bytes written in place by fill(std::span<std::byte>).
  template <class F>
  static binary make(std::size_t n, F&& fill) {
    binary b;
    if (n > inline_max) b.block_ = new_block(n);
    b.size_ = n;
    std::forward<F>(fill)(std::span<std::byte>(b.mutable_data(), n));
    return b;
  }

  binary(const binary& o) noexcept : size_(o.size_) {
    if (is_inline()) std::memcpy(inline_, o.inline_, size_);
    else retain(block_ = o.block_);
  }
  binary(binary&& o) noexcept : size_(o.size_) {
    if (is_inline()) std::memcpy(inline_, o.inline_, size_);
    else block_ = o.block_;
    o.size_ = 0;
  }
  binary& operator=(binary o) noexcept {
    swap(o);
    return *this;
  }
  ~binary() {
    if (!is_inline()) release(block_);
  }
  void swap(binary& o) noexcept {
    binary* a = this;
    binary* b = &o;
    alignas(binary) unsigned char tmp[sizeof(binary)];
    std::memcpy(tmp, static_cast<void*>(a), sizeof(binary));
    std::memcpy(static_cast<void*>(a), static_cast<void*>(b), sizeof(binary));
    std::memcpy(static_cast<void*>(b), tmp, sizeof(binary));
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] const std::byte* data() const noexcept {
    return is_inline() ? reinterpret_cast<const std::byte*>(inline_) : block_->bytes();
  }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data(), size_}; }
  [[nodiscard]] std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size_};
  }
  /// Whether the bytes live in a shared block (size() > inline_max).
  [[nodiscard]] bool shared() const noexcept { return !is_inline(); }
  /// Binaries sharing this one's block (0 for an inline binary).
  [[nodiscard]] std::size_t use_count() const noexcept {
    return is_inline() ? 0 : block_->refs.load(std::memory_order_relaxed);
  }

  friend bool operator==(const binary& a, const binary& b) noexcept { return a.view() == b.view(); }

  /// Live shared blocks in the program, and their bytes (payload only).
  [[nodiscard]] static std::size_t shared_blocks() noexcept { return stats().blocks.load(std::memory_order_relaxed); }
  [[nodiscard]] static std::size_t shared_bytes() noexcept { return stats().bytes.load(std::memory_order_relaxed); }

private:
  struct block {
    std::atomic<std::size_t> refs{1};
    std::size_t size;
    std::byte* bytes() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  };
  struct counters {
    std::atomic<std::size_t> blocks{0};
    std::atomic<std::size_t> bytes{0};
  };
  static counters& stats() noexcept {
    static counters c;
    return c;
  }
  static block* new_block(std::size_t n) {
    if (n > std::size_t(-1) - sizeof(block)) throw std::bad_alloc();
    block* b = ::new (::operator new(sizeof(block) + n)) block;
    b->size = n;
    stats().blocks.fetch_add(1, std::memory_order_relaxed);
    stats().bytes.fetch_add(n, std::memory_order_relaxed);
    return b;
  }
  static void retain(block* b) noexcept { b->refs.fetch_add(1, std::memory_order_relaxed); }
  static void release(block* b) noexcept {
    // ordering: acq_rel so the last owner sees every other owner's reads done.
    if (b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      stats().blocks.fetch_sub(1, std::memory_order_relaxed);
      stats().bytes.fetch_sub(b->size, std::memory_order_relaxed);
      b->~block();
      ::operator delete(b);
    }
  }
  [[nodiscard]] bool is_inline() const noexcept { return size_ <= inline_max; }
  std::byte* mutable_data() noexcept { return is_inline() ? reinterpret_cast<std::byte*>(inline_) : block_->bytes(); }

  std::size_t size_ = 0;
  union {
    unsigned char inline_[inline_max];
    block* block_;
  };
};

}  // namespace ember

template <>
struct std::hash<ember::binary> {
  std::size_t operator()(const ember::binary& b) const noexcept { return std::hash<std::string_view>{}(b.view()); }
};
