// gen_server (include/ember/gen_server.hpp), named after OTP's rules: typed
// call/cast/info, init's outcomes, each call failure, deferred and late
// replies, nested calls, terminate's rules, stop, timeouts and continue,
// and that an idle server holds no stack.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace gs = ember::gen_server;

namespace {
struct inc {};
struct get {};
struct add {
  long by;
};
struct reset {};
struct crash {};
struct hold {};         // a call answered later
struct release_all {};  // answer the held calls
struct nested {
  ember::pid other;
};
struct ping {};
struct unlisted {};
struct quit {};
struct idle_for {
  std::chrono::milliseconds t;
};
struct warm {};
struct held_count {};

/// What terminate saw (shared with the test).
struct journal {
  std::atomic<int> terminated{0};
  ember::exit_reason last;
};

struct counter : gs::behaviour<counter> {
  long n = 0;
  std::shared_ptr<journal> log;
  std::vector<gs::from> held;
  explicit counter(std::shared_ptr<journal> j = nullptr, long start = 0) : n(start), log(std::move(j)) {}

  long handle_call(inc, const gs::from&) { return ++n; }
  long handle_call(get) { return n; }
  call_reply<long> handle_call(add a, const gs::from&) { return reply_with(n += a.by); }
  call_reply<long> handle_call(hold, const gs::from& f) {
    held.push_back(f);
    return noreply();
  }
  call_reply<int> handle_call(crash) { throw std::runtime_error("boom"); }
  call_reply<long> handle_call(quit) { return stop_with(ember::exit_reason::shutdown("asked"), n); }
  long handle_call(nested x) { return gs::call<counter>(x.other, get{}) + 1000; }
  call_reply<long> handle_call(idle_for x) { return reply_with(n).after(x.t); }
  call_reply<long> handle_call(warm) { return reply_with(n).then(warm{}); }
  void handle_continue(warm) { n += 100; }
  std::size_t handle_call(held_count) { return held.size(); }

  void handle_cast(reset) { n = 0; }
  next handle_cast(release_all) {
    for (auto& f : held) gs::reply(f, n);
    held.clear();
    return noreply();
  }

  using info = gs::types<ping, ember::down>;
  void handle_info(ping) { ++n; }
  void handle_info(const ember::down&) {}
  void handle_info(gs::server_timeout) { n = -1; }

  void terminate(const ember::exit_reason& r) {
    if (log) {
      log->last = r;
      log->terminated.fetch_add(1);
    }
  }
};

struct failing_init {
  explicit failing_init(int how) : how_(how) {}
  gs::next<failing_init> init() {
    if (how_ == 1) throw std::runtime_error("no config");
    if (how_ == 2) return gs::next<failing_init>::stopping(ember::exit_reason::error("refused"));
    return {};
  }
  int how_;
  int handle_call(get) { return 7; }
};
}  // namespace

TEST_CASE("gen_server: call returns the handler's typed reply, cast and listed info messages reach their handlers",
          "[gen_server]") {
  in_process(2, [] {
    auto s = gs::start<counter>();
    REQUIRE(s);
    static_assert(std::is_same_v<decltype(gs::call(s.server(), inc{})), long>);
    REQUIRE(gs::call(s.server(), inc{}) == 1);
    REQUIRE(gs::call(s.server(), add{41}) == 42);
    gs::cast(s.server(), reset{});
    ember::send(s.pid(), ping{});
    ember::send(s.pid(), unlisted{});  // logged and dropped
    REQUIRE(gs::call(s.server(), get{}) == 1);  // cast, info and the unlisted message were handled in order
    gs::stop(s.server());
  });
}

TEST_CASE("gen_server: init that throws or returns stop makes start return the error, and nothing is left running",
          "[gen_server]") {
  in_process(2, [] {
    for (int how : {1, 2}) {
      auto s = gs::start_link<failing_init>(how);
      REQUIRE_FALSE(s);
      REQUIRE(s.error() == (how == 1 ? ember::exit_reason::error("no config") : ember::exit_reason::error("refused")));
      auto m = ember::monitor(s.pid());
      auto d = ember::receive([](ember::down d) { return d; });
      REQUIRE((d.reason.is_normal() || d.reason.what() == ember::exit_reason::kind::noproc));
      (void)m;
    }
    auto ok = gs::start<failing_init>(0);
    REQUIRE(ok);
    REQUIRE(gs::call(ok.server(), get{}) == 7);
  });
}

