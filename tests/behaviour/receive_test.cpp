// receive: typed clauses, guards, selective receive, timeouts, ordering.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;


TEST_CASE("receive matches by type and moves the value in", "[receive]") {
  in_process(1, [] {
    auto me = ember::self();
    ember::send(me, std::string("hello"));
    ember::send(me, std::make_unique<int>(5));  // move-only message
    auto s = ember::receive([](std::string v) { return v; });
    REQUIRE(s == "hello");
    auto p = ember::receive<std::unique_ptr<int>>();
    REQUIRE(*p == 5);
  });
}

TEST_CASE("selective receive leaves unmatched messages in order for a later receive", "[receive]") {
  in_process(1, [] {
    auto me = ember::self();
    for (int i = 0; i < 5; ++i) ember::send(me, i);
    ember::send(me, std::string("x"));
    ember::send(me, 5);
    // Take the string first: the ints stay, in order.
    REQUIRE(ember::receive<std::string>() == "x");
    // A guard picks the first int >= 3.
    int v = ember::receive(ember::when([](int x) { return x >= 3; }, [](int x) { return x; }));
    REQUIRE(v == 3);
    std::vector<int> rest;
    for (int i = 0; i < 5; ++i) rest.push_back(ember::receive<int>());
    REQUIRE(rest == std::vector<int>{0, 1, 2, 4, 5});
  });
}

TEST_CASE("clauses are tried in order for the oldest message first", "[receive]") {
  in_process(1, [] {
    auto me = ember::self();
    ember::send(me, 1.5);
    ember::send(me, 7);
    // Both clauses could match something; the oldest message (the double) wins.
    std::string got = ember::receive([](int) { return std::string("int"); },
                                     [](double) { return std::string("double"); });
    REQUIRE(got == "double");
  });
}

TEST_CASE("receive with after() times out when nothing matches", "[receive][timeout]") {
  in_process(2, [] {
    auto me = ember::self();
    ember::send(me, std::string("not an int"));
    auto t0 = std::chrono::steady_clock::now();
    int r = ember::receive([](int x) { return x; }, ember::after(30ms, [] { return -1; }));
    auto dt = std::chrono::steady_clock::now() - t0;
    REQUIRE(r == -1);
    REQUIRE(dt >= 30ms);
    // The unmatched message is still there.
    REQUIRE(ember::receive<std::string>() == "not an int");
  });
}

TEST_CASE("a message arriving before the timeout wins", "[receive][timeout]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto me = ember::self();
    auto helper = ember::spawn([me] {
      ember::receive([](int) {});
      ember::send(me, 99);
    });
    ember::send(helper, 1);
    int r = ember::receive([](int x) { return x; }, ember::after(10s, [] { return -1; }));
    REQUIRE(r == 99);
  });
}

TEST_CASE("after(0) polls: it never waits", "[receive][timeout]") {
  in_process(1, [] {
    auto me = ember::self();
    REQUIRE(ember::receive([](int) { return true; }, ember::after(0ms, [] { return false; })) == false);
    ember::send(me, 3);
    REQUIRE(ember::receive([](int) { return true; }, ember::after(0ms, [] { return false; })) == true);
  });
}

TEST_CASE("many timed receives in a row each time out", "[receive][timeout]") {
  in_process(2, [] {
    int timeouts = 0;
    for (int i = 0; i < 20; ++i)
      timeouts += ember::receive([](int) { return 0; }, ember::after(1ms, [] { return 1; }));
    REQUIRE(timeouts == 20);
  });
}

TEST_CASE("order between one sender and one receiver is kept with many concurrent senders", "[receive][order]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int senders = 50;
  const int per = int(scaled(2000, 200));
  in_process(workers, [=] {
    auto me = ember::self();
    for (int s = 0; s < senders; ++s)
      ember::spawn([me, s, per] {
        for (int i = 0; i < per; ++i) ember::send(me, std::pair<int, int>{s, i});
      });
    std::vector<int> next(senders, 0);
    bool in_order = true;
    for (int k = 0; k < senders * per; ++k) {
      auto [s, i] = ember::receive<std::pair<int, int>>();
      in_order = in_order && (i == next[s]);
      next[s] = i + 1;
    }
    REQUIRE(in_order);
  });
}

TEST_CASE("messages sent from outside the runtime arrive in order", "[receive][order]") {
  ember::runtime rt(opts(2));
  std::atomic<bool> ok{false};
  auto p = rt.spawn_monitor([&] {
    bool good = true;
    for (int i = 0; i < 1000; ++i) good = good && ember::receive<int>() == i;
    ok = good;
  });
  for (int i = 0; i < 1000; ++i) ember::send(p.pid, i);
  p.wait();
  CHECK(ok);
}
