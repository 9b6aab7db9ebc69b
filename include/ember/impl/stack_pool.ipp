// ember/impl/stack_pool.ipp — stack pool (compiled once, in src/ember.cpp).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <new>

#include "ember/process/stack_pool.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace ember::detail {

namespace {
// Guard pages installed with mprotect each split a mapping in three; keep
// far below vm.max_map_count (65530 by default).
constexpr std::size_t max_mprotect_guards = 16000;
constexpr std::size_t slab_bytes = std::size_t{64} << 20;  // 64 MiB of stacks per mapping
std::atomic<int> guard_mode{0};  // 0 unknown, 1 MADV_GUARD_INSTALL works, 2 it does not
}  // namespace

std::size_t read_page_size() noexcept {
  const auto p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  page_size_cache.store(p, std::memory_order_relaxed);
  return p;
}

std::size_t stack_pool::size_class(std::size_t usable) noexcept {
  std::size_t want = usable + page_size();
  return std::bit_ceil(want < 16384 ? std::size_t{16384} : want);
}

stack_pool::~stack_pool() {
  for (auto& [p, n] : slabs_) ::munmap(p, n);
}

void stack_pool::guard(stack& s) {
  int mode = guard_mode.load(std::memory_order_relaxed);
  if (mode != 2) {
    if (::madvise(s.base, page_size(), MADV_GUARD_INSTALL) == 0) {
      guard_mode.store(1, std::memory_order_relaxed);
      return;
    }
    guard_mode.store(2, std::memory_order_relaxed);
  }
  if (mprotect_guards_ < max_mprotect_guards && ::mprotect(s.base, page_size(), PROT_NONE) == 0)
    ++mprotect_guards_;
}

stack stack_pool::carve_locked(std::size_t cls, size_class_state& st) {
  if (st.bump == st.bump_end) {
    std::size_t bytes = cls >= slab_bytes ? cls : slab_bytes;
    void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    slabs_.emplace_back(static_cast<char*>(m), bytes);
    mapped_ += bytes;
    st.bump = static_cast<char*>(m);
    st.bump_end = st.bump + bytes;
  }
  stack s{st.bump, cls};
  st.bump += cls;
  ++carved_;
  guard(s);
  return s;
}

stack stack_pool::acquire(std::size_t cls) {
  std::lock_guard lk(mu_);
  auto& st = classes_[cls];
  if (!st.free.empty()) {
    stack s = st.free.back();
    st.free.pop_back();
    return s;
  }
  return carve_locked(cls, st);
}

void stack_pool::release(stack s) noexcept {
  std::lock_guard lk(mu_);
  classes_[s.size].free.push_back(s);
}

void stack_pool::acquire_batch(std::size_t cls, std::vector<stack>& out, std::size_t n) {
  std::lock_guard lk(mu_);
  auto& st = classes_[cls];
  while (n > 0 && !st.free.empty()) {
    out.push_back(st.free.back());
    st.free.pop_back();
    --n;
  }
  while (n-- > 0) out.push_back(carve_locked(cls, st));
}

void stack_pool::release_batch(std::vector<stack>& in, std::size_t n) noexcept {
  std::lock_guard lk(mu_);
  while (n-- > 0 && !in.empty()) {
    classes_[in.back().size].free.push_back(in.back());
    in.pop_back();
  }
}

std::size_t stack_pool::mapped_bytes() const {
  std::lock_guard lk(mu_);
  return mapped_;
}
std::size_t stack_pool::stacks_carved() const {
  std::lock_guard lk(mu_);
  return carved_;
}

stack_cache::~stack_cache() { pool_.release_batch(cache_, cache_.size()); }

}  // namespace ember::detail
