// ember/io/impl/context.ipp — the event loop's owners: threads of the
// context's own, or the runtime's workers (compiled once, in src/io.cpp).
#pragma once

#include <optional>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "ember/io/context.hpp"
#include "ember/scheduler/event_source.hpp"

namespace ember::io {

/// The io_context with a work guard (so a wait blocks even with nothing
/// pending), and the event source the workers drive.
class context::loop final : public ember::event_source {
public:
  explicit loop(int concurrency_hint) : io(concurrency_hint) { work.emplace(io.get_executor()); }

  std::size_t poll() override { return io.poll(); }
  std::size_t wait(std::chrono::nanoseconds timeout) override {
    const std::size_t n = timeout.count() < 0 ? io.run_one() : io.run_one_for(timeout);
    return n + io.poll();
  }
  void wake() override {
    boost::asio::post(io, [] {});
  }

  boost::asio::io_context io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
};

context::context(unsigned threads) : loop_(std::make_shared<loop>(int(threads < 1 ? 1 : threads))) {
  const unsigned n = threads < 1 ? 1 : threads;
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) threads_.emplace_back([l = loop_.get()] { l->io.run(); });
}

context::context(on_workers_t, runtime_options& o) : loop_(std::make_shared<loop>(BOOST_ASIO_CONCURRENCY_HINT_SAFE)) {
  o.events = loop_;
}

context::~context() {
  if (threads_.empty()) return;  // on workers: the runtime holds the loop as long as it needs it
  loop_->work.reset();
  loop_->io.stop();
  for (std::thread& t : threads_) t.join();
  // The io_context's destructor (with the last reference) then destroys
  // what is still queued: an operation a process waits for fails with
  // operation_aborted (use_process.hpp).
}

boost::asio::io_context& context::get() noexcept { return loop_->io; }

}  // namespace ember::io
