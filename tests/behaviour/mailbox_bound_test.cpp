// Bounded mailboxes and the long-message-queue report — the rules in
// include/ember/options.hpp (mailbox_bound, overflow, long_message_queue)
// and include/ember/send.hpp: each policy does what it says; system
// messages (exit signals, `down`, replies to the process's own calls,
// gen_server stop) always get through; a call to a full server fails at
// once with call_refused; a flood keeps resident memory bounded; the long
// queue is reported once per crossing.
//
// The policy tests run on a manual clock (one worker, deterministic): the
// receiver naps one second of manual time while the test fills its mailbox.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::resident_bytes;
using ember_test::scaled;

namespace {

struct item {
  int n;
};
struct go {};
struct ready {};

/// Run body as a process on a manual clock; each time the runtime is idle,
/// move time one second on (the nap of the processes below), `naps` times;
/// then expect body to have ended normally.
template <class Body>
void with_nap(Body body, std::shared_ptr<spdlog::logger> logger = {}, int naps = 1) {
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = opts(1);
  o.clock = clock;
  if (logger) o.logger = std::move(logger);
  ember::runtime rt(o);
  auto r = rt.spawn_monitor(std::move(body));
  clock->settle();
  for (int i = 0; i < naps; ++i) clock->advance(1s);
  const ember::exit_reason why = r.wait();
  INFO("exit reason: " << why);
  CHECK(why.is_normal());
}

/// Every item queued now, in order (takes nothing else).
std::vector<int> take_items() {
  std::vector<int> got;
  while (ember::receive([&](item i) { got.push_back(i.n); return true; },
                        ember::after(0ms, [] { return false; }))) {
  }
  return got;
}

/// Naps one second (taking no message), then reports the items it holds.
void napper(ember::pid report) {
  ember::receive(ember::after(1s, [] {}));
  ember::send(report, take_items());
}

std::vector<int> range(int from, int to) {
  std::vector<int> v(std::size_t(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

/// Spawn a napper with a bound, send it `count` items, and return what
/// each send said and what the napper had when it woke.
struct outcome {
  std::vector<ember::send_result> sends;
  std::vector<int> kept;
};
outcome fill(std::size_t capacity, ember::overflow policy, int count) {
  const ember::pid me = ember::self();
  ember::spawn_options so;
  so.mailbox = {capacity, policy};
  const ember::pid p = ember::spawn([me] { napper(me); }, so);
  outcome o;
  for (int i = 0; i < count; ++i) o.sends.push_back(ember::send(p, item{i}));
  o.kept = ember::receive<std::vector<int>>();
  return o;
}

std::size_t count_of(const std::vector<ember::send_result>& v, ember::send_result r) {
  return std::size_t(std::count(v.begin(), v.end(), r));
}

}  // namespace

TEST_CASE("mailbox bound: drop_newest keeps the first `capacity` and says the rest were dropped",
          "[mailbox_bound]") {
  bool ran = false;
  with_nap([&] {
    outcome o = fill(10, ember::overflow::drop_newest, 15);
    CHECK(count_of(o.sends, ember::send_result::sent) == 10);
    CHECK(std::all_of(o.sends.begin() + 10, o.sends.end(), [](auto r) { return r == ember::send_result::dropped; }));
    CHECK(o.kept == range(0, 10));
    ran = true;
  });
  CHECK(ran);
}

TEST_CASE("mailbox bound: refuse keeps the first `capacity` and tells the sender", "[mailbox_bound]") {
  bool ran = false;
  with_nap([&] {
    outcome o = fill(10, ember::overflow::refuse, 15);
    CHECK(count_of(o.sends, ember::send_result::sent) == 10);
    CHECK(std::all_of(o.sends.begin() + 10, o.sends.end(), [](auto r) { return r == ember::send_result::refused; }));
    CHECK(o.kept == range(0, 10));
    ran = true;
  });
  CHECK(ran);
}

TEST_CASE("mailbox bound: drop_oldest keeps the newest `capacity` (at most twice it wait unread)",
          "[mailbox_bound]") {
  bool ran = false;
  with_nap([&] {
    outcome o = fill(10, ember::overflow::drop_oldest, 15);
    CHECK(count_of(o.sends, ember::send_result::sent) == 15);
    CHECK(o.kept == range(5, 15));
    // The receiver has not drained: past twice the capacity the newest go.
    o = fill(10, ember::overflow::drop_oldest, 25);
    CHECK(count_of(o.sends, ember::send_result::sent) == 20);
    CHECK(std::all_of(o.sends.begin() + 20, o.sends.end(), [](auto r) { return r == ember::send_result::dropped; }));
    CHECK(o.kept == range(10, 20));
    ran = true;
  }, {}, 2);
  CHECK(ran);
}

TEST_CASE("mailbox bound: kill ends the receiver with mailbox_overflow, logged", "[mailbox_bound]") {
  std::ostringstream log;
  bool ran = false;
  with_nap(
      [&] {
        const ember::pid me = ember::self();
        ember::spawn_options so;
        so.mailbox = {10, ember::overflow::kill};
        const ember::pid p = ember::spawn([me] { napper(me); }, so);
        const ember::monitor_ref m = ember::monitor(p);
        for (int i = 0; i < 10; ++i) CHECK(ember::send(p, item{i}) == ember::send_result::sent);
        CHECK(ember::send(p, item{10}) == ember::send_result::dropped);
        const ember::down d = ember::receive<ember::down>();
        CHECK(d.ref == m);
        REQUIRE(d.reason.value<ember::mailbox_overflow>() != nullptr);
        CHECK(d.reason.value<ember::mailbox_overflow>()->capacity == 10);
        CHECK(d.reason.text() == "mailbox_overflow: the mailbox is full at 10 messages");
        ran = true;
      },
      std::make_shared<spdlog::logger>("bound", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  CHECK(ran);
  CHECK(log.str().find("mailbox_overflow") != std::string::npos);
}

namespace {
struct tally {
  std::size_t items = 0, downs = 0, exits = 0;
};
}  // namespace

TEST_CASE("mailbox bound: exit signals and `down`s get into a full mailbox", "[mailbox_bound]") {
  bool ran = false;
  with_nap([&] {
    const ember::pid me = ember::self();
    ember::spawn_options so;
    so.mailbox = {3, ember::overflow::refuse};
    const ember::pid linked = ember::spawn([] { ember::receive<go>(); ember::exit(ember::exit_reason::error("boom")); });
    const ember::pid watched = ember::spawn([] { ember::receive<go>(); });
    const ember::pid p = ember::spawn(
        [=] {
          ember::process_flag(ember::trap_exit, true);
          ember::link(linked);
          ember::monitor(watched);
          ember::send(me, ready{});
          ember::receive(ember::after(1s, [] {}));
          tally t;
          t.items = take_items().size();
          while (ember::receive([&](ember::down) { ++t.downs; return true; },
                                [&](ember::exit_message) { ++t.exits; return true; },
                                ember::after(0ms, [] { return false; }))) {
          }
          ember::send(me, t);
        },
        so);
    ember::receive<ready>();
    for (int i = 0; i < 3; ++i) CHECK(ember::send(p, item{i}) == ember::send_result::sent);
    CHECK(ember::send(p, item{3}) == ember::send_result::refused);
    ember::send(linked, go{});
    ember::send(watched, go{});
    ember::exit(p, ember::exit_reason::shutdown());  // trapped: an exit_message
    const tally t = ember::receive<tally>();
    CHECK(t.items == 3);
    CHECK(t.downs == 1);
    CHECK(t.exits == 2);
    ran = true;
  });
  CHECK(ran);
}

namespace {
struct fill_caller {
  ember::pid caller;
};
struct nap {
  ember::pid notify;  // told when the nap starts
};
struct poke {};
/// A server that, asked to, fills its caller's mailbox before answering;
/// or naps for a second of manual time inside a call.
struct filler : ember::gen_server::behaviour<filler> {
  int pokes = 0;
  std::vector<ember::send_result> handle_call(fill_caller f, const ember::gen_server::from&) {
    std::vector<ember::send_result> rs;
    for (int i = 0; i < 5; ++i) rs.push_back(ember::send(f.caller, item{i}));
    return rs;
  }
  int handle_call(nap n, const ember::gen_server::from&) {
    ember::send(n.notify, ready{});
    ember::receive(ember::after(1s, [] {}));
    return pokes;
  }
  void handle_cast(poke) { ++pokes; }
};
}  // namespace

TEST_CASE("mailbox bound: the reply to a process's own call gets into its full mailbox", "[mailbox_bound][gen_server]") {
  in_process(1, [] {
    auto s = ember::gen_server::start<filler>();
    REQUIRE(s);
    const ember::pid me = ember::self();
    ember::spawn_options so;
    so.mailbox = {4, ember::overflow::refuse};
    ember::spawn(
        [=] {
          auto rs = ember::gen_server::call(s.server(), fill_caller{ember::self()});
          ember::send(me, std::move(rs));
        },
        so);
    auto rs = ember::receive<std::vector<ember::send_result>>();
    CHECK(count_of(rs, ember::send_result::sent) == 4);  // its mailbox was full...
    CHECK(rs[4] == ember::send_result::refused);         // ...and the reply still came
  });
}

TEST_CASE("mailbox bound: a call to a full server fails at once with call_refused, stop gets through",
          "[mailbox_bound][gen_server]") {
  bool ran = false;
  with_nap([&] {
    auto s = ember::gen_server::start<filler>(ember::gen_server::options{.spawn = {.mailbox = {2, ember::overflow::refuse}}});
    REQUIRE(s);
    CHECK(ember::process_info(s.pid())->mailbox.capacity == 2);
    const ember::pid me = ember::self();
    ember::spawn([=] { ember::send(me, ember::gen_server::call(s.server(), nap{me}, ember::gen_server::infinity)); });
    ember::receive<ready>();  // the server naps inside that call
    ember::gen_server::cast(s.server(), poke{});
    ember::gen_server::cast(s.server(), poke{});
    ember::gen_server::cast(s.server(), poke{});  // dropped: the mailbox is full
    CHECK_THROWS_AS(ember::gen_server::call(s.server(), nap{me}), ember::call_refused);
    // The stop request gets in; the server finishes its nap and its casts first.
    ember::gen_server::stop(s.server());
    CHECK(ember::receive<int>() == 0);  // the nap's answer: no poke had been handled yet
    ran = true;
  });
  CHECK(ran);
}

TEST_CASE("mailbox bound: a flood of 10,000,000 messages keeps memory bounded, signals still arrive",
          "[mailbox_bound][stress]") {
  const int total = int(scaled(10000000, 200000));
  const int senders = 4;
  for (ember::overflow policy : {ember::overflow::refuse, ember::overflow::drop_newest, ember::overflow::drop_oldest}) {
    INFO("policy " << int(policy));
    const std::size_t baseline = resident_bytes();
    std::size_t peak = 0;
    std::atomic<long> accepted{0};
    long received = 0;
    bool saw_down = false;
    in_process(2, [&] {
      const ember::pid me = ember::self();
      const ember::pid canary = ember::spawn([] { ember::receive<go>(); });
      ember::spawn_options so;
      so.mailbox = {1000, policy};
      const ember::pid sink = ember::spawn(
          [&, me, canary] {
            ember::process_flag(ember::trap_exit, true);
            ember::monitor(canary);
            for (long n = 0;; ++n) {
              const bool more = ember::receive(
                  [&](item) {
                    ++received;
                    for (int spin = 0; spin < 50; ++spin) {
                      asm volatile("");
                    }
                    return true;
                  },
                  [&](ember::down) { saw_down = true; return true; },
                  [&](ember::exit_message) { return false; });
              if (n % 65536 == 0) peak = std::max(peak, resident_bytes());
              if (!more) break;
            }
            // The canary's down and the shutdown come from different
            // processes, in no promised order: the down may still be on
            // its way.  It must arrive.
            if (!saw_down) saw_down = ember::receive([](ember::down) { return true; }, ember::after(10s, [] { return false; }));
            peak = std::max(peak, resident_bytes());
            ember::send(me, go{});
          },
          so);
      std::vector<ember::monitor_ref> ms;
      for (int s = 0; s < senders; ++s) {
        ms.push_back(ember::monitor(ember::spawn([&, sink, s] {
          long ok = 0;
          for (int i = 0; i < total / senders; ++i) {
            if (ember::send(sink, item{i}) == ember::send_result::sent) ++ok;
            if (s == 0 && i == total / senders / 2) ember::exit(canary, ember::exit_reason::kill());
          }
          accepted += ok;
        })));
      }
      for (std::size_t i = 0; i < ms.size(); ++i) ember::receive<ember::down>();
      ember::exit(sink, ember::exit_reason::shutdown());  // trapped: ends its loop
      ember::receive<go>();
    });
    INFO("baseline " << baseline << " peak " << peak << " accepted " << accepted << " received " << received);
    CHECK(saw_down);
    CHECK(received > 0);
    // 10,000,000 queued messages would take hundreds of MiB.
    CHECK(peak < baseline + (64u << 20));
    if (policy == ember::overflow::drop_oldest) CHECK(received <= accepted.load());
    else CHECK(received == accepted.load());
    CHECK(accepted.load() < total);
  }
}

TEST_CASE("long message queue: reported once per crossing, with the pid and the length", "[mailbox_bound]") {
  std::ostringstream log;
  auto clock = std::make_shared<ember::manual_clock>();
  auto o = opts(1);
  o.clock = clock;
  o.logger = std::make_shared<spdlog::logger>("lq", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  o.long_message_queue = {100, 10};
  ember::runtime rt(o);
  ember::pid sleeper;
  auto r = rt.spawn_monitor([&] {
    sleeper = ember::spawn([] {
      for (int round = 0; round < 2; ++round) {
        ember::receive(ember::after(1s, [] {}));
        take_items();
      }
    });
    for (int i = 0; i < 150; ++i) ember::send(sleeper, item{i});  // crosses 100 once
  });
  clock->settle();
  CHECK(r.wait().is_normal());
  const auto lines = [&] {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = log.str().find("long message queue", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  CHECK(lines() == 1);
  CHECK(log.str().find(fmt::format("process {} has 100 messages (threshold 100)", sleeper)) != std::string::npos);
  clock->advance(1s);  // it drains (below 10): the report re-arms
  auto r2 = rt.spawn_monitor([&] {
    for (int i = 0; i < 150; ++i) ember::send(sleeper, item{i});
  });
  clock->settle();
  CHECK(r2.wait().is_normal());
  CHECK(lines() == 2);
}

TEST_CASE("mailbox bound: process_info shows the queue's length, bytes and bound", "[mailbox_bound][process_info]") {
  bool ran = false;
  with_nap([&] {
    ember::spawn_options so;
    so.mailbox = {100, ember::overflow::drop_oldest};
    const ember::pid me = ember::self();
    const ember::pid p = ember::spawn([me] { napper(me); }, so);
    for (int i = 0; i < 20; ++i) ember::send(p, item{i});
    ember::yield();  // the napper runs, takes its messages into its queue, naps
    auto info = ember::process_info(p);
    REQUIRE(info);
    CHECK(info->message_queue_len == 20);
    CHECK(info->message_queue_bytes >= 20 * (sizeof(item) + 32));
    CHECK(info->memory >= info->message_queue_bytes);
    CHECK(info->mailbox.capacity == 100);
    CHECK(info->mailbox.policy == ember::overflow::drop_oldest);
    CHECK(ember::receive<std::vector<int>>().size() == 20);
    ran = true;
  });
  CHECK(ran);
}

TEST_CASE("mailbox bound: misuse", "[mailbox_bound][misuse]") {
  ember::runtime rt(opts(1));
  ember::spawn_options so;
  so.mailbox.capacity = ember::max_mailbox_capacity + 1;
  CHECK_THROWS_AS(rt.spawn([] {}, so), ember::invalid_option);
  so.mailbox = {10, ember::overflow(9)};
  CHECK_THROWS_AS(rt.spawn([] {}, so), ember::invalid_option);
  auto o = opts(1);
  o.long_message_queue = {70000, 0};
  CHECK_THROWS_AS(ember::runtime(o), ember::invalid_option);
  o.long_message_queue = {100, 100};
  CHECK_THROWS_AS(ember::runtime(o), ember::invalid_option);
}