TEST_CASE("gen_server: a failed start_link (init throws, init stops, name taken) leaves no exit_message in a "
          "trapping starter's mailbox, and the server has exited when it returns",
          "[gen_server]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    ember::process_flag(ember::trap_exit, true);
    auto holder = gs::start<counter>(gs::name{"taken"});
    REQUIRE(holder);
    for (int how : {1, 2, 3}) {
      if (how == 3) {
        auto s = gs::start_link<counter>(gs::name{"taken"});
        REQUIRE(s.already_started());
        REQUIRE(s.pid() == holder.pid());
      } else {
        REQUIRE_FALSE(gs::start_link<failing_init>(how));
      }
      // OTP's proc_lib takes the failed child's 'EXIT' out of the starter's
      // mailbox: nothing of it is left here.
      auto left = ember::receive([](const ember::exit_message& m) { return m.from; },
                                 ember::after(0ms, [] { return ember::pid{}; }));
      REQUIRE(left.is_null());
    }
    // The starter's own links still work as before.
    ember::pid w = ember::spawn_link([] {});
    REQUIRE(ember::receive([](const ember::exit_message& m) { return m.from; }) == w);
    gs::stop(holder.server());
  });
}

TEST_CASE("gen_server: a second start under a taken name returns already_started with the holder's pid",
          "[gen_server]") {
  in_process(2, [] {
    auto a = gs::start<counter>(gs::name{"ctr"});
    REQUIRE(a);
    auto b = gs::start<counter>(gs::name{"ctr"});
    REQUIRE_FALSE(b);
    REQUIRE(b.already_started());
    REQUIRE(b.pid() == a.pid());
    REQUIRE(gs::call(gs::server<counter>("ctr"), inc{}) == 1);
    gs::stop(gs::server<counter>("ctr"));
    REQUIRE_THROWS_AS(gs::call(gs::server<counter>("ctr"), inc{}), ember::call_noproc);
  });
}

