// tests/io/io_support.hpp — what the io layer's tests share: a runtime whose
// workers run the event loop, with the test's body in a process of it; the
// loopback address; waiting until a process waits.
#pragma once

#include <catch2/catch.hpp>

#include <boost/asio/ip/tcp.hpp>

#include "ember/io/io.hpp"
#include "support/support.hpp"

namespace ember_test {

/// 127.0.0.1 on `port` (0: any free one).
inline boost::asio::ip::tcp::endpoint loopback(unsigned short port = 0) {
  return {boost::asio::ip::address_v4::loopback(), port};
}

/// Spin (yielding) until p waits (in an operation, or a receive) or has
/// ended (in process context).
inline void until_waiting(ember::pid p) {
  for (;;) {
    auto info = ember::process_info(p);
    if (!info || info->status == ember::process_status::waiting) return;
    ember::yield();
  }
}

/// Run body(io) in a process of a runtime with `workers` workers that run
/// io's event loop; the process must end normally.
template <class F>
void with_io(unsigned workers, F body) {
  auto o = opts(workers);
  ember::io::context io(ember::io::on_workers, o);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor([&io, &body] { body(io); }).wait();
  INFO("exit reason: " << r);
  CHECK(r.is_normal());
}

}  // namespace ember_test
