// ember/io/context.hpp — where Asio's event loop runs for ember processes:
// an io_context, run either by the runtime's own workers or by threads of
// its own.
//
//   ember::runtime_options o;
//   ember::io::context io(ember::io::on_workers, o);  // the workers run the event loop
//   ember::runtime rt(o);
//   rt.spawn([&] {
//     boost::asio::ip::tcp::socket s(io.get_executor());
//     s.async_connect(endpoint, ember::io::use_process);
//     ...
//   });
//
//   ember::io::context io2;        // or: one thread of its own (before the runtime)
//
// Sockets, acceptors, timers and the like are made on get_executor() (or on
// get()); processes wait for their operations with ember::io::use_process
// (use_process.hpp).
//
// Two ways to run the event loop (decision 0016 has the measurements):
//  - on_workers: the runtime made with the options drives it
//    (scheduler/event_source.hpp): its workers run ready completions
//    between slices and when they run out of work, and one idle worker
//    waits in the reactor instead of on its futex.  A completion runs on a
//    worker and makes its process runnable there: no thread hop.  Handlers
//    of your own posted to this context run on workers too: keep them
//    short, and do not let them throw (an exception escaping a handler
//    ends the program, as one escaping io_context::run() would end a
//    thread that does not catch it).
//  - threads (the default constructor): the context's own threads run it;
//    a completion wakes its process into the runtime from there.  Usable
//    with any number of runtimes, or none.
// An I/O object used by one process at a time needs no strand, however
// many threads run the loop: a cancellation (an exit signal, a timeout)
// never runs beside a step of the operation it cancels (use_process.hpp).
// One whose operations several processes start at once needs a strand
// (boost::asio::make_strand(io.get_executor())), as Asio's objects do for
// concurrent use anyway.
//
// Lifetime: with its own threads, the context must outlive every process
// that uses it — declare it before the runtime, so that the runtime stops
// (and its processes, killed, cancel their operations) before the threads
// go; destroying it with an operation still pending fails that operation
// with operation_aborted instead of leaving its process waiting for ever.
// On workers, the runtime shares the io_context, which lives until both are
// gone.
//
// Threads: construct and destroy on one thread; get/get_executor from any.
// Ownership: owns (or, on workers, shares with the runtime) the io_context.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "ember/options.hpp"

namespace ember::io {

/// Tag: the event loop runs on the runtime's workers.
struct on_workers_t {
  explicit on_workers_t() = default;
};
inline constexpr on_workers_t on_workers{};

class context {
public:
  using executor_type = boost::asio::io_context::executor_type;

  /// Start `threads` threads (at least 1) running the io_context.
  explicit context(unsigned threads = 1);
  /// The event loop runs on the workers of the runtime made with `o`
  /// (this sets o.events; a runtime_options may drive one context).
  context(on_workers_t, runtime_options& o);
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  /// Own threads: stop the event loop, join the threads, then destroy what
  /// is still pending (failing the operations that processes wait for).
  /// On workers: let go of the io_context (the runtime still holds it).
  ~context();

  [[nodiscard]] boost::asio::io_context& get() noexcept;
  [[nodiscard]] executor_type get_executor() noexcept { return get().get_executor(); }
  /// Threads of its own running the loop (0: on workers).
  [[nodiscard]] unsigned thread_count() const noexcept { return unsigned(threads_.size()); }

  class loop;  // the io_context, its work guard, and the workers' view of it (impl)

private:
  std::shared_ptr<loop> loop_;
  std::vector<std::thread> threads_;
};

}  // namespace ember::io
