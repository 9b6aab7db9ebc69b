// ember/io/impl/use_process.ipp — the token's cold paths (compiled once, in
// src/io.cpp).
#pragma once

#include <memory>

#include <boost/asio/detail/call_stack.hpp>
#include <boost/asio/detail/thread_context.hpp>
#include <boost/asio/detail/thread_info_base.hpp>

#include "ember/io/use_process.hpp"

namespace ember::io::detail {

namespace {
namespace ad = boost::asio::detail;

// A key of our own on Asio's per-thread call stack: Asio looks for its
// schedulers' keys there (to know whether a thread runs their loop), never
// finds this one, and takes the top entry's cache for its recycling
// allocations — cancellation handlers above all, which processes make and
// free outside the loop.  (Asio's internals, as of Boost 1.81; without the
// entry those allocations go to the heap, which is only slower.)
struct cache_key : ad::thread_context {};
cache_key key;

struct thread_cache {
  ad::thread_info_base info;
  ad::call_stack<ad::thread_context, ad::thread_info_base>::context entry{&key, info};  // popped first
};
thread_local std::unique_ptr<thread_cache> this_thread_cache;
}  // namespace

op_base*& current_step() noexcept {
  __attribute__((tls_model("initial-exec"))) thread_local op_base* current = nullptr;
  return current;
}

void enter_asio_thread() {
  // Only with nothing on the stack: a thread inside an io_context's loop
  // has that loop's cache (and its frame pops before ours would).
  if (this_thread_cache || ad::thread_context::top_of_thread_call_stack() != nullptr) return;
  try {
    this_thread_cache = std::make_unique<thread_cache>();
  } catch (...) {
    // No memory: Asio allocates from the heap, as without the cache.
  }
}

void throw_timed_out() {
  throw boost::system::system_error(boost::asio::error::timed_out, "ember::io::use_process: the operation timed out");
}

void throw_interrupted() {
  throw boost::system::system_error(boost::asio::error::interrupted,
                                    "ember::io::use_process: an exit signal (trapped) interrupted the operation");
}

void throw_abandoned() {
  throw boost::system::system_error(boost::asio::error::operation_aborted,
                                    "ember::io::use_process: the I/O context was destroyed with the operation pending");
}

void throw_in_blocking() {
  throw ember::error(
      "ember::io::use_process would wait inside ember::blocking (the process runs off the schedulers there); "
      "start the operation before or after the blocking section");
}

}  // namespace ember::io::detail
