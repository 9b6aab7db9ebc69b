// ember::task against Elixir's Task rules (the cases of Elixir's own task
// tests): results, crash propagation through the link, await and yield
// timeouts, shutdown of running tasks, async_stream's concurrency, order
// and timeouts, and the task supervisor.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace task = ember::task;

namespace {
struct go {};
bool mailbox_empty() { return ember::process_info(ember::self())->message_queue_len == 0; }
}  // namespace

TEST_CASE("task: async runs fn in a process linked to and monitored by the caller — await returns its result",
          "[task]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    const ember::pid me = ember::self();
    auto h = task::async([me] {
      ember::send(me, ember::self());
      ember::receive([](go) {});
      return std::string("done");
    });
    REQUIRE(ember::receive<ember::pid>() == h.pid());
    auto info = ember::process_info(me);
    REQUIRE(info->links == std::vector<ember::pid>{h.pid()});
    REQUIRE(info->monitors == std::vector<ember::pid>{h.pid()});
    ember::send(h.pid(), go{});
    REQUIRE(task::await(h) == "done");
    REQUIRE(h.finished());
    REQUIRE(ember::process_info(me)->monitors.empty());
    // void functions give task::done; many tasks at once each get their own result.
    auto v = task::async([] {});
    task::await(v);
    std::vector<task::handle<int>> hs;
    for (int i = 0; i < 100; ++i) hs.push_back(task::async([i] { return i * i; }));
    for (int i = 99; i >= 0; --i) REQUIRE(task::await(hs[std::size_t(i)]) == i * i);
    REQUIRE(mailbox_empty());
  });
}

TEST_CASE("task: a task that crashes takes its caller down through the link — a trapping caller's await throws "
          "task_exited with the reason",
          "[task]") {
  in_process(2, [] {
    auto [caller, m] = ember::spawn_monitor([] {
      auto h = task::async([]() -> int { throw std::runtime_error("boom"); });
      (void)task::await(h);
    });
    REQUIRE(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::error("boom"));
    (void)caller, (void)m;

    ember::process_flag(ember::trap_exit, true);
    auto h = task::async([]() -> int { ember::exit(ember::exit_reason::error("unknown")); });
    try {
      (void)task::await(h);
      FAIL("no exception");
    } catch (const ember::task_exited& e) {
      REQUIRE(e.reason() == ember::exit_reason::error("unknown"));
    }
    // The link's exit_message is there for the trapping caller, as in Elixir.
    auto x = ember::receive([](ember::exit_message x) { return x; });
    REQUIRE(x.from == h.pid());
  });
}

TEST_CASE("task: await throws task_timeout when the result does not come in time — the task runs on", "[task]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto stage = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([stage] {
    auto h = task::async([] {
      ember::receive([](go) {});
      return 7;
    });
    try {
      (void)task::await(h, 50ms);
      FAIL("no timeout");
    } catch (const ember::task_timeout&) {
      stage->store(1);
    }
    REQUIRE(ember::process_info(h.pid()));  // still running
    ember::send(h.pid(), go{});
    REQUIRE(task::await(h) == 7);
    REQUIRE_THROWS_AS(task::await(h, -1ms), ember::bad_argument);     // -1 ms is infinity, but the result is taken
    REQUIRE_THROWS_AS(task::yield(h, -2ms), ember::bad_argument);     // negative
    stage->store(2);
  });
  clock->advance(49ms);
  REQUIRE(stage->load() == 0);
  clock->advance(1ms);
  REQUIRE(stage->load() == 2);
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("task: yield returns nullopt when the time runs out, then the result, or the task's exit", "[task]") {
  in_process(2, [] {
    auto h = task::async([] {
      ember::receive([](go) {});
      return 3;
    });
    REQUIRE_FALSE(task::yield(h, 0ms));
    REQUIRE_FALSE(task::yield(h, 1ms));
    ember::send(h.pid(), go{});
    auto r = task::yield(h, 5s);
    REQUIRE(r);
    REQUIRE(r->ok());
    REQUIRE(r->value() == 3);
    REQUIRE_THROWS_AS(task::yield(h, 0ms), ember::bad_argument);  // taken

    ember::process_flag(ember::trap_exit, true);
    auto c = task::async([]() -> int { throw std::logic_error("bad input"); });
    auto e = task::yield(c, 5s);
    REQUIRE(e);
    REQUIRE_FALSE(e->ok());
    REQUIRE(e->reason() == ember::exit_reason::error("bad input"));
    REQUIRE_THROWS_AS(e->value(), ember::bad_argument);
  });
}

