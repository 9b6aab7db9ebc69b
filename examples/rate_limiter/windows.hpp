// examples/rate_limiter/windows.hpp — the rate limiter's window arithmetic:
// what a request is answered (decision), and the bucketed sliding windows
// that count a key's admitted requests per minute, hour and day in bounded
// memory.  Plain C++, no processes: each key server owns one key_windows.
//
// The rules (docs/examples/rate_limiter.md has them as a table):
//  - Time is in milliseconds on one monotonic clock (the runtime's manual
//    clock in tests).  A window of length L is cut into buckets of width w
//    (minute: 1 s, hour: 1 min, day: 15 min), aligned to the clock's zero;
//    a request made at time s falls in bucket floor(s / w).
//  - A window keeps L / w + 1 buckets: the current one and the L / w before
//    it.  So a request made at s counts until (floor(s / w) + L / w + 1) * w:
//    for more than L and at most L + w after it.  At the millisecond
//    s + L it still counts; the per-minute window of a request made at
//    10.000 s lets it go at 71.000 s, of one made at 10.999 s also at
//    71.000 s.
//  - Therefore no interval of length L (closed at both ends) ever holds
//    more admitted requests than the limit: the windows may refuse up to
//    one bucket's width early, never admit too many.  Memory is fixed: 61 +
//    61 + 97 counters per key, whatever the limits.
//  - Only admitted requests count.  A request is admitted when every window
//    has room (count < limit); then it counts in all three.  Otherwise it is
//    refused by the longest full window (day before hour before minute),
//    and retry_after is when every full window will have room again if no
//    other request is admitted meanwhile (nullopt with a limit of 0).
//  - A limit-hit *episode* of a window starts with a refusal by that window
//    when there was no refusal by it within one window length before; later
//    refusals by the same window within a window length of the previous one
//    belong to the same episode.  The key server writes one log line per
//    episode.
//
// Threads: none; a key_windows belongs to one key server (owner only) and
// travels by value (moved into messages) when the server parks it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace rate_limiter {

using std::chrono::milliseconds;

/// The three windows a contract limits.
enum class window { minute, hour, day };

