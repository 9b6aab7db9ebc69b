// ember/impl/start_sync.ipp — settle_failed_start (detail/start_sync.hpp),
// compiled once, in src/ember.cpp.
#pragma once

#include <chrono>

#include "ember/detail/start_sync.hpp"
#include "ember/receive.hpp"
#include "ember/signal/link.hpp"
#include "ember/signal/monitor.hpp"

namespace ember::detail {

void settle_failed_start(const ember::pid& child, const monitor_ref& m, bool down_taken, bool linked) {
  if (!down_taken) ember::receive(ember::when([&m](const down& d) { return d.ref == m; }, [](down) {}));
  if (!linked) return;
  ember::unlink(child);
  // The link's exit signal, if the link was still there when the child
  // exited: it came before the `down`, so it is in the mailbox now.
  ember::receive(ember::when([&child](const exit_message& e) { return e.from == child; }, [](exit_message) {}),
                 ember::after(std::chrono::nanoseconds(0), [] {}));
}

}  // namespace ember::detail
