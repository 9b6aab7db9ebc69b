// gen_server's asynchronous requests (OTP 25's send_request, wait_response,
// receive_response, check_response and request-id collections), and the
// start API an OTP user reaches for: ignore from init, start_monitor, the
// start timeout, and after(t, msg) timeouts with a payload.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;
namespace dyn = ember::dynamic_supervisor;

namespace {
struct get {};
struct hold {};         // answered later, on release
struct release_all {};  // answer the held ones
struct crash {};
struct quit {};

struct kv : gs::behaviour<kv> {
  long n;
  std::vector<gs::from> held;
  explicit kv(long start = 0) : n(start) {}
  long handle_call(get) { return n; }
  call_reply<long> handle_call(hold, const gs::from& f) {
    held.push_back(f);
    return noreply();
  }
  call_reply<long> handle_call(crash) { throw std::runtime_error("boom"); }
  void handle_cast(release_all) {
    for (auto& f : held) gs::reply(f, n);
    held.clear();
  }
  call_reply<long> handle_call(quit) { return stop_with(ember::exit_reason::shutdown("quit")); }
};

struct other : gs::behaviour<other> {
  int handle_call(int v) { return v; }
};

bool mailbox_empty() { return ember::process_info(ember::self())->message_queue_len == 0; }
}  // namespace

TEST_CASE("gen_server: send_request returns at once and receive_response matches each reply to its request",
          "[gen_server][request]") {
  const unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto a = gs::start<kv>(1);
    auto b = gs::start<kv>(2);
    std::vector<gs::request_id<long>> ids;
    for (int i = 0; i < 50; ++i) {
      ids.push_back(gs::send_request(a.server(), get{}));
      ids.push_back(gs::send_request(b.server(), get{}));
    }
    // Taken in reverse order: each reply is its own request's.
    for (std::size_t i = ids.size(); i-- > 0;) {
      auto r = gs::receive_response(ids[i], 5s);
      REQUIRE(r);
      REQUIRE(r.value() == (i % 2 == 0 ? 1 : 2));
      REQUIRE(r.server() == (i % 2 == 0 ? a.pid() : b.pid()));
    }
    REQUIRE(mailbox_empty());
  });
}

TEST_CASE("gen_server: wait_response keeps a request that timed out — receive_response gives it up and a late reply "
          "is never seen",
          "[gen_server][request]") {
  in_process(2, [] {
    auto s = gs::start<kv>(7);
    auto id = gs::send_request(s.server(), hold{});
    auto t = gs::wait_response(id, 0ms);
    REQUIRE(t.timed_out());
    REQUIRE_THROWS_AS(t.value(), ember::call_timeout);
    gs::cast(s.server(), release_all{});
    auto r = gs::wait_response(id, 5s);  // still pending: it gets the reply
    REQUIRE(r);
    REQUIRE(r.value() == 7);

    auto gone = gs::send_request(s.server(), hold{});
    REQUIRE(gs::receive_response(gone, 1ms).timed_out());
    gs::cast(s.server(), release_all{});
    REQUIRE(gs::call(s.server(), get{}) == 7);  // the late reply has been sent by now
    REQUIRE(mailbox_empty());                   // and dropped
    REQUIRE(gs::wait_response(gone, 0ms).timed_out());
  });
}

