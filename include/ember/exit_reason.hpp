// ember/exit_reason.hpp — why a process ended, or what an exit signal says.
//
// Threads: any thread (a value type; copies share one immutable payload).
// Ownership: holds its text and typed value through a shared, immutable,
// reference-counted payload, so copying a reason into many `down` and
// `exit_message`s costs one counter increment each.
//
// Mirrors Erlang's exit reasons: `normal`, `shutdown` (optionally with a
// term), `kill` (the untrappable signal exit(pid, kill) sends), `killed`
// (what a killed process exits with, and what its links see), `noproc` (the
// process did not exist) and any other reason, written `error` here: a text,
// a typed value, or both.  An exception escaping a process becomes `error`
// with the exception's what() and keeps the exception itself (thrown(),
// value<T>()).
//
//   exit(exit_reason::error(quota_exceeded{key, 2000}));   // typed user reason
//   if (auto* q = reason.value<quota_exceeded>()) ...       // read it back
#pragma once

#include <exception>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <fmt/format.h>

namespace ember {

namespace detail {
/// The shared payload of a non-trivial reason.
struct reason_data {
  std::string text;
  explicit reason_data(std::string t) : text(std::move(t)) {}
  virtual ~reason_data() = default;
  /// typeid of the typed value, or typeid(void) when there is none.
  [[nodiscard]] virtual const std::type_info& type() const noexcept { return typeid(void); }
  [[nodiscard]] virtual const void* get() const noexcept { return nullptr; }
  /// Equal typed values (same type, and operator== when the type has one).
  [[nodiscard]] virtual bool same_value(const reason_data& o) const noexcept {
    return o.type() == typeid(void);
  }
  /// The exception a crash threw, when the reason comes from one.
  [[nodiscard]] virtual std::exception_ptr thrown() const noexcept { return nullptr; }
};

/// A crash's reason: the text, and the thrown exception itself (so its
/// value can be read back).  Compares as a plain text reason.
struct thrown_reason_data final : reason_data {
  std::exception_ptr ex;
  thrown_reason_data(std::string t, std::exception_ptr x) : reason_data(std::move(t)), ex(std::move(x)) {}
  [[nodiscard]] std::exception_ptr thrown() const noexcept override { return ex; }
};

template <class T>
struct typed_reason_data final : reason_data {
  T value;
  typed_reason_data(std::string t, T v) : reason_data(std::move(t)), value(std::move(v)) {}
  [[nodiscard]] const std::type_info& type() const noexcept override { return typeid(T); }
  [[nodiscard]] const void* get() const noexcept override { return &value; }
  [[nodiscard]] bool same_value(const reason_data& o) const noexcept override {
    if (o.type() != typeid(T)) return false;
    if constexpr (std::equality_comparable<T>) return value == *static_cast<const T*>(o.get());
    else return this == &o;
  }
};

/// Text for a typed reason: fmt's rendering when T is formattable, else
/// T's (mangled) type name.
template <class T>
std::string reason_text(const T& v) {
  if constexpr (fmt::is_formattable<T>::value) return fmt::format("{}", v);
  else return typeid(T).name();
}
}  // namespace detail

class exit_reason {
public:
  enum class kind : unsigned char { normal, shutdown, kill, killed, noproc, error };

  exit_reason() noexcept = default;  // normal
  exit_reason(kind k, std::string text = {})
      : kind_(k), data_(text.empty() ? nullptr : std::make_shared<const detail::reason_data>(std::move(text))) {}

