// process_info and processes (erlang:process_info/1, processes/0): what a
// snapshot reports for a live process (status, queue length, name, links,
// monitors, trap_exit, memory, reductions, initial call), nullopt for a pid
// that is not alive, use from outside any process, and the live-process list.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "support/support.hpp"

using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;

namespace {
struct go {};
struct stop {};
struct ready {};
struct ping {
  ember::pid from;
};
struct pong {};

/// Answers pings until stopped; ignores (keeps) everything else.
void echo() {
  for (;;) {
    bool more = ember::receive([](ping p) {
      ember::send(p.from, pong{});
      return true;
    },
                               [](stop) { return false; });
    if (!more) return;
  }
}

/// A process entry with a name process_info can report.
struct started {};
struct named_entry {
  ember::pid tell;  // told `started` once it runs (and so holds its stack), if not null
  void operator()() const {
    if (!tell.is_null()) ember::send(tell, started{});
    ember::receive([](stop) {});
  }
};

/// Round trip to an echo: every message sent to p before this call has been
/// taken into p's mailbox by the time it returns.
void sync_with(ember::pid p) {
  ember::send(p, ping{ember::self()});
  ember::receive([](pong) {});
}

/// p's snapshot once p is parked in receive.  p must have nothing left to do
/// but wait (so it gets there on its own); the caller yields the worker to it
/// meanwhile.  Fails if p exits.
ember::process_snapshot when_waiting(ember::pid p) {
  for (long i = 0; i < 1000000; ++i) {
    auto s = ember::process_info(p);
    REQUIRE(s);
    if (s->status == ember::process_status::waiting) return *s;
    ember::yield();
  }
  FAIL("process " << p << " never parked in receive");
  return {};
}

/// Stop p (an echo or named_entry) and wait until it has exited.
void stop_and_wait(ember::pid p) {
  auto ref = ember::monitor(p);
  ember::send(p, stop{});
  ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; }, [](ember::down) {}));
}

std::vector<ember::pid> sorted(std::vector<ember::pid> v) {
  std::sort(v.begin(), v.end());
  return v;
}
std::vector<ember::pid> sorted_pids(std::initializer_list<ember::pid> v) { return sorted(std::vector<ember::pid>(v)); }
bool contains(const std::vector<ember::pid>& v, ember::pid p) { return std::find(v.begin(), v.end(), p) != v.end(); }
}  // namespace

TEST_CASE("process_info: a process waiting in receive shows status waiting and its unread messages",
          "[process_info]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto p = ember::spawn(echo);
    for (int i = 0; i < 3; ++i) ember::send(p, i);  // echo takes no ints
    sync_with(p);
    auto s = when_waiting(p);
    REQUIRE(s.pid == p);
    REQUIRE(s.status == ember::process_status::waiting);
    REQUIRE(s.message_queue_len == 3);
    stop_and_wait(p);
  });
}

TEST_CASE("process_info: message_queue_len counts messages not yet taken, drained or not", "[process_info]") {
  in_process(2, [] {
    const auto me = ember::self();
    REQUIRE(ember::process_info(me)->message_queue_len == 0);
    for (int i = 0; i < 3; ++i) ember::send(me, i);
    REQUIRE(ember::process_info(me)->message_queue_len == 3);  // still in the inbox
    REQUIRE(ember::receive([](int v) { return v; }) == 0);     // drains all three, takes one
    REQUIRE(ember::process_info(me)->message_queue_len == 2);
    ember::send(me, 3.5);  // one more, behind the two saved ints
    REQUIRE(ember::process_info(me)->message_queue_len == 3);
    REQUIRE(ember::receive([](double d) { return d; }) == 3.5);
    REQUIRE(ember::receive([](int v) { return v; }) == 1);
    REQUIRE(ember::receive([](int v) { return v; }) == 2);
    REQUIRE(ember::process_info(me)->message_queue_len == 0);
  });
}

