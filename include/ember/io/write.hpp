// ember/io/write.hpp — write to a stream socket from a process, suspending it
// only when the kernel cannot take the bytes now.
//
//   ember::io::write(sock, boost::asio::buffer(reply));      // throws on error
//   boost::system::error_code ec;
//   std::size_t n = ember::io::write(sock, buffers, ec);      // or an error code
//
// `boost::asio::async_write(sock, b, use_process)` always suspends the
// process, even when the kernel takes every byte at once (the usual case
// for a reply): Asio completes such an operation by posting its handler,
// so the process switches out and back in through the event loop.  This
// write first hands the kernel what it takes without waiting (one
// non-blocking sendmsg), and waits — as async_write with use_process —
// only for the rest.
//
// Contract (process context):
//  - Returns when every byte is written, with their number (as
//    asio::write).  An error is thrown as boost::system::system_error; the
//    error_code form sets it and returns the bytes written before it.
//  - While it waits, it is use_process (use_process.hpp): an exit signal
//    that ends the process cancels the write and ends the process; a
//    trapped one waits in the mailbox.
//  - Inside ember::blocking it is a plain blocking write (the process is
//    off the schedulers there).
//  - One write at a time per socket, as asio::async_write: no other write
//    may be outstanding on the socket.  Reads may be (a read in active
//    mode, another process's read).
//  - Misuse: outside a process, not_in_process (nothing is written).  Each
//    call spends one reduction.
//  - The first 16 buffers of the sequence go in the non-blocking attempt;
//    the rest, if any, go through the wait.
//
// Threads: the calling process's.  Ownership: the caller's buffers are
// read until it returns; nothing is kept.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <vector>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include "ember/detail/spend.hpp"
#include "ember/io/use_process.hpp"

namespace ember::io {

namespace detail {
/// One sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL) of iov[0..n): the bytes the
/// kernel took (0 when it takes none now: ec stays clear), or ec set.
std::size_t send_now(int fd, const ::iovec* iov, int n, boost::system::error_code& ec) noexcept;
}  // namespace detail

template <class Protocol, class Executor, class ConstBufferSequence>
std::size_t write(boost::asio::basic_stream_socket<Protocol, Executor>& s, const ConstBufferSequence& buffers,
                  boost::system::error_code& ec) {
  const ember::detail::process* self = ember::detail::enter_runtime("io::write");
  ec.clear();
  if (self->in_blocking) return boost::asio::write(s, buffers, ec);
  constexpr int max_iov = 16;
  std::array<::iovec, max_iov> iov;
  int n = 0;
  std::size_t total = 0;
  const auto end = boost::asio::buffer_sequence_end(buffers);
  auto it = boost::asio::buffer_sequence_begin(buffers);
  for (; it != end && n < max_iov; ++it) {
    const boost::asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    iov[std::size_t(n)] = ::iovec{const_cast<void*>(b.data()), b.size()};
    total += b.size();
    ++n;
  }
  const bool more = it != end;
  if (n == 0 && !more) return 0;
  if (!s.is_open()) {
    ec = boost::asio::error::bad_descriptor;
    return 0;
  }
  std::size_t done = n == 0 ? 0 : detail::send_now(s.native_handle(), iov.data(), n, ec);
  if (ec) return done;
  if (done == total && !more) return done;
  // The rest waits for room in the kernel's buffer.
  std::vector<boost::asio::const_buffer> rest;
  std::size_t skip = done;
  for (auto j = boost::asio::buffer_sequence_begin(buffers); j != end; ++j) {
    boost::asio::const_buffer b(*j);
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    b += skip;
    skip = 0;
    rest.push_back(b);
  }
  return done + boost::asio::async_write(s, rest, boost::asio::redirect_error(use_process, ec));
}

template <class Protocol, class Executor, class ConstBufferSequence>
std::size_t write(boost::asio::basic_stream_socket<Protocol, Executor>& s, const ConstBufferSequence& buffers) {
  boost::system::error_code ec;
  const std::size_t n = io::write(s, buffers, ec);
  if (ec) throw boost::system::system_error(ec, "ember::io::write");
  return n;
}

}  // namespace ember::io
