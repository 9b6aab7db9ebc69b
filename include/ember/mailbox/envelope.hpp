// ember/mailbox/envelope.hpp — one message in flight: a small header and the
// moved-in C++ value, in one allocation.
//
// Threads: an envelope is built by the sender (any thread), published into
// the receiver's mailbox, and from then on touched only by the receiver.
// Ownership: the mailbox owns queued envelopes; receive takes the value out
// and destroys the envelope with free_envelope().
//
// Each envelope points at the static envelope_ops of its value's type: how
// to destroy it, its size (for process_info's accounting), its type_info
// (for reports naming an unexpected message), and whether it is
// an ordinary message (counted against a mailbox bound, and droppable) or a
// system message (exit signal, `down`, call reply, stop request: never
// dropped).  A type is a system message when system_message_v says so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ember/mailbox/envelope_pool.hpp"

namespace ember::detail {

/// A unique address per message type: the type tag receive matches on.
template <class T>
inline constexpr char type_tag_v = 0;
template <class T>
constexpr const void* type_tag() noexcept {
  return &type_tag_v<std::remove_cvref_t<T>>;
}

/// Types whose messages a mailbox bound never counts nor drops
/// (specialised next to each such type).
template <class T>
inline constexpr bool system_message_v = false;

struct envelope;
struct envelope_ops {
  void (*destroy)(envelope*) noexcept;
  std::uint32_t bytes;  // the whole envelope: header and value
  bool ordinary;        // !system_message_v of the value's type
  const std::type_info* type;  // the value's type, for reports
};

struct envelope {
  envelope* next = nullptr;               // mailbox link (see mailbox.hpp)
  const void* tag = nullptr;              // type_tag<T>() of the value
  const envelope_ops* ops = nullptr;
  std::uint64_t serial = 0;               // the incarnation it was sent to
};

inline void free_envelope(envelope* e) noexcept { e->ops->destroy(e); }

template <class T>
struct typed_envelope final : envelope {
  T value;
  template <class... A>
  explicit typed_envelope(A&&... a) : value(std::forward<A>(a)...) {}
  static void destroy_fn(envelope* e) noexcept { delete static_cast<typed_envelope*>(e); }
  // Ordinary alignment comes from the envelope pool; over-aligned values
  // fall back to the global allocator.
  static void* operator new(std::size_t n) {
    if constexpr (alignof(typed_envelope) <= alignof(std::max_align_t)) return envelope_alloc(n);
    else return ::operator new(n, std::align_val_t{alignof(typed_envelope)});
  }
  static void operator delete(void* p, std::size_t n) noexcept {
    if constexpr (alignof(typed_envelope) <= alignof(std::max_align_t)) envelope_free(p, n);
    else ::operator delete(p, std::align_val_t{alignof(typed_envelope)});
  }
};

template <class T>
inline constexpr envelope_ops envelope_ops_v{&typed_envelope<T>::destroy_fn, std::uint32_t(sizeof(typed_envelope<T>)),
                                             !system_message_v<T>, &typeid(T)};

template <class T, class... A>
envelope* make_envelope(std::uint64_t serial, A&&... a) {
  auto* e = new typed_envelope<T>(std::forward<A>(a)...);
  e->tag = type_tag<T>();
  e->ops = &envelope_ops_v<T>;
  e->serial = serial;
  return e;
}

template <class T>
T& payload(envelope* e) noexcept {
  return static_cast<typed_envelope<T>*>(e)->value;
}

/// A signal that only wakes its receiver so it looks at its pending flags.
struct wake_signal {};
template <>
inline constexpr bool system_message_v<wake_signal> = true;

}  // namespace ember::detail