TEST_CASE("task: shutdown stops a running task (nullopt), returns a result that came, an exit of another reason, "
          "and kills a task that does not stop in time",
          "[task]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto running = task::async([] {
      ember::receive([](go) {});
      return 1;
    });
    auto pid = running.pid();
    REQUIRE_FALSE(task::shutdown(running));
    REQUIRE_FALSE(ember::process_info(pid));
    REQUIRE(mailbox_empty());  // no exit_message, no down: the link was removed first

    auto finished = task::async([] { return 2; });
    while (ember::process_info(finished.pid())) ember::yield();  // it has sent its result and exited
    auto r = task::shutdown(finished);
    REQUIRE(r);
    REQUIRE(r->value() == 2);

    auto crashed = task::async([]() -> int { throw std::runtime_error("early"); });
    while (ember::process_info(crashed.pid())) ember::yield();
    auto c = task::shutdown(crashed);
    REQUIRE(c);
    REQUIRE(c->reason() == ember::exit_reason::error("early"));
    ember::receive([](ember::exit_message) {}, ember::after(0ms, [] {}));  // its link's, sent before the unlink

    auto brutal = task::async([] {
      ember::receive([](go) {});
      return 3;
    });
    REQUIRE_FALSE(task::shutdown(brutal, task::brutal_kill));
    REQUIRE(mailbox_empty());
  });
  // A task that traps exits ignores `shutdown`: it is killed when the time runs out.
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto stage = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([stage] {
    auto stubborn = task::async([] {
      ember::process_flag(ember::trap_exit, true);
      for (;;) ember::receive([](ember::exit_message) {});
      return 0;
    });
    ember::yield();
    REQUIRE_FALSE(task::shutdown(stubborn, 2s));
    stage->store(1);
  });
  clock->settle();
  clock->advance(1999ms);
  REQUIRE(stage->load() == 0);
  clock->advance(1ms);
  REQUIRE(stage->load() == 1);
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("task: only the owner awaits, once — ignore lets the task run on and drops its result", "[task]") {
  in_process(2, [] {
    auto h = task::async([] {
      ember::receive([](go) {});
      return 5;
    });
    auto other = ember::spawn_monitor([&h] {
      REQUIRE_THROWS_AS(task::await(h, 0ms), ember::bad_argument);  // not its task
    });
    REQUIRE(ember::receive([](ember::down d) { return d.reason; }).is_normal());
    (void)other;
    const ember::pid p = h.pid();
    REQUIRE_FALSE(task::ignore(h));
    REQUIRE(ember::process_info(ember::self())->links.empty());
    auto m = ember::monitor(p);
    ember::send(p, go{});
    REQUIRE(ember::receive([m](ember::down d) { return d.ref == m; }));
    REQUIRE(mailbox_empty());  // its result was dropped
    task::handle<int> empty;
    REQUIRE_THROWS_AS(task::await(empty), ember::bad_argument);
  });
}

TEST_CASE("task: async_stream runs at most max_concurrency tasks at once and gives the results in order", "[task]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto now = std::make_shared<std::atomic<int>>(0);
    auto peak = std::make_shared<std::atomic<int>>(0);
    std::vector<int> items(40);
    std::iota(items.begin(), items.end(), 0);
    auto results = task::async_stream(
        items,
        [now, peak](int i) {
          const int n = now->fetch_add(1) + 1;
          int seen = peak->load();
          while (n > seen && !peak->compare_exchange_weak(seen, n)) {
          }
          for (int k = 0; k < (i % 7) * 50; ++k) ember::yield();  // uneven work
          now->fetch_sub(1);
          return i * 2;
        },
        {.max_concurrency = 3});
    REQUIRE(results.size() == 40);
    for (int i = 0; i < 40; ++i) REQUIRE(results[std::size_t(i)].value() == i * 2);
    REQUIRE(peak->load() <= 3);
    REQUIRE(peak->load() >= 1);
    // Unordered: every result, as they come; a callback sees them one by one.
    std::multiset<int> got;
    task::async_stream(
        items, [](int i) { return i; }, {.max_concurrency = 8, .ordered = false},
        [&](task::result<int> r) { got.insert(r.value()); });
    REQUIRE(got == std::multiset<int>(items.begin(), items.end()));
    // Default concurrency: one per worker.
    REQUIRE(task::async_stream(std::vector<int>{}, [](int i) { return i; }).empty());
    REQUIRE(mailbox_empty());
  });
}

