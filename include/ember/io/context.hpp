// ember/io/context.hpp — where Asio's event loop runs for ember processes:
// an io_context and the threads that run it.
//
//   ember::io::context io;          // one I/O thread (declare it before the runtime)
//   ember::runtime rt;
//   rt.spawn([&] {
//     boost::asio::ip::tcp::socket s(io.get_executor());
//     s.async_connect(endpoint, ember::io::use_process);
//     ...
//   });
//
// Sockets, acceptors, timers and the like are made on get_executor() (or on
// get()); processes wait for their operations with ember::io::use_process
// (use_process.hpp).  A completion runs on one of the context's threads and
// wakes the waiting process (docs/decisions/0016: why dedicated threads for
// now).  With more than one thread, give each I/O object a strand
// (boost::asio::make_strand(io.get_executor())): an exit signal cancels an
// operation from the object's executor, which must not run two handlers of
// one object at once.
//
// Lifetime: the context must outlive every process that uses it — declare
// it before the runtime, so that the runtime stops (and its processes,
// killed, cancel their operations) before the threads go.  Destroying it
// with an operation still pending fails that operation with
// operation_aborted instead of leaving its process waiting for ever.
//
// Threads: construct and destroy on one thread; get/get_executor from any.
// Ownership: owns the io_context and its threads.
#pragma once

#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace ember::io {

class context {
public:
  using executor_type = boost::asio::io_context::executor_type;

  /// Start `threads` threads (at least 1) running the io_context.
  explicit context(unsigned threads = 1);
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  /// Stop the event loop, join the threads, then destroy what is still
  /// pending (failing the operations that processes wait for).
  ~context();

  [[nodiscard]] boost::asio::io_context& get() noexcept { return io_; }
  [[nodiscard]] executor_type get_executor() noexcept { return io_.get_executor(); }
  [[nodiscard]] unsigned thread_count() const noexcept { return unsigned(threads_.size()); }

private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<executor_type>> work_;
  std::vector<std::thread> threads_;
};

}  // namespace ember::io