TEST_CASE("gen_server: a request's errors come back in its response: no process, exited, refused, another server "
          "type",
          "[gen_server][request]") {
  in_process(2, [] {
    auto [dead, m] = ember::spawn_monitor([] {});
    ember::receive([](ember::down) {});
    auto r1 = gs::receive_response(gs::send_request<kv>(dead, get{}), 1s);
    REQUIRE(r1.what() == gs::response<long>::kind::error);
    REQUIRE(r1.error() == ember::exit_reason::noproc());
    REQUIRE_THROWS_AS(r1.value(), ember::call_noproc);
    auto r2 = gs::receive_response(gs::send_request(gs::server<kv>("nobody"), get{}), 1s);
    REQUIRE(r2.error() == ember::exit_reason::noproc());

    auto s = gs::start<kv>();
    auto held = gs::send_request(s.server(), hold{});
    auto crashed = gs::receive_response(gs::send_request(s.server(), crash{}), 5s);
    REQUIRE(crashed.error() == ember::exit_reason::error("boom"));
    REQUIRE_THROWS_AS(crashed.value(), ember::call_exited);
    auto h = gs::receive_response(held, 5s);  // owed by the server that died
    REQUIRE(h.error() == ember::exit_reason::error("boom"));

    auto o = gs::start<other>();
    auto wrong = gs::receive_response(gs::send_request<kv>(o.pid(), get{}), 5s);
    REQUIRE_THROWS_AS(wrong.value(), ember::bad_request);

    (void)m;
  });
  // One worker: the server does not run while the sender sends, so its
  // one-message mailbox is full after the first request.
  in_process(1, [] {
    auto full = gs::start<kv>(gs::options{.spawn = {.mailbox = {1, ember::overflow::refuse}}}, 4L);
    std::vector<gs::request_id<long>> many;
    for (int i = 0; i < 5; ++i) many.push_back(gs::send_request(full.server(), get{}));
    REQUIRE(gs::receive_response(many[0], 5s).value() == 4);
    for (std::size_t i = 1; i < many.size(); ++i) {
      auto r = gs::receive_response(many[i], 5s);
      REQUIRE_FALSE(r);
      REQUIRE_THROWS_AS(r.value(), ember::call_refused);
    }
  });
}

namespace {
/// A server that fans requests out itself and gathers the replies in its
/// catch-all handle_info with check_response.
struct gatherer : gs::behaviour<gatherer> {
  gs::request_id_collection<long, int> pending;
  std::vector<std::pair<int, long>> got;
  ember::pid reporter;
  std::vector<ember::pid> to;
  gatherer(std::vector<ember::pid> t, ember::pid r) : reporter(r), to(std::move(t)) {}
  next init() {
    int label = 0;
    for (const auto& p : to) gs::send_request(gs::server<kv>(p), get{}, label++, pending);
    return {};
  }
  void handle_info(gs::any_message& m) {
    auto r = gs::check_response(m, pending, gs::on_response::remove);
    if (r.no_reply() || r.no_request()) return;
    got.emplace_back(r.label(), r.response().value());
    if (pending.empty()) ember::send(reporter, got);
  }
};
}  // namespace

TEST_CASE("gen_server: request-id collections: each response comes with its label — remove takes it out — an empty "
          "collection says no_request",
          "[gen_server][request]") {
  in_process(2, [] {
    std::vector<gs::server<kv>> servers;
    for (long i = 0; i < 5; ++i) servers.push_back(gs::start<kv>(i * 10).server());
    gs::request_id_collection<long, std::string> all;
    for (long i = 0; i < 5; ++i) gs::send_request(servers[i], get{}, "s" + std::to_string(i), all);
    REQUIRE(all.size() == 5);
    REQUIRE(all.to_list()[3].second == "s3");
    std::set<std::string> labels;
    // keep: the first response stays in the collection.
    auto first = gs::wait_response(all, 5s, gs::on_response::keep);
    REQUIRE(first);
    REQUIRE(all.size() == 5);
    REQUIRE(first.response().value() == std::stol(first.label().substr(1)) * 10);
    all.erase(first.id().ref());
    labels.insert(first.label());
    while (auto r = gs::receive_response(all, 5s, gs::on_response::remove)) {
      REQUIRE(r.response().value() == std::stol(r.label().substr(1)) * 10);
      labels.insert(r.label());
    }
    REQUIRE(labels == std::set<std::string>{"s0", "s1", "s2", "s3", "s4"});
    REQUIRE(all.empty());
    REQUIRE(gs::wait_response(all, 0ms, gs::on_response::remove).no_request());
    REQUIRE(gs::receive_response(all, 0ms, gs::on_response::remove).no_request());

    // receive_response's timeout gives up every request in the collection.
    auto h = gs::start<kv>(3);
    gs::request_id_collection<long, int> slow;
    gs::send_request(h.server(), hold{}, 1, slow);
    gs::send_request(h.server(), hold{}, 2, slow);
    REQUIRE(gs::wait_response(slow, 0ms, gs::on_response::remove).timed_out());
    REQUIRE(slow.size() == 2);
    REQUIRE(gs::receive_response(slow, 0ms, gs::on_response::remove).timed_out());
    REQUIRE(slow.empty());
    gs::cast(h.server(), release_all{});
    REQUIRE(gs::call(h.server(), get{}) == 3);
    REQUIRE(mailbox_empty());
    auto twice = gs::send_request(servers[0], get{});
    all.add(twice, "x");
    REQUIRE_THROWS_AS(all.add(twice, "y"), ember::bad_argument);
    REQUIRE(gs::receive_response(twice, 5s).value() == 0);
  });
}