TEST_CASE("process_info: registered_name, links and monitors name the right processes", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    const auto me = ember::self();
    auto p = ember::spawn(echo);
    auto fresh = ember::process_info(p);
    REQUIRE(fresh);
    REQUIRE(fresh->registered_name.empty());
    REQUIRE(fresh->links.empty());
    REQUIRE(fresh->monitors.empty());
    REQUIRE(fresh->monitored_by.empty());

    ember::register_name("info_target", p);
    ember::link(p);
    auto ref = ember::monitor(p);
    // A second watcher, which monitors p itself.
    auto w = ember::spawn([me, p] {
      ember::monitor(p);
      ember::send(me, ready{});
      ember::receive([](stop) {});
    });
    ember::receive([](ready) {});

    auto s = ember::process_info(p);
    REQUIRE(s);
    REQUIRE(s->registered_name == "info_target");
    REQUIRE(s->links == std::vector<ember::pid>{me});
    REQUIRE(s->monitors.empty());
    REQUIRE(sorted(s->monitored_by) == sorted_pids({me, w}));

    auto mine = ember::process_info(me);
    REQUIRE(mine);
    REQUIRE(mine->registered_name.empty());
    REQUIRE(mine->links == std::vector<ember::pid>{p});
    REQUIRE(mine->monitors == std::vector<ember::pid>{p});
    REQUIRE(mine->monitored_by.empty());

    auto ws = ember::process_info(w);
    REQUIRE(ws);
    REQUIRE(ws->monitors == std::vector<ember::pid>{p});
    REQUIRE(ws->links.empty());

    // Undoing them shows in the next snapshot.
    ember::unlink(p);
    REQUIRE(ember::demonitor(ref));
    REQUIRE(ember::unregister_name("info_target"));
    s = ember::process_info(p);
    REQUIRE(s);
    REQUIRE(s->registered_name.empty());
    REQUIRE(s->links.empty());
    REQUIRE(s->monitored_by == std::vector<ember::pid>{w});
    mine = ember::process_info(me);
    REQUIRE(mine->links.empty());
    REQUIRE(mine->monitors.empty());

    ember::send(w, stop{});
    stop_and_wait(p);
  });
}

TEST_CASE("process_info: trap_exit reflects the process's own process_flag", "[process_info]") {
  in_process(2, [] {
    const auto me = ember::self();
    auto p = ember::spawn([me] {
      ember::send(me, ready{});
      ember::receive([](go) {});
      bool was = ember::process_flag(ember::trap_exit, true);
      ember::send(me, was);
      ember::receive([](go) {});
      was = ember::process_flag(ember::trap_exit, false);
      ember::send(me, was);
      ember::receive([](stop) {});
    });
    ember::receive([](ready) {});
    REQUIRE_FALSE(ember::process_info(p)->trap_exit);
    ember::send(p, go{});
    REQUIRE_FALSE(ember::receive<bool>());
    REQUIRE(ember::process_info(p)->trap_exit);
    ember::send(p, go{});
    REQUIRE(ember::receive<bool>());
    REQUIRE_FALSE(ember::process_info(p)->trap_exit);
    // And for the caller itself.
    REQUIRE_FALSE(ember::process_info(me)->trap_exit);
    ember::process_flag(ember::trap_exit, true);
    REQUIRE(ember::process_info(me)->trap_exit);
    stop_and_wait(p);
  });
}

TEST_CASE("process_info: memory covers the block and the stack, initial_call names the entry", "[process_info]") {
  in_process(2, [] {
    auto small = ember::spawn(named_entry{ember::self()});
    auto big = ember::spawn(named_entry{ember::self()}, ember::spawn_options{1024 * 1024});
    ember::receive([](started) {});
    ember::receive([](started) {});
    auto s = ember::process_info(small);
    auto b = ember::process_info(big);
    REQUIRE(s);
    REQUIRE(b);
    REQUIRE(s->memory >= 256);
    // A stack is counted as reserved while held: a 1 MiB stack shows.
    REQUIRE(b->memory >= 1024 * 1024);
    REQUIRE(b->memory > s->memory);
    REQUIRE_THAT(s->initial_call, Catch::Contains("named_entry"));
    REQUIRE_THAT(b->initial_call, Catch::Contains("named_entry"));
    // A lambda, and an entry too big to be stored inline, are named too.
    std::array<char, 256> payload{};
    payload[0] = 'x';
    auto heavy = ember::spawn([payload] {
      ember::receive([](stop) {});
      (void)payload;
    });
    auto h = ember::process_info(heavy);
    REQUIRE(h);
    REQUIRE_FALSE(h->initial_call.empty());
    REQUIRE(h->initial_call != s->initial_call);
    REQUIRE(h->memory >= 256);
    stop_and_wait(small);
    stop_and_wait(big);
    stop_and_wait(heavy);
  });
}

TEST_CASE("process_info: a process asking about itself sees status running", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    auto s = ember::process_info(ember::self());
    REQUIRE(s);
    REQUIRE(s->pid == ember::self());
    REQUIRE(s->status == ember::process_status::running);
    REQUIRE(s->message_queue_len == 0);
    REQUIRE_FALSE(s->initial_call.empty());
  });
}

