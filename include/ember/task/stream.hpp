// ember/task/stream.hpp — Elixir's Task.async_stream: run fn over a range
// of items, at most max_concurrency tasks at a time, and collect each
// result in order (or as they come).
//
//   auto pages = ember::task::async_stream(urls, [](const std::string& u) { return fetch(u); },
//                                          {.max_concurrency = 8});
//   for (auto& r : pages) if (r) use(r.value());             // task::result<page>
//
// Rules (Elixir's; tests in tests/behaviour/task_test.cpp):
//  - each item is copied into its own task, linked to and monitored by the
//    caller (a crashing task takes the caller down, unless it traps exits:
//    then that item's result is the task's exit);
//  - at most max_concurrency tasks run at once (0: one per worker thread,
//    Elixir's System.schedulers_online); the next starts as one finishes;
//  - ordered (default): results in the items' order; otherwise as they
//    finish;
//  - each task has `timeout` (default 5000 ms, infinity allowed) from its
//    start: then on_timeout::exit (default) kills every running task and
//    throws task_timeout; on_timeout::kill_task kills that task and its
//    result is an exit with reason `timeout`;
//  - the callback form hands each result to `each` as soon as it is due
//    and returns when every item is done.
//
// Threads: process context.  Ownership: items are copied into the tasks;
// results are moved to the caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "ember/detail/runtime_core.hpp"
#include "ember/detail/timeout_arg.hpp"
#include "ember/task/async.hpp"

namespace ember::task {

/// What async_stream does when a task runs out of time.
enum class on_timeout : unsigned char {
  exit,       // kill every running task and throw task_timeout (Elixir's :exit)
  kill_task,  // kill that task; its result is an exit with reason `timeout`
};

struct stream_options {
  /// Tasks running at once; 0: one per worker thread of the runtime.
  std::size_t max_concurrency = 0;
  /// Results in the items' order (true) or as they finish.
  bool ordered = true;
  /// Each task's time from its start; infinity: none.
  std::chrono::milliseconds timeout = default_timeout;
  task::on_timeout on_timeout = task::on_timeout::exit;
};

namespace detail {
template <class Range>
using item_t = std::remove_cvref_t<decltype(*std::begin(std::declval<Range&>()))>;
template <class F, class Item>
using stream_value_t = std::conditional_t<std::is_void_v<std::invoke_result_t<F&, Item&>>, done,
                                          std::invoke_result_t<F&, Item&>>;
}  // namespace detail

/// Run fn(item) for every item, at most max_concurrency at a time, handing
/// each task's result to each(result) — in the items' order if ordered.
template <class Range, class F, class Each>
void async_stream(Range&& items, F fn, const stream_options& o, Each&& each) {
  using Item = detail::item_t<Range>;
  using R = detail::stream_value_t<F, Item>;
  ember::detail::process* self = ember::detail::current_or_throw("task::async_stream");
  const std::int64_t timeout_ns = ember::detail::timeout_arg(o.timeout).ns("task::async_stream", "timeout");
  if (unsigned(o.on_timeout) > unsigned(on_timeout::kill_task))
    throw bad_argument("ember::task::async_stream: on_timeout is not a task::on_timeout");
  const std::size_t limit = o.max_concurrency != 0 ? o.max_concurrency : self->rt->worker_count();

  struct running {
    std::size_t index;
    handle<R> h;
    std::int64_t deadline;  // -1: none
  };
  std::map<std::uint64_t, running> live;            // by key
  std::map<std::size_t, result<R>> waiting;         // ordered: results not yet due
  std::size_t started = 0, next_due = 0;
  auto it = std::begin(items);
  const auto end = std::end(items);

  auto deliver = [&](std::size_t index, result<R> r) {
    if (!o.ordered) return (void)each(std::move(r));
    waiting.emplace(index, std::move(r));
    for (auto w = waiting.find(next_due); w != waiting.end(); w = waiting.find(next_due)) {
      each(std::move(w->second));
      waiting.erase(w);
      ++next_due;
    }
  };
  auto kill = [&](running& r) {
    ember::unlink(r.h.pid());
    r.h.unlinked();
    ember::exit(r.h.pid(), exit_reason::kill());
    ember::receive(ember::when([&](const ember::down& d) { return d.ref == r.h.ref(); }, [](ember::down) {}));
    detail::settle(r.h);
  };

  for (;;) {
    while (live.size() < limit && it != end) {
      Item item = *it;
      ++it;
      handle<R> h = task::async([fn, item = std::move(item)]() mutable { return detail::run<R>(fn, item); });
      const std::uint64_t key = h.key();
      const std::int64_t now = self->rt->now_ns();
      live.emplace(key, running{started++, std::move(h), timeout_ns < 0 ? -1 : now + timeout_ns});
    }
    if (live.empty()) break;
    std::int64_t first_deadline = -1;
    for (const auto& [k, r] : live)
      if (r.deadline >= 0 && (first_deadline < 0 || r.deadline < first_deadline)) first_deadline = r.deadline;
    std::optional<std::pair<std::uint64_t, result<R>>> got;
    auto on_reply = ember::when([&](const detail::reply<R>& m) { return live.count(m.key) != 0; },
                                [&](detail::reply<R> m) { got.emplace(m.key, result<R>::ok(std::move(m.value))); });
    auto on_down = ember::when(
        [&](const ember::down& d) { return live.count(detail::key_of(d.ref.id)) != 0; },
        [&](ember::down d) { got.emplace(detail::key_of(d.ref.id), result<R>::exit(std::move(d.reason))); });
    if (first_deadline < 0) {
      ember::receive(on_reply, on_down);
    } else {
      const std::int64_t wait = std::max<std::int64_t>(0, first_deadline - self->rt->now_ns());
      ember::receive(on_reply, on_down, ember::after(std::chrono::nanoseconds(wait), [] {}));
    }
    if (got) {
      auto node = live.extract(got->first);
      detail::settle(node.mapped().h);
      deliver(node.mapped().index, std::move(got->second));
      continue;
    }
    // A deadline passed.
    const std::int64_t now = self->rt->now_ns();
    for (auto l = live.begin(); l != live.end();) {
      if (l->second.deadline < 0 || l->second.deadline > now) {
        ++l;
        continue;
      }
      if (o.on_timeout == on_timeout::exit) {
        const std::size_t index = l->second.index;
        for (auto& [k, r] : live) kill(r);
        throw task_timeout(fmt::format("ember::task::async_stream: the task for item {} gave no result within {} ms",
                                       index, o.timeout.count()));
      }
      kill(l->second);
      const std::size_t index = l->second.index;
      l = live.erase(l);
      deliver(index, result<R>::exit(exit_reason::error("timeout")));
    }
  }
}

/// The same, collecting every result into a vector (in the items' order if
/// ordered).
template <class Range, class F>
auto async_stream(Range&& items, F fn, const stream_options& o = {}) {
  using R = detail::stream_value_t<F, detail::item_t<Range>>;
  std::vector<result<R>> out;
  async_stream(std::forward<Range>(items), std::move(fn), o, [&](result<R> r) { out.push_back(std::move(r)); });
  return out;
}

}  // namespace ember::task