TEST_CASE("gen_server: a server can have many requests in flight and match the replies in its catch-all "
          "handle_info with check_response",
          "[gen_server][request]") {
  in_process(2, [] {
    std::vector<ember::pid> to;
    for (long i = 1; i <= 4; ++i) to.push_back(gs::start<kv>(i).pid());
    auto g = gs::start<gatherer>(to, ember::self());
    REQUIRE(g);
    auto got = ember::receive([](std::vector<std::pair<int, long>> v) { return v; });
    REQUIRE(got.size() == 4);
    for (const auto& [label, value] : got) REQUIRE(value == label + 1);
  });
}

// ---- the start API -----------------------------------------------------------

namespace {
struct maybe : gs::behaviour<maybe> {
  explicit maybe(bool ignore_it) : ignore_it_(ignore_it) {}
  next init() { return ignore_it_ ? ignore() : next{}; }
  long handle_call(get) { return 1; }
  long handle_call(int) { return 0; }
  call_reply<long> handle_call(quit) { return reply_with(0L).then(0); }
  next handle_continue(int) { return ignore(); }  // not from init: an error
  bool ignore_it_;
};
}  // namespace

TEST_CASE("gen_server: ignore from init: start returns ignored, nothing runs, no name is taken — a supervisor keeps "
          "the child as not running",
          "[gen_server][otp]") {
  in_process(2, [] {
    ember::process_flag(ember::trap_exit, true);
    auto s = gs::start_link<maybe>(gs::name{"maybe"}, true);
    REQUIRE_FALSE(s);
    REQUIRE(s.ignored());
    REQUIRE(s.error() == ember::exit_reason::error("ignore"));
    REQUIRE_FALSE(ember::whereis("maybe"));
    REQUIRE(ember::process_info(ember::self())->message_queue_len == 0);  // no exit_message
    auto again = gs::start<maybe>(gs::name{"maybe"}, false);  // the name is free
    REQUIRE(again);

    auto sv = sup::start_link({}, {sup::worker<maybe>("ignored", true), sup::worker<maybe>("running", false)});
    REQUIRE(sv);
    auto children = sup::which_children(sv.server());
    REQUIRE(children.size() == 2);
    REQUIRE(children[0].pid.is_null());
    REQUIRE(children[0].status == sup::child_status::stopped);
    REQUIRE_FALSE(children[1].pid.is_null());
    auto ds = dyn::start_link();
    auto c = dyn::start_child<maybe>(ds.server(), true);
    REQUIRE(c);
    REQUIRE(c.pid().is_null());
    REQUIRE(dyn::count_children(ds.server()).specs == 0);

    // ignore() from another handler is an error: the server crashes.
    auto m = ember::monitor(again.pid());
    ember::unlink(again.pid());
    REQUIRE(gs::call(again.server(), quit{}) == 0);
    auto d = ember::receive([m](ember::down d) {
      REQUIRE(d.ref == m);
      return d;
    });
    REQUIRE(d.reason.text().find("ignore() is a result of init only") != std::string::npos);
  });
}

