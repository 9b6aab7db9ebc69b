// ember/impl/proc_lib.ipp — the non-template parts of proc_lib's start
// handshake (compiled once, in src/ember.cpp).
#pragma once

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/start_sync.hpp"
#include "ember/proc_lib.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"

namespace ember::proc_lib {

void starter::init_ack() {
  if (answered_) throw bad_argument("ember::proc_lib::starter::init_ack: the start was already answered");
  answered_ = true;
  ember::send(parent_, detail::ack{ref_, true, {}});
}

void starter::init_fail(exit_reason r) {
  if (answered_) throw bad_argument("ember::proc_lib::starter::init_fail: the start was already answered");
  answered_ = true;
  ember::send(parent_, detail::ack{ref_, false, std::move(r)});
  // As a gen_server whose init fails: the process ends normally, so a
  // starter that does not trap exits is not killed by it.
  ember::exit(exit_reason::normal());
}

namespace detail {

std::uint64_t next_ref() { return ++ember::detail::current_or_throw("proc_lib::start")->call_seq; }

start_result await(const ember::pid& child, const monitor_ref& m, std::uint64_t ref, std::int64_t timeout_ns,
                   bool linked) {
  bool ok = false, down_taken = false, timed_out = false;
  std::optional<exit_reason> error;
  ember::receive(ember::when([ref](const ack& a) { return a.ref == ref; },
                             [&](ack a) {
                               ok = a.ok;
                               if (!ok) error = std::move(a.reason);
                             }),
                 ember::when([&m](const down& d) { return d.ref == m; },
                             [&](down d) {
                               down_taken = true;
                               error = std::move(d.reason);
                             }),
                 ember::after(timeout_ns < 0 ? ember::max_receive_timeout : std::chrono::nanoseconds(timeout_ns),
                              [&] { timed_out = true; }));
  if (ok) {
    ember::demonitor(m, ember::demonitor_option::flush);
    return {child, std::nullopt};
  }
  if (timed_out) {
    ember::exit(child, exit_reason::kill());
    error = exit_reason::error("timeout");
  }
  ember::detail::settle_failed_start(child, m, down_taken, linked);
  // An answer that came after the timeout.
  ember::receive(ember::when([ref](const ack& a) { return a.ref == ref; }, [](ack) {}),
                 ember::after(std::chrono::nanoseconds(0), [] {}));
  return {child, std::move(error)};
}

}  // namespace detail

}  // namespace ember::proc_lib
