// ember/process/fiber.hpp — the raw context switch a process runs on.
//
// A thin layer over Boost.Context's fcontext (make/jump), plus the
// annotations that let AddressSanitizer and ThreadSanitizer follow a switch
// between stacks.  No allocation; the stack comes from the stack pool.
//
// Threads: worker only.  A fiber is resumed by one worker at a time; it may
// be resumed by a different worker each time.
// Ownership: a fiber_context owns nothing; the stack belongs to the process.
#pragma once

#include <cstddef>

#include <boost/context/detail/fcontext.hpp>

#include "ember/base/config.hpp"

#if EMBER_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     std::size_t* size_old);
}
#endif
#if EMBER_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace ember::detail {

namespace bctx = boost::context::detail;
using fcontext = bctx::fcontext_t;
using transfer = bctx::transfer_t;

/// One side of a switch: where a context's stack lies, for the sanitizers.
struct switch_side {
  const void* stack_bottom = nullptr;  // lowest address
  std::size_t stack_size = 0;
#if EMBER_TSAN
  void* tsan_fiber = nullptr;
#endif
#if EMBER_ASAN
  void* fake_stack = nullptr;
#endif
};

/// Make a fresh context at the top of [bottom, bottom+size) entering fn.
inline fcontext make_context(void* bottom, std::size_t size, void (*fn)(transfer)) {
  return bctx::make_fcontext(static_cast<char*>(bottom) + size, size, fn);
}

/// Switch from `from` to the context `to` (whose stack is described by
/// `to_side`), passing `data`.  Returns what the side that resumes us passed.
/// `from_exiting` is true on a context's last switch (its stack is freed).
inline transfer switch_to(fcontext to, void* data, switch_side& from, const switch_side& to_side,
                          bool from_exiting = false) {
#if EMBER_ASAN
  __sanitizer_start_switch_fiber(from_exiting ? nullptr : &from.fake_stack, to_side.stack_bottom,
                                 to_side.stack_size);
#endif
#if EMBER_TSAN
  __tsan_switch_to_fiber(to_side.tsan_fiber, 0);
#endif
  (void)from;
  (void)to_side;
  (void)from_exiting;
  transfer t = bctx::jump_fcontext(to, data);
#if EMBER_ASAN
  __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
  return t;
}

/// First thing a fresh context runs (its entry function), for ASan.
inline void on_context_entry() {
#if EMBER_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace ember::detail