TEST_CASE("task: async_stream's timeout: kill_task gives that item an exit with reason timeout — exit kills every "
          "running task and throws task_timeout",
          "[task]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto stage = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([stage] {
    std::vector<int> items{0, 1, 2, 3};
    auto slow_odd = [](int i) {
      if (i % 2) ember::receive([](go) {});  // never comes
      return i;
    };
    auto rs = task::async_stream(items, slow_odd,
                                 {.max_concurrency = 4, .timeout = 100ms, .on_timeout = task::on_timeout::kill_task});
    REQUIRE(rs.size() == 4);
    REQUIRE(rs[0].value() == 0);
    REQUIRE(rs[1].reason() == ember::exit_reason::error("timeout"));
    REQUIRE(rs[2].value() == 2);
    REQUIRE(rs[3].reason() == ember::exit_reason::error("timeout"));
    stage->store(1);
    REQUIRE_THROWS_AS(task::async_stream(items, slow_odd, {.max_concurrency = 2, .timeout = 100ms}),
                      ember::task_timeout);
    REQUIRE(ember::process_info(ember::self())->links.empty());  // every task is gone
    REQUIRE(mailbox_empty());
    stage->store(2);
  });
  clock->settle();
  clock->advance(99ms);
  REQUIRE(stage->load() == 0);
  clock->advance(1ms);
  REQUIRE(stage->load() == 1);
  clock->advance(100ms);
  REQUIRE(stage->load() == 2);
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("task: a task supervisor runs fire-and-forget children, and async_nolink tasks whose crash does not "
          "touch the caller",
          "[task]") {
  in_process(2, [] {
    auto sup = task::start_supervisor();
    REQUIRE(sup);
    const ember::pid me = ember::self();
    auto c = task::start_child(sup.server(), [me] { ember::send(me, 11); });
    REQUIRE(c);
    REQUIRE(ember::receive<int>() == 11);

    auto ok = task::async_nolink(sup.server(), [] { return std::string("fine"); });
    REQUIRE(ember::process_info(me)->links.empty() == false);  // the supervisor's link only
    REQUIRE(task::await(ok) == "fine");

    // A crash: not linked, so the caller lives; yield gives the exit.
    auto bad = task::async_nolink(sup.server(), []() -> int { throw std::runtime_error("crashed"); });
    auto r = task::yield(bad, 5s);
    REQUIRE(r);
    REQUIRE(r->reason() == ember::exit_reason::error("crashed"));
    auto bad2 = task::async_nolink(sup.server(), []() -> int { throw std::runtime_error("again"); });
    REQUIRE_THROWS_AS(task::await(bad2), ember::task_exited);

    // Supervised and linked: Task.Supervisor.async.
    auto linked = task::async(sup.server(), [] { return 4; });
    REQUIRE(linked.linked());
    REQUIRE(task::await(linked) == 4);

    // Shutting the supervisor down stops its running tasks.
    auto waiting = task::async_nolink(sup.server(), [] {
      ember::receive([](go) {});
      return 0;
    });
    ember::unlink(sup.pid());  // (its exit would end us: we do not trap exits)
    ember::gen_server::stop(sup.server(), ember::exit_reason::shutdown());
    auto w = task::yield(waiting, 5s);
    REQUIRE(w);
    REQUIRE(w->reason() == ember::exit_reason::shutdown());

    auto small = task::start_supervisor({.max_children = 1});
    auto first = task::async_nolink(small.server(), [] {
      ember::receive([](go) {});
      return 0;
    });
    REQUIRE_THROWS_AS(task::async_nolink(small.server(), [] { return 1; }), ember::error);
    REQUIRE(task::start_child(small.server(), [] {}).error() == ember::supervisor::child_error::max_children);
    REQUIRE_FALSE(task::shutdown(first));
  });
}
