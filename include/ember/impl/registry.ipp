// ember/impl/registry.ipp — the non-template parts of ember::registry
// (compiled once, in src/ember.cpp): partition counts, liveness checks and
// the texts of its errors.
#pragma once

#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "ember/detail/signals.hpp"
#include "ember/errors.hpp"
#include "ember/process/process.hpp"
#include "ember/registry.hpp"

namespace ember::detail {

std::size_t registry_partitions(std::size_t requested) {
  if (requested > max_registry_partitions)
    throw bad_argument(fmt::format("ember::registry: {} partitions requested; at most {}", requested,
                                   max_registry_partitions));
  std::size_t n = requested;
  if (n == 0) {
    n = std::thread::hardware_concurrency();
    if (n == 0) n = 1;
    if (n > default_registry_partitions_cap) n = default_registry_partitions_cap;
  }
  std::size_t pow2 = 1;
  while (pow2 < n) pow2 <<= 1;
  return pow2;
}

bool registry_holder_alive(const ember::pid& p) noexcept {
  process* b = p.block();
  if (!b) return false;
  std::lock_guard<spin_lock> lk(b->hooks_lock);
  return alive_locked(b, p.serial());
}

registration_error registry_null_pid(const char* op, const std::string& key) {
  return registration_error(fmt::format("{}({}, <0.0.0>): the null pid is not a process", op, key));
}

registration_error registry_not_alive(const char* op, const std::string& key, const ember::pid& p) {
  return registration_error(fmt::format("{}({}, {}): the process is not alive", op, key, p));
}

registration_error registry_taken(const char* op, const std::string& key, const ember::pid& holder) {
  return registration_error(fmt::format("{}: the key {} is already registered to {}", op, key, holder));
}

}  // namespace ember::detail