TEST_CASE("gen_server: a call that reaches a reused control block after its server exited is answered "
          "noproc, not left to time out",
          "[gen_server]") {
  // The race: a caller checks the server's pid, the server exits and its
  // block is reused by a new process, then the caller's push lands in the
  // new process's mailbox.  The new process must answer it (call_noproc),
  // as the old one's exit would have.  Staged by hand on one worker: a
  // block freed there is the next one its spawn takes.
  in_process(1, [] {
    ember::pid old = ember::spawn([] {});
    auto m = ember::monitor(old);
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
    auto s = gs::start<counter>();
    REQUIRE(s);
    REQUIRE(s.pid().block() == old.block());  // the same control block, a new incarnation
    REQUIRE(s.pid().serial() != old.serial());

    namespace ed = ember::detail;
    ed::process* self = ed::this_process();
    const std::uint64_t ref = ++self->call_seq;
    self->call_ref.store(ref);
    using body = gs::detail::request_body<get>;
    ed::envelope* e = ed::make_request<body>(
        old.serial(),
        ed::request_head{ed::request_kind::call, ed::type_tag<counter>(), &gs::detail::dispatch_call<counter, get>,
                         "get", ember::self(), ref, ed::type_tag<long>()},
        get{});
    e->serial = old.serial();  // addressed to the incarnation that exited
    REQUIRE(ed::deliver(s.pid().block(), e) == ed::delivery::sent);
    ed::envelope* r = gs::detail::await_reply(self, ref, 5'000'000'000, nullptr);
    self->call_ref.store(0);
    REQUIRE(r != nullptr);
    ed::envelope_guard g{r};
    const auto& h = ed::head_of<ed::reply_head>(r);
    REQUIRE(h.status == ed::reply_status::exited);
    REQUIRE(h.reason.what() == ember::exit_reason::kind::noproc);
    REQUIRE(gs::call(s.server(), get{}) == 0);  // the new server is unaffected
    gs::stop(s.server());
  });
}

TEST_CASE("gen_server: call failures: timeout (late reply dropped), no process, server exits first, calling "
          "yourself, server of another type",
          "[gen_server]") {
  in_process(2, [] {
    auto s = gs::start<counter>();
    SECTION("a timeout, and the reply that comes later never reaches the caller's mailbox") {
      REQUIRE_THROWS_AS(gs::call(s.server(), hold{}, 20ms), ember::call_timeout);
      gs::cast(s.server(), release_all{});  // the held call is answered now, too late
      REQUIRE(gs::call(s.server(), get{}) == 0);  // the server has sent the late reply by now
      auto stray = ember::receive([](long v) { return v; }, ember::after(0ms, [] { return -1L; }));
      REQUIRE(stray == -1);
      REQUIRE(ember::process_info(ember::self())->message_queue_len == 0);
    }
    SECTION("no such process, no such name") {
      auto dead = ember::spawn_monitor([] {});
      ember::receive([](ember::down) {});
      REQUIRE_THROWS_AS(gs::call<counter>(dead.first, get{}), ember::call_noproc);
      REQUIRE_THROWS_AS(gs::call(gs::server<counter>("nobody"), get{}), ember::call_noproc);
    }
    SECTION("the server exits during the call: the caller gets its reason") {
      try {
        gs::call(s.server(), crash{});
        FAIL("call returned");
      } catch (const ember::call_exited& e) {
        REQUIRE(e.reason() == ember::exit_reason::error("boom"));
      }
    }
    SECTION("calls queued behind a crash, and held calls, learn the reason too") {
      auto me = ember::self();
      auto holder = ember::spawn([me, srv = s.pid()] {
        try {
          gs::call<counter>(srv, hold{}, gs::infinity);
        } catch (const ember::call_exited& e) {
          ember::send(me, e.reason());
        }
      });
      (void)holder;
      while (gs::call(s.server(), held_count{}) == 0) {  // until the hold is registered
      }
      REQUIRE_THROWS_AS(gs::call(s.server(), crash{}), ember::call_exited);
      REQUIRE(ember::receive([](ember::exit_reason r) { return r; }) == ember::exit_reason::error("boom"));
    }
    SECTION("calling yourself") {
      ember::pid me = ember::self();
      REQUIRE_THROWS_AS(gs::call<counter>(me, get{}), ember::call_self);
    }
    SECTION("a call made for another server type") {
      auto other = gs::start<failing_init>(0);
      REQUIRE_THROWS_AS(gs::call<counter>(other.pid(), get{}), ember::bad_request);
      REQUIRE(gs::call(other.server(), get{}) == 7);  // still serving
    }
  });
}

TEST_CASE("gen_server: a deferred reply answers later, from any process, a nested call from a handler works",
          "[gen_server]") {
  in_process(2, [] {
    auto s = gs::start<counter>(nullptr, 5);
    auto me = ember::self();
    for (int i = 0; i < 3; ++i)
      ember::spawn([me, srv = s.pid()] { ember::send(me, gs::call<counter>(srv, hold{}, gs::infinity)); });
    while (gs::call(s.server(), held_count{}) < 3) {  // until the three holds are registered
    }
    gs::cast(s.server(), release_all{});
    for (int i = 0; i < 3; ++i) REQUIRE(ember::receive([](long v) { return v; }) == 5);
    auto t = gs::start<counter>(nullptr, 1);
    REQUIRE(gs::call(s.server(), nested{t.pid()}) == 1001);
  });
}

TEST_CASE("gen_server: terminate runs on stop, on a crash and on the parent's trapped exit, not on a kill",
          "[gen_server]") {
  in_process(2, [] {
    auto j = std::make_shared<journal>();
    SECTION("stop_with from a handler: terminate(reason), the reply is sent first") {
      auto s = gs::start<counter>(j);
      auto m = ember::monitor(s.pid());
      REQUIRE(gs::call(s.server(), quit{}) == 0);
      REQUIRE(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::shutdown("asked"));
      REQUIRE(j->terminated == 1);
      REQUIRE(j->last == ember::exit_reason::shutdown("asked"));
      (void)m;
    }
    SECTION("a crash: terminate(error)") {
      auto s = gs::start<counter>(j);
      REQUIRE_THROWS_AS(gs::call(s.server(), crash{}), ember::call_exited);
      REQUIRE(j->terminated == 1);
      REQUIRE(j->last == ember::exit_reason::error("boom"));
    }
    SECTION("gen_server::stop: terminate(reason), and stop returns once it has exited") {
      auto s = gs::start<counter>(j);
      gs::stop(s.server(), ember::exit_reason::shutdown());
      REQUIRE(j->terminated == 1);
      REQUIRE_THROWS_AS(gs::stop(s.server()), ember::call_noproc);
    }
    SECTION("killed without trapping exits: no terminate") {
      auto s = gs::start<counter>(j);
      auto m = ember::monitor(s.pid());
      ember::exit(s.pid(), ember::exit_reason::kill());
      REQUIRE(ember::receive([](ember::down d) { return d.reason; }) == ember::exit_reason::killed());
      REQUIRE(j->terminated == 0);
      (void)m;
    }
  });
}

TEST_CASE("gen_server: after(t) delivers server_timeout when no message comes in time, then(c) runs "
          "handle_continue first",
          "[gen_server]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto result = std::make_shared<std::atomic<long>>(0);
  auto p = rt.spawn_monitor([clock, result] {
    auto s = gs::start<counter>(nullptr, 3);
    REQUIRE(gs::call(s.server(), warm{}) == 3);
    REQUIRE(gs::call(s.server(), get{}) == 103);  // the continuation ran before this call
    REQUIRE(gs::call(s.server(), idle_for{55s}) == 103);
    ember::receive([](ping) {});  // the test moves the clock meanwhile
    result->store(gs::call(s.server(), get{}));
  });
  clock->settle();
  clock->advance(54'999ms);
  clock->settle();
  clock->advance(1ms);
  ember::send(p.pid, ping{});
  clock->settle();
  REQUIRE(result->load() == -1);  // handle_info(server_timeout) ran at 55 s
  REQUIRE(p.wait().is_normal());
}

TEST_CASE("gen_server: between messages a server holds no stack", "[gen_server]") {
  in_process(2, [] {
    auto s = gs::start<counter>();
    REQUIRE(gs::call(s.server(), inc{}) == 1);
    auto info = ember::process_info(s.pid());
    REQUIRE(info);
    REQUIRE(info->status == ember::process_status::waiting);
    REQUIRE(info->memory < 4096);  // a stack would be at least 64 KiB reserved
  });
}

TEST_CASE("gen_server: misuse: an empty name, a reply of the wrong type, start/call outside a process, a stop "
          "that times out",
          "[gen_server]") {
  in_process(2, [] {
    REQUIRE_THROWS_AS(gs::start<counter>(gs::name{""}), ember::bad_argument);
    REQUIRE_THROWS_AS(gs::start_link<counter>(gs::name{""}), ember::bad_argument);
    gs::from f{ember::self(), 1, ember::detail::type_tag<long>()};
    REQUIRE_THROWS_AS(gs::reply(f, 1), ember::bad_argument);  // an int where a long is expected
    // A process that is not a gen_server ignores the stop request: stop times out.
    auto plain = ember::spawn([] { ember::receive([](quit) {}); });
    REQUIRE_THROWS_AS(gs::stop<counter>(plain, ember::exit_reason::normal(), 10ms), ember::call_timeout);
    ember::send(plain, quit{});
  });
  ember::runtime rt(ember_test::opts(1));
  REQUIRE_THROWS_AS(gs::start<counter>(), ember::not_in_process);
  REQUIRE_THROWS_AS(gs::call<counter>(ember::pid{}, get{}), ember::not_in_process);
}