TEST_CASE("process_info: reductions grow with the work a process does", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u);
  in_process(workers, [] {
    const auto me = ember::self();
    constexpr int work = 10000;
    auto busy = ember::spawn([me] {
      for (int i = 0; i < work; ++i) ember::checkpoint();
      ember::send(me, ready{});
      ember::receive([](stop) {});
    });
    auto idle = ember::spawn(echo);
    ember::receive([](ready) {});
    sync_with(idle);
    auto b = when_waiting(busy);
    auto i = when_waiting(idle);
    REQUIRE(b.reductions >= std::uint64_t(work));
    REQUIRE(i.reductions < 1000);
    stop_and_wait(busy);
    stop_and_wait(idle);
  });
}

TEST_CASE("process_info: a pid that is not alive gives nullopt", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int n = int(scaled(200, 50));
  in_process(workers, [n] {
    REQUIRE_FALSE(ember::process_info(ember::pid{}));
    for (int i = 0; i < n; ++i) {
      auto [p, ref] = ember::spawn_monitor([] {});
      auto d = ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; },
                                          [](ember::down d) { return d; }));
      REQUIRE(d.reason.is_normal());
      auto s = ember::process_info(p);
      INFO("status of the exited process: " << (s ? int(s->status) : -1));
      REQUIRE_FALSE(s);
    }
  });
}

TEST_CASE("process_info: works from outside any process", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u);
  const int n = int(scaled(100, 20));
  ember::runtime rt(opts(workers));
  REQUIRE_FALSE(ember::process_info(ember::pid{}));
  for (int i = 0; i < n; ++i) {
    auto m = rt.spawn_monitor([] { ember::receive([](go) {}); });
    auto live = ember::process_info(m.pid);
    REQUIRE(live);
    REQUIRE(live->pid == m.pid);
    REQUIRE_FALSE(live->initial_call.empty());
    REQUIRE(live->status != ember::process_status::exiting);
    ember::send(m.pid, go{});
    REQUIRE(m.wait().is_normal());
    auto s = ember::process_info(m.pid);
    INFO("status of the exited process: " << (s ? int(s->status) : -1));
    REQUIRE_FALSE(s);
  }
  // A process from plain rt.spawn, queried while it waits for its stop.
  auto p = rt.spawn(named_entry{});
  auto s = ember::process_info(p);
  REQUIRE(s);
  REQUIRE_THAT(s->initial_call, Catch::Contains("named_entry"));
  ember::send(p, stop{});
  CHECK(rt.wait(p).what() != ember::exit_reason::kind::error);
}

TEST_CASE("process_info: snapshots taken from another thread while the process exits are whole",
          "[process_info]") {
  unsigned workers = GENERATE(1u, 2u);
  const int n = int(scaled(300, 100));
  ember::runtime rt(opts(workers));
  long taken = 0;
  for (int i = 0; i < n; ++i) {
    // An entry too big for the control block (kept on the heap), which the
    // process frees as its body ends.
    std::array<char, 256> payload{};
    auto m = rt.spawn_monitor([payload] {
      ember::receive([](go) {});
      (void)payload;
    });
    ember::send(m.pid, go{});
    for (int k = 0; k < 50; ++k) {
      auto s = ember::process_info(m.pid);
      if (!s) break;
      ++taken;
      REQUIRE(s->pid == m.pid);
      REQUIRE_FALSE(s->initial_call.empty());
      REQUIRE(s->memory >= 256);
    }
    REQUIRE(m.wait().is_normal());
  }
  CHECK(taken > 0);
}

TEST_CASE("processes: lists the caller and its children, and drops a child that exited", "[process_info]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int n = int(scaled(200, 50));
  in_process(workers, [n] {
    const auto me = ember::self();
    for (int i = 0; i < n; ++i) {
      auto child = ember::spawn(named_entry{});
      auto all = ember::processes();
      REQUIRE(contains(all, me));
      REQUIRE(contains(all, child));
      stop_and_wait(child);
      all = ember::processes();
      REQUIRE(contains(all, me));
      REQUIRE_FALSE(contains(all, child));
    }
  });
}

TEST_CASE("processes: outside a process it throws not_in_process", "[process_info][misuse]") {
  CHECK_THROWS_AS(ember::processes(), ember::not_in_process);
}
