// ember/detail/name_table.hpp — the runtime's registered names.
//
// One map from name to pid under one mutex (names are looked up far more
// often than changed, and a name's holder is checked under its own lock).
// Lock order: the table's mutex, then a process's hooks_lock; an exiting
// process takes its name out of its signal state first and then calls
// released(), never holding both.
//
// Threads: any thread.  Ownership: owns copies of the names.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ember/pid.hpp"

namespace ember::detail {

class name_table {
public:
  /// Throws registration_error (taken name, named or dead process, empty name).
  void add(std::string_view name, ember::pid p);
  bool remove(std::string_view name);
  [[nodiscard]] std::optional<ember::pid> whereis(std::string_view name) const;
  /// whereis, or throws no_such_name (what send to a name does).
  [[nodiscard]] ember::pid resolve(std::string_view name) const;
  /// p, which held `name`, has exited.
  void released(const std::string& name, ember::pid p);

private:
  struct hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, ember::pid, hash, std::equal_to<>> map_;
};

}  // namespace ember::detail
