// ember/io/detail/strand.hpp — a strand for one I/O object, in the form
// that costs least.
//
// Asio stores an executor in an any_io_executor inline only when it is
// small (24 bytes on 64-bit targets): a strand of the io_context's own
// executor is; a strand of an any_io_executor is not, and every copy Asio
// makes of it to track work (one per operation) is a heap allocation.  So
// when the executor given is the io_context's, the strand is made on that.
//
// Threads: any.  Ownership: the result shares the strand's state.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace ember::io::detail {

/// A strand of its own for an I/O object made on `ex`; `ex` itself when it
/// is a strand of an io_context already.
inline boost::asio::any_io_executor strand_for(const boost::asio::any_io_executor& ex) {
  namespace asio = boost::asio;
  if (const auto* t = ex.target<asio::io_context::executor_type>()) return asio::make_strand(*t);
  if (ex.target<asio::strand<asio::io_context::executor_type>>()) return ex;
  return asio::make_strand(ex);
}

}  // namespace ember::io::detail
