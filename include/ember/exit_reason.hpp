// ember/exit_reason.hpp — why a process ended.
//
// Threads: any thread (a value type).  Ownership: owns its text.
//
// Mirrors Erlang's exit reasons: `normal`, `shutdown` (optionally with a
// term, here a text), `kill` (the untrappable signal a process is sent),
// `killed` (what linked processes see after a kill), `noproc` (the process
// did not exist) and any other reason, written `error` here, with a text —
// an escaping exception becomes `error` with the exception's what().
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace ember {

class exit_reason {
public:
  enum class kind : unsigned char { normal, shutdown, kill, killed, noproc, error };

  exit_reason() noexcept = default;  // normal
  exit_reason(kind k, std::string text = {}) : kind_(k), text_(std::move(text)) {}

  static exit_reason normal() { return {}; }
  static exit_reason shutdown(std::string term = {}) { return {kind::shutdown, std::move(term)}; }
  static exit_reason kill() { return {kind::kill}; }
  static exit_reason killed() { return {kind::killed}; }
  static exit_reason noproc() { return {kind::noproc}; }
  static exit_reason error(std::string text) { return {kind::error, std::move(text)}; }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] bool is_normal() const noexcept { return kind_ == kind::normal; }

  friend bool operator==(const exit_reason& a, const exit_reason& b) {
    return a.kind_ == b.kind_ && a.text_ == b.text_;
  }

  /// Erlang-like spelling: normal, shutdown, {shutdown,T}, kill, killed,
  /// noproc, or the error text.
  [[nodiscard]] std::string to_string() const {
    switch (kind_) {
      case kind::normal: return "normal";
      case kind::shutdown: return text_.empty() ? "shutdown" : "{shutdown," + text_ + "}";
      case kind::kill: return "kill";
      case kind::killed: return "killed";
      case kind::noproc: return "noproc";
      case kind::error: break;
    }
    return text_;
  }
  friend std::ostream& operator<<(std::ostream& os, const exit_reason& r) {
    return os << r.to_string();
  }

private:
  kind kind_ = kind::normal;
  std::string text_;
};

}  // namespace ember

template <>
struct fmt::formatter<ember::exit_reason> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::exit_reason& r, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(r.to_string(), ctx);
  }
};
