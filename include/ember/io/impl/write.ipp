// ember/io/impl/write.ipp — the non-blocking attempt of io::write (compiled
// once, in src/io.cpp).
#pragma once

#include <sys/socket.h>

#include <cerrno>

#include "ember/io/write.hpp"

namespace ember::io::detail {

std::size_t send_now(int fd, const ::iovec* iov, int n, boost::system::error_code& ec) noexcept {
  ::msghdr msg{};
  msg.msg_iov = const_cast<::iovec*>(iov);
  msg.msg_iovlen = std::size_t(n);
  for (;;) {
    const ::ssize_t r = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) return std::size_t(r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    ec.assign(errno, boost::system::system_category());
    return 0;
  }
}

}  // namespace ember::io::detail