TEST_CASE("gen_server: start_monitor monitors the server from its spawn — a failed start leaves no monitor and no "
          "down",
          "[gen_server][otp]") {
  in_process(2, [] {
    auto s = gs::start_monitor<kv>(5);
    REQUIRE(s);
    REQUIRE(s.monitor().target == s.pid());
    REQUIRE(ember::process_info(ember::self())->monitors == std::vector<ember::pid>{s.pid()});
    REQUIRE(gs::call(s.server(), get{}) == 5);
    try {
      gs::call(s.server(), quit{});
    } catch (const ember::call_exited&) {
    }
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.ref == s.monitor());
    REQUIRE(d.reason == ember::exit_reason::shutdown("quit"));

    struct failing : gs::behaviour<failing> {
      next init() { return stop_with(ember::exit_reason::error("no")); }
    };
    auto f = gs::start_monitor<failing>();
    REQUIRE_FALSE(f);
    REQUIRE(f.error() == ember::exit_reason::error("no"));
    REQUIRE(ember::process_info(ember::self())->monitors.empty());
    REQUIRE(ember::process_info(ember::self())->message_queue_len == 0);
    auto n = gs::start_monitor<kv>(gs::name{"mon"}, 1);
    REQUIRE(n);
    REQUIRE(gs::start_monitor<kv>(gs::name{"mon"}, 1).already_started());
    REQUIRE(ember::process_info(ember::self())->monitors.size() == 1);
  });
}

namespace {
struct slow_init : gs::behaviour<slow_init> {
  std::shared_ptr<std::atomic<int>> inits;
  explicit slow_init(std::shared_ptr<std::atomic<int>> i) : inits(std::move(i)) {}
  next init() {
    inits->fetch_add(1);
    ember::receive([](get) {});  // never comes
    return {};
  }
};
}  // namespace

TEST_CASE("gen_server: a start timeout kills a server still in init and start fails with timed_out — the starter "
          "is left nothing",
          "[gen_server][otp]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto inits = std::make_shared<std::atomic<int>>(0);
  auto result = std::make_shared<std::atomic<int>>(0);
  auto p = rt.spawn_monitor([inits, result] {
    ember::process_flag(ember::trap_exit, true);
    auto s = gs::start_link<slow_init>(gs::options{.timeout = 5s}, inits);
    REQUIRE_FALSE(s);
    REQUIRE(s.timed_out());
    REQUIRE(s.error() == ember::exit_reason::error("timeout"));
    REQUIRE_FALSE(ember::process_info(s.pid()));  // killed, gone
    REQUIRE(ember::process_info(ember::self())->message_queue_len == 0);
    REQUIRE(ember::process_info(ember::self())->links.empty());
    REQUIRE_THROWS_AS(gs::start<slow_init>(gs::options{.timeout = -3ms}, inits), ember::bad_argument);
    result->store(1);
  });
  clock->settle();
  REQUIRE(inits->load() == 1);
  clock->advance(4999ms);
  REQUIRE(result->load() == 0);
  clock->advance(1ms);
  REQUIRE(result->load() == 1);
  REQUIRE(p.wait().is_normal());
}

namespace {
struct reminder {
  std::string text;
};
struct nagger : gs::behaviour<nagger> {
  std::shared_ptr<std::vector<std::string>> seen;
  explicit nagger(std::shared_ptr<std::vector<std::string>> s) : seen(std::move(s)) {}
  next init() { return next{}.after(10s, reminder{"first"}); }
  call_reply<long> handle_call(get) { return reply_with(long(seen->size())).after(3s, reminder{"after get"}); }
  next handle_info(reminder r) {
    seen->push_back(r.text);
    if (r.text == "first") return next{}.after(1s);  // then a plain timeout
    return {};
  }
  void handle_info(gs::server_timeout) { seen->push_back("server_timeout"); }
};
}  // namespace

