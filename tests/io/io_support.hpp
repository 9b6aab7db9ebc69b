// tests/io/io_support.hpp — what the io layer's tests share: a runtime whose
// workers run the event loop, with the test's body in a process of it.
#pragma once

#include <catch2/catch.hpp>

#include "ember/io/io.hpp"
#include "support/support.hpp"

namespace ember_test {

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
