// ember/dynamic_supervisor.hpp — Elixir's DynamicSupervisor: a supervisor
// that starts with no children and takes them one at a time, on demand.
//
//   namespace dyn = ember::dynamic_supervisor;
//   auto d = dyn::start_link({.max_children = 10000});
//   auto c = dyn::start_child<limiter>(d.server(), key, quota);   // gen_server S(key, quota)
//   if (!c) ... c.error() ... c.message() ...                     // e.g. max_children
//   dyn::terminate_child(d.server(), c.pid());
//
// Rules (the table in docs/behaviours.md has them all):
//  - Children are anonymous: which_children lists them in start order and
//    terminate_child takes a pid (a running child's, or the pid a child
//    waiting to restart exited with: that cancels its restart).  Each child restarts alone (one_for_one)
//    by its restart type, with its backoff if it has one; a restarted child
//    keeps its place and spec.
//  - start_child beyond max_children is refused with child_error::
//    max_children (the child counts while it runs or waits to restart).  A
//    start that returns ignore adds nothing (the result is true with a null
//    pid); one that fails adds nothing (start_failed with the reason).
//  - A child that is not restarted (temporary; transient after a clean
//    exit; a restart that returns ignore) is removed.
//  - More than `intensity` restarts within `period` (defaults 3 in 5 s, as
//    Elixir's DynamicSupervisor) stop the supervisor with `shutdown`.
//  - On shutdown every child is sent `shutdown` at once (each then gets its
//    own shutdown time before it is killed), unlike a static supervisor,
//    which stops its children one by one in reverse order.
//  - As the static supervisor: exit signals are handled ahead of queued
//    calls, a start function's exit or wrong pid fails the start, a taken
//    name answers already_started with the holder; child<S>(args...) is
//    S's spec with S's child_defaults.  No auto_shutdown: significant
//    children are refused (spec_error).
//  - Reports as the static supervisor's (supervisor.hpp).
//
// Threads: process context (gen_server calls to the supervisor).
// Ownership: the supervisor process owns its children's specs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/gen_server.hpp"
#include "ember/supervisor.hpp"

namespace ember::dynamic_supervisor {

using supervisor::child_counts;
using supervisor::child_error;
using supervisor::child_info;
using supervisor::child_result;
using supervisor::child_spec;
using supervisor::started;

/// No limit on children.
inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

struct flags {
  /// More than `intensity` restarts within `period` stop the supervisor.
  int intensity = 3;
  std::chrono::milliseconds period{5000};
  std::size_t max_children = unlimited;
};

namespace detail {
class server;
}  // namespace detail

/// A dynamic supervisor, by pid or name.
using ref = gen_server::server<detail::server>;
using start_result = gen_server::start_result<detail::server>;

/// Start a dynamic supervisor (no children) linked to the caller.  Throws
/// bad_argument for negative intensity or a period ≤ 0.
start_result start_link(flags f = {});
start_result start_link(gen_server::name n, flags f = {});
start_result start_link(ember::via_name n, flags f = {});
/// The same, not linked.
start_result start(flags f = {});
start_result start(gen_server::name n, flags f = {});
start_result start(ember::via_name n, flags f = {});

/// Start a child from its spec (the id is not used and may be empty).
child_result start_child(const ref& sup, child_spec spec);
/// The spec of a gen_server child S(args...): permanent, shutdown 5000 ms,
/// unless S declares its own child_defaults (child_spec.hpp).  Change its
/// fields before start_child if need be.
template <class S, class... A>
child_spec child(A&&... args) {
  return supervisor::worker<S>(std::string(), std::forward<A>(args)...);
}
/// Start a gen_server child S(args...) with child<S>(args...)'s spec.
template <class S, class... A>
child_result start_child(const ref& sup, A&&... args) {
  return start_child(sup, child<S>(std::forward<A>(args)...));
}
/// Stop child p and forget it; not_found if p is not a running child.
child_result terminate_child(const ref& sup, ember::pid p);
/// Every child, in start order (ids as given in the specs).
std::vector<child_info> which_children(const ref& sup);
child_counts count_children(const ref& sup);

}  // namespace ember::dynamic_supervisor
