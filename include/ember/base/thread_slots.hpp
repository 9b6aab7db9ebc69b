// ember/base/thread_slots.hpp — the two thread-local slots the runtime keeps
// per thread: the carrier that runs on it (scheduler/carrier.hpp) and the
// process that carrier runs now; read afresh at every use.
//
// A process is a fiber: after any switch it may resume on another thread.
// A compiler may compute a thread-local's address once in a function and
// use it again after a call, so inside a process it could read the slot of
// the thread the process ran on before.  The readers here compute the
// address at each read, in one asm statement the compiler may neither merge
// with another nor move across a call (on x86-64 Linux: two instructions,
// inlined).  Elsewhere they are out-of-line calls, which has the same
// effect at the cost of the call.
//
// The slots themselves are defined once, in scheduler/impl/carrier.ipp,
// under the assembler names used below.
//
// Threads: any (each thread reads its own).  Ownership: n/a.
#pragma once

namespace ember::detail {

struct process;
class carrier;

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define EMBER_INLINE_THREAD_SLOTS 1
/// The process running on this thread, or nullptr (any thread).
inline process* this_process() noexcept {
  process* p;
  __asm__ volatile("movq ember_tl_process@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(p) : : "memory");
  return p;
}
/// The carrier of the calling thread, or nullptr (any thread).
inline carrier* this_carrier() noexcept {
  carrier* c;
  __asm__ volatile("movq ember_tl_carrier@gottpoff(%%rip), %0\n\tmovq %%fs:(%0), %0" : "=r"(c) : : "memory");
  return c;
}
#else
#define EMBER_INLINE_THREAD_SLOTS 0
/// The process running on this thread, or nullptr (any thread).
process* this_process() noexcept;
/// The carrier of the calling thread, or nullptr (any thread).
carrier* this_carrier() noexcept;
#endif

}  // namespace ember::detail