  static exit_reason normal() { return {}; }
  static exit_reason shutdown() { return {kind::shutdown}; }
  static exit_reason shutdown(std::string term) { return {kind::shutdown, std::move(term)}; }
  static exit_reason shutdown(const char* term) { return {kind::shutdown, std::string(term)}; }
  /// {shutdown, term} with a typed term.
  template <class T>
    requires(!std::is_convertible_v<T, std::string_view>)
  static exit_reason shutdown(T term) {
    return typed(kind::shutdown, std::move(term));
  }
  static exit_reason kill() { return {kind::kill}; }
  static exit_reason killed() { return {kind::killed}; }
  static exit_reason noproc() { return {kind::noproc}; }
  /// A user reason given as text.
  static exit_reason error(std::string text) { return {kind::error, std::move(text)}; }
  static exit_reason error(const char* text) { return {kind::error, std::string(text)}; }
  /// A user reason given as a typed value (read back with value<T>()).
  template <class T>
    requires(!std::is_convertible_v<T, std::string_view>)
  static exit_reason error(T value) {
    return typed(kind::error, std::move(value));
  }

  [[nodiscard]] kind what() const noexcept { return kind_; }
  [[nodiscard]] const std::string& text() const noexcept {
    static const std::string empty;
    return data_ ? data_->text : empty;
  }
  /// A crash: an exception escaped the process (or a handler).  The text
  /// is what() for a std::exception, else names the thrown type; the
  /// exception object is kept, so value<T>() finds the thrown T.
  static exit_reason thrown(std::exception_ptr ex, std::string text) {
    exit_reason r;
    r.kind_ = kind::error;
    r.data_ = std::make_shared<const detail::thrown_reason_data>(std::move(text), std::move(ex));
    return r;
  }

  /// The typed value, when the reason carries one of type T; else nullptr.
  /// For a crash (thrown()), the thrown object when it is a T (or derives
  /// from T), whatever its type: `reason.value<int>()` after `throw 42`.
  template <class T>
  [[nodiscard]] const T* value() const noexcept {
    if (!data_) return nullptr;
    if (data_->type() == typeid(T)) return static_cast<const T*>(data_->get());
    if (std::exception_ptr x = data_->thrown()) {
      try {
        std::rethrow_exception(x);
      } catch (const T& v) {
        return &v;  // the object x (and so data_) keeps alive
      } catch (...) {
      }
    }
    return nullptr;
  }
  /// The exception behind a crash reason (null for other reasons).
  [[nodiscard]] std::exception_ptr exception() const noexcept { return data_ ? data_->thrown() : nullptr; }
  [[nodiscard]] bool is_normal() const noexcept { return kind_ == kind::normal; }

  friend bool operator==(const exit_reason& a, const exit_reason& b) noexcept {
    if (a.kind_ != b.kind_) return false;
    if (a.data_ == b.data_) return true;
    if (a.text() != b.text()) return false;
    if (!a.data_ || !b.data_) return false;  // one is empty, the other has only empty text
    return a.data_->same_value(*b.data_);
  }

  /// Erlang-like spelling: normal, shutdown, {shutdown,T}, kill, killed,
  /// noproc, or the error's text.
  [[nodiscard]] std::string to_string() const {
    switch (kind_) {
      case kind::normal: return "normal";
      case kind::shutdown: return text().empty() ? "shutdown" : "{shutdown," + text() + "}";
      case kind::kill: return "kill";
      case kind::killed: return "killed";
      case kind::noproc: return "noproc";
      case kind::error: break;
    }
    return text();
  }
  friend std::ostream& operator<<(std::ostream& os, const exit_reason& r) {
    return os << r.to_string();
  }

private:
  template <class T>
  static exit_reason typed(kind k, T v) {
    exit_reason r;
    r.kind_ = k;
    std::string t = detail::reason_text(v);
    r.data_ = std::make_shared<const detail::typed_reason_data<T>>(std::move(t), std::move(v));
    return r;
  }

  kind kind_ = kind::normal;
  std::shared_ptr<const detail::reason_data> data_;
};

namespace detail {
/// Inside a catch block: the crash reason of the exception being handled
/// (exit_reason::thrown with what(), or a text naming the thrown type).
exit_reason reason_of_current_exception();
}  // namespace detail

}  // namespace ember

template <>
struct fmt::formatter<ember::exit_reason> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const ember::exit_reason& r, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(r.to_string(), ctx);
  }
};