TEST_CASE("gen_server: after(t, msg) delivers msg to handle_info when no message comes within t — any message "
          "cancels it",
          "[gen_server][otp]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto seen = std::make_shared<std::vector<std::string>>();
  auto srv = std::make_shared<ember::pid>();
  auto p = rt.spawn_monitor([seen, srv] {
    auto s = gs::start<nagger>(seen);
    *srv = s.pid();
    ember::receive([](get) {});
    REQUIRE(gs::call(s.server(), get{}) == 2);
    ember::receive([](get) {});
    REQUIRE(gs::call(s.server(), get{}) == 2);  // cancels the 3 s reminder, and arms a new one
    ember::receive([](get) {});
  });
  clock->settle();
  clock->advance(9999ms);
  REQUIRE(seen->empty());
  clock->advance(1ms);
  REQUIRE(*seen == std::vector<std::string>{"first"});
  clock->advance(1s);
  REQUIRE(*seen == std::vector<std::string>{"first", "server_timeout"});
  ember::send(p.pid, get{});
  clock->settle();  // get -> after(3s, "after get")
  clock->advance(2s);
  ember::send(p.pid, get{});
  clock->settle();  // a call at 2 s cancels it, and arms a new one
  clock->advance(2999ms);
  REQUIRE(seen->size() == 2);
  clock->advance(1ms);
  REQUIRE(*seen == std::vector<std::string>{"first", "server_timeout", "after get"});
  ember::send(p.pid, get{});
  REQUIRE(p.wait().is_normal());
}

namespace {
struct on_schedule : gs::behaviour<on_schedule> {
  std::shared_ptr<std::vector<std::string>> seen;
  ember::time_point due;
  explicit on_schedule(std::shared_ptr<std::vector<std::string>> s) : seen(std::move(s)) {}
  std::string at() const {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(ember::now().time_since_epoch()).count());
  }
  next init() {
    due = ember::now() + 10s;
    return next{}.after(due);
  }
  next handle_info(gs::server_timeout) {
    seen->push_back("timeout@" + at());
    if (seen->size() == 3) return next{}.after(0ms, reminder{"zero"});
    due += 1s;
    return next{}.after(due);
  }
  next handle_info(reminder r) {
    seen->push_back(r.text + "@" + at());
    if (r.text == "zero") return next{}.after(ember::now() - 1s, reminder{"past"});
    return {};
  }
};
}  // namespace

TEST_CASE("gen_server: after(time_point) times out at that time on the runtime's clock — after(0) and a time "
          "already passed time out as soon as the mailbox is empty",
          "[gen_server][otp]") {
  auto clock = std::make_shared<ember::manual_clock>();
  ember::runtime rt(ember_test::manual_opts(clock));
  auto seen = std::make_shared<std::vector<std::string>>();
  auto p = rt.spawn_monitor([seen] {
    auto s = gs::start<on_schedule>(seen);
    REQUIRE(s);
    ember::receive([](get) {});
    gs::stop(s.server());
  });
  clock->settle();
  clock->advance(9999ms);
  REQUIRE(seen->empty());
  clock->advance(1ms);
  REQUIRE(*seen == std::vector<std::string>{"timeout@10000"});
  clock->advance(1s);
  REQUIRE(*seen == std::vector<std::string>{"timeout@10000", "timeout@11000"});
  clock->advance(1s);
  REQUIRE(*seen ==
          std::vector<std::string>{"timeout@10000", "timeout@11000", "timeout@12000", "zero@12000", "past@12000"});
  ember::send(p.pid, get{});
  REQUIRE(p.wait().is_normal());
}