/// "minute", "hour", "day".
inline std::string_view name_of(window w) noexcept {
  switch (w) {
    case window::minute: return "minute";
    case window::hour: return "hour";
    case window::day: return "day";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& os, window w) { return os << name_of(w); }

/// A customer's contract limits: at most this many requests per window.
struct limits {
  std::uint32_t per_minute = 0;
  std::uint32_t per_hour = 0;
  std::uint32_t per_day = 0;

  [[nodiscard]] std::uint32_t of(window w) const noexcept {
    switch (w) {
      case window::minute: return per_minute;
      case window::hour: return per_hour;
      case window::day: return per_day;
    }
    return 0;
  }
  friend bool operator==(const limits&, const limits&) = default;
};

/// A window's length and the width of its buckets (the length is a whole
/// number of buckets).
struct window_shape {
  milliseconds length;
  milliseconds bucket;
  /// Buckets kept: the current one plus length / bucket before it.
  [[nodiscard]] constexpr std::size_t slots() const noexcept { return std::size_t(length / bucket) + 1; }
};

inline constexpr window_shape shape_of(window w) noexcept {
  using namespace std::chrono_literals;
  switch (w) {
    case window::minute: return {60s, 1s};
    case window::hour: return {60min, 1min};
    case window::day: return {24h, 15min};
  }
  return {60s, 1s};
}

// ---- decision ---------------------------------------------------------------

/// What a request is told.
enum class outcome {
  admitted,     // go ahead: forward it upstream (it now counts in every window)
  refused,      // a contract limit is reached: `hit`, `count`, `limit`, `retry_after` say which
  overloaded,   // the key's server is too busy to decide; refused at once, not counted (load shedding)
  unknown_key,  // no contract for this API key
  unavailable,  // the limiter could not decide (contract lookup failed, too many keys): the caller's policy decides
};

inline std::string_view name_of(outcome o) noexcept {
  switch (o) {
    case outcome::admitted: return "admitted";
    case outcome::refused: return "refused";
    case outcome::overloaded: return "overloaded";
    case outcome::unknown_key: return "unknown_key";
    case outcome::unavailable: return "unavailable";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& os, outcome o) { return os << name_of(o); }

/// The answer to one request.
struct decision {
  outcome result = outcome::unavailable;
  window hit = window::minute;  // refused: the window that refused it
  std::uint32_t count = 0;      // refused: admitted requests counted in that window
  std::uint32_t limit = 0;      // refused: that window's limit
  /// refused: how long until every full window has room again (if nothing
  /// else is admitted meanwhile); nullopt: never under this contract (a
  /// limit of 0).
  std::optional<milliseconds> retry_after;

  [[nodiscard]] bool admitted() const noexcept { return result == outcome::admitted; }

  static decision admit() { return of(outcome::admitted); }
  static decision refuse(window w, std::uint32_t count, std::uint32_t limit, std::optional<milliseconds> retry) {
    return {outcome::refused, w, count, limit, retry};
  }
  static decision overloaded() { return of(outcome::overloaded); }
  static decision unknown_key() { return of(outcome::unknown_key); }
  static decision unavailable() { return of(outcome::unavailable); }

  friend bool operator==(const decision&, const decision&) = default;

private:
  static decision of(outcome o) {
    decision d;
    d.result = o;
    return d;
  }
};

/// "admitted", "refused by the per-minute limit (60 in the last minute;
/// retry in 41000 ms)", ...
inline std::string to_string(const decision& d) {
  if (d.result != outcome::refused) return std::string(name_of(d.result));
  return fmt::format("refused by the per-{} limit ({} of {} in the last {}; {})", name_of(d.hit), d.count, d.limit,
                     name_of(d.hit),
                     d.retry_after ? fmt::format("retry in {} ms", d.retry_after->count())
                                   : std::string("no retry under this contract"));
}

inline std::ostream& operator<<(std::ostream& os, const decision& d) { return os << to_string(d); }

// ---- one window ---------------------------------------------------------------

/// Admitted requests in one bucketed sliding window.  Times must not go
/// backwards (an earlier time is taken as the latest one seen).
class sliding_window {
public:
  explicit sliding_window(window_shape shape) : shape_(shape), counts_(shape.slots(), 0) {}

  /// Admitted requests that count at `now`.
  [[nodiscard]] std::uint64_t count(milliseconds now) {
    roll(now);
    return total_;
  }

  /// Count one admitted request at `now`.
  void add(milliseconds now) {
    roll(now);
    ++counts_[slot_of(newest_)];
    ++total_;
  }

  /// The earliest time (>= now) at which fewer than `limit` requests count,
  /// if nothing more is admitted; nullopt when that never happens (limit 0).
  [[nodiscard]] std::optional<milliseconds> room_at(milliseconds now, std::uint64_t limit) {
    roll(now);
    if (total_ < limit) return now;
    if (limit == 0) return std::nullopt;
    std::uint64_t left = total_;
    for (std::int64_t b = oldest(); b <= newest_; ++b) {
      left -= counts_[slot_of(b)];
      if (left < limit) return release_time(b);
    }
    return release_time(newest_);  // not reached: left reaches 0 < limit
  }

  /// The time from which nothing counts any more (now when nothing does).
  [[nodiscard]] milliseconds empty_at(milliseconds now) {
    roll(now);
    for (std::int64_t b = newest_; b >= oldest(); --b)
      if (counts_[slot_of(b)] != 0) return release_time(b);
    return now;
  }

  [[nodiscard]] const window_shape& shape() const noexcept { return shape_; }

private:
  [[nodiscard]] std::int64_t bucket_of(milliseconds t) const noexcept {
    const std::int64_t w = shape_.bucket.count();
    const std::int64_t ms = t.count();
    return ms >= 0 ? ms / w : -((-ms + w - 1) / w);  // floor division
  }
  [[nodiscard]] std::size_t slot_of(std::int64_t b) const noexcept {
    const auto n = std::int64_t(counts_.size());
    return std::size_t(((b % n) + n) % n);
  }
  [[nodiscard]] std::int64_t oldest() const noexcept { return newest_ - std::int64_t(counts_.size()) + 1; }
  /// When a request in bucket b stops counting.
  [[nodiscard]] milliseconds release_time(std::int64_t b) const noexcept {
    return shape_.bucket * (b + std::int64_t(counts_.size()));
  }

  /// Make newest_ the bucket of `now`, emptying the buckets that fell out.
  void roll(milliseconds now) {
    const std::int64_t b = bucket_of(now);
    if (!started_) {
      newest_ = b;
      started_ = true;
      return;
    }
    if (b <= newest_) return;
    if (b - newest_ >= std::int64_t(counts_.size())) {
      std::fill(counts_.begin(), counts_.end(), 0u);
      total_ = 0;
    } else {
      for (std::int64_t x = newest_ + 1; x <= b; ++x) {
        std::uint32_t& c = counts_[slot_of(x)];  // the slot bucket x - slots() held
        total_ -= c;
        c = 0;
      }
    }
    newest_ = b;
  }

  window_shape shape_;
  std::vector<std::uint32_t> counts_;  // bucket b's count is in slot b mod size
  std::int64_t newest_ = 0;            // the bucket of the latest time seen
  std::uint64_t total_ = 0;            // the sum of counts_
  bool started_ = false;
};

// ---- a key's three windows ------------------------------------------------------

/// A key's three windows and its limit-hit episodes.
class key_windows {
public:
  key_windows()
      : windows_{sliding_window(shape_of(window::minute)), sliding_window(shape_of(window::hour)),
                 sliding_window(shape_of(window::day))} {}

  /// Admit a request at `now` under `l` (it then counts in every window), or
  /// refuse it by the longest full window.
  decision admit(milliseconds now, const limits& l) {
    std::optional<window> refusing;
    std::uint64_t count = 0;
    milliseconds room = now;
    bool room_ever = true;
    for (window w : {window::day, window::hour, window::minute}) {
      sliding_window& sw = of(w);
      const std::uint64_t c = sw.count(now);
      if (c < l.of(w)) continue;
      if (!refusing) {
        refusing = w;
        count = c;
      }
      if (auto t = sw.room_at(now, l.of(w))) room = std::max(room, *t);
      else room_ever = false;
    }
    if (refusing) {
      return decision::refuse(*refusing, std::uint32_t(std::min<std::uint64_t>(count, UINT32_MAX)), l.of(*refusing),
                              room_ever ? std::optional<milliseconds>(room - now) : std::nullopt);
    }
    for (sliding_window& sw : windows_) sw.add(now);
    return decision::admit();
  }

  /// A refusal by `w` at `now` happened: true when it starts an episode
  /// (no refusal by w within one window length before it).
  bool note_refusal(window w, milliseconds now) {
    std::optional<milliseconds>& last = last_refusal_[std::size_t(w)];
    const bool starts = !last || now - *last >= shape_of(w).length;
    last = now;
    return starts;
  }

  /// The time from which no window counts anything: from then on these
  /// windows are the same as fresh ones (bar episode memory).
  [[nodiscard]] milliseconds empty_at(milliseconds now) {
    milliseconds t = now;
    for (sliding_window& sw : windows_) t = std::max(t, sw.empty_at(now));
    return t;
  }

private:
  sliding_window& of(window w) noexcept { return windows_[std::size_t(w)]; }

  std::array<sliding_window, 3> windows_;                  // by window
  std::array<std::optional<milliseconds>, 3> last_refusal_;  // by window
};

}  // namespace rate_limiter

template <>
struct fmt::formatter<rate_limiter::window> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(rate_limiter::window w, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(rate_limiter::name_of(w), ctx);
  }
};
