// ember/detail/timeout_arg.hpp — a timeout parameter that takes any
// std::chrono duration (integer or floating, any unit) and can never
// overflow: gen_server::call and stop, and the other waits that accept
// `infinity`, take one.
//
// Conversion from a duration only records the value, in long double
// nanoseconds; the function that takes the parameter checks it with its
// own name, so a bad value is reported where it was given:
//  - exactly -1 ms (gen_server::infinity) and +inf: no timeout;
//  - 0 up to max_timeout (2^62 ns, about 146 years): that timeout;
//  - longer than max_timeout: no timeout (documented saturation);
//  - any other negative value, and NaN: bad_argument naming the function
//    and the parameter, with the value.
//
// Threads: a plain value.  Ownership: none.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <ratio>
#include <string>
#include <type_traits>

#include <fmt/format.h>

#include "ember/base/config.hpp"
#include "ember/errors.hpp"

namespace ember::detail {

/// The longest finite timeout a wait takes (as max_receive_timeout).
inline constexpr std::int64_t max_timeout_ns = std::int64_t{1} << 62;

/// `what` = `value` as an error message shows it ("-5 ms", "nan ms").
inline std::string describe_ms(long double ns) {
  const long double ms = ns / 1e6L;
  if (std::isnan(ms)) return "NaN ms";
  if (ms == std::floor(ms) && std::fabs(ms) < 1e18L) return fmt::format("{} ms", static_cast<long long>(ms));
  return fmt::format("{} ms", static_cast<double>(ms));
}

class timeout_arg {
public:
  template <class Rep, class Period>
  timeout_arg(std::chrono::duration<Rep, Period> d) noexcept {  // NOLINT: any duration is a timeout
    using to_ns = std::ratio_divide<Period, std::nano>;
    if constexpr (std::is_integral_v<Rep> && to_ns::den == 1) {
      // The usual case (ms, s, ...): integer checks, no overflow.
      const long long c = static_cast<long long>(d.count());
      constexpr long long per = static_cast<long long>(to_ns::num);
      if (c >= 0) {
        ns_ = c > max_timeout_ns / per ? -1 : c * per;
      } else if (c == -1000000 / per && 1000000 % per == 0) {
        ns_ = -1;  // exactly -1 ms: infinity
      } else {
        bad_ = true;
        given_ = std::chrono::duration<long double, std::nano>(d).count();
      }
    } else {
      const long double v = std::chrono::duration<long double, std::nano>(d).count();
      if (v >= 0) {
        ns_ = v > static_cast<long double>(max_timeout_ns) ? -1 : static_cast<std::int64_t>(v);
      } else if (v == -1e6L) {
        ns_ = -1;  // exactly -1 ms: infinity
      } else {
        bad_ = true;  // negative, or NaN
        given_ = v;
      }
    }
  }

  /// The timeout in nanoseconds, or -1 for none; throws bad_argument
  /// ("ember::<fn>: <param> = <v>: ...") for a negative value other than
  /// -1 ms, or NaN.
  [[nodiscard]] std::int64_t ns(const char* fn, const char* param) const {
    if (EMBER_UNLIKELY(bad_)) throw_bad(fn, param);
    return ns_;
  }
  /// The value as given, for messages.
  [[nodiscard]] std::string describe() const {
    return bad_ ? describe_ms(given_) : ns_ < 0 ? std::string("infinity") : describe_ms(static_cast<long double>(ns_));
  }

private:
  [[noreturn]] void throw_bad(const char* fn, const char* param) const {
    throw bad_argument(fmt::format("ember::{}: {} = {}: must be >= 0 (or infinity)", fn, param, describe_ms(given_)));
  }

  std::int64_t ns_ = -1;
  bool bad_ = false;
  long double given_ = 0;  // as given (ns), when bad
};

}  // namespace ember::detail
