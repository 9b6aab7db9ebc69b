// ember/io/impl/context.ipp — the I/O threads (compiled once, in src/io.cpp).
#pragma once

#include "ember/io/context.hpp"

namespace ember::io {

context::context(unsigned threads) : io_(int(threads < 1 ? 1 : threads)) {
  work_.emplace(io_.get_executor());
  const unsigned n = threads < 1 ? 1 : threads;
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
}

context::~context() {
  work_.reset();
  io_.stop();
  for (std::thread& t : threads_) t.join();
  // io_'s destructor then destroys what is still queued: an operation a
  // process waits for fails with operation_aborted (use_process.hpp).
}

}  // namespace ember::io
