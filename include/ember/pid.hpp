// ember/pid.hpp — a process identifier: small, comparable, hashable, printable.
//
// Threads: any thread (a pid is a plain value).
// Ownership: a pid owns nothing.  It names one incarnation of a process
// control block; control blocks are type-stable (never returned to the
// system while their runtime lives) and carry the serial of the process that
// occupies them, so a stale pid is recognised and can never reach a newer
// process.  Using a pid after its runtime was destroyed is undefined.
//
// Printed with fmt (and operator<<) as <0.N.0>, N being the process serial,
// unique for the life of the runtime.  The null pid prints as <0.0.0>.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>

#include <fmt/format.h>

namespace ember {

namespace detail {
struct process;
}

class pid {
public:
  constexpr pid() noexcept = default;
  constexpr pid(detail::process* block, std::uint64_t serial) noexcept
      : block_(block), serial_(serial) {}

  /// The process serial: unique per runtime, never reused.  0 for the null pid.
  [[nodiscard]] constexpr std::uint64_t serial() const noexcept { return serial_; }
  [[nodiscard]] constexpr bool is_null() const noexcept { return serial_ == 0; }
  constexpr explicit operator bool() const noexcept { return serial_ != 0; }

  /// The control block this pid names (internal; may belong to a newer
  /// process if this pid is stale — always compare serials).
  [[nodiscard]] constexpr detail::process* block() const noexcept { return block_; }

  friend constexpr bool operator==(const pid& a, const pid& b) noexcept {
    return a.serial_ == b.serial_;
  }
  friend constexpr auto operator<=>(const pid& a, const pid& b) noexcept {
    return a.serial_ <=> b.serial_;
  }
  friend std::ostream& operator<<(std::ostream& os, const pid& p) {
    return os << "<0." << p.serial_ << ".0>";
  }

private:
  detail::process* block_ = nullptr;
  std::uint64_t serial_ = 0;
};

}  // namespace ember

template <>
struct std::hash<ember::pid> {
  std::size_t operator()(const ember::pid& p) const noexcept {
    return std::hash<std::uint64_t>{}(p.serial());
  }
};

template <>
struct fmt::formatter<ember::pid> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::pid& p, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "<0.{}.0>", p.serial());
  }
};
