// Monitors: one `down` per monitor, noproc for the dead, demonitor (+flush),
// spawn_monitor — OTP's rules for erlang:monitor/2 and demonitor/2.
#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "support/support.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using ember_test::opts;
using ember_test::scaled;

namespace {
/// A down for ref already in the mailbox, or none (polls, never waits).
std::optional<ember::down> poll_down(const ember::monitor_ref& ref) {
  return ember::receive(
      ember::when([&](const ember::down& d) { return d.ref == ref; },
                  [](ember::down d) { return std::optional<ember::down>(std::move(d)); }),
      ember::after(0ms, [] { return std::optional<ember::down>(); }));
}
struct go {};
}  // namespace

TEST_CASE("monitor: a down carries the ref, the pid and the exit reason", "[monitor]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    auto p = ember::spawn([] {
      ember::receive([](go) {});
      throw std::runtime_error("fell over");
    });
    auto ref = ember::monitor(p);
    ember::send(p, go{});
    auto d = ember::receive([](ember::down d) { return d; });
    REQUIRE(d.ref == ref);
    REQUIRE(d.who == p);
    REQUIRE(d.reason == ember::exit_reason::error("fell over"));
  });
}

TEST_CASE("monitor: exactly one down per monitor", "[monitor]") {
  in_process(2, [] {
    auto p = ember::spawn([] { ember::receive([](go) {}); });
    auto r1 = ember::monitor(p);
    auto r2 = ember::monitor(p);  // two monitors, two downs
    REQUIRE_FALSE(r1 == r2);
    ember::send(p, go{});
    auto a = ember::receive([](ember::down d) { return d; });
    auto b = ember::receive([](ember::down d) { return d; });
    REQUIRE((a.ref == r1 || a.ref == r2));
    REQUIRE((b.ref == r1 || b.ref == r2));
    REQUIRE_FALSE(a.ref == b.ref);
    REQUIRE(a.reason.is_normal());
    REQUIRE_FALSE(poll_down(r1));
    REQUIRE_FALSE(poll_down(r2));
  });
}

TEST_CASE("monitor: a dead pid gives down with noproc at once", "[monitor]") {
  in_process(2, [] {
    auto [p, watch] = ember::spawn_monitor([] {});
    ember::receive([](ember::down) {});  // p is gone
    auto ref = ember::monitor(p);
    auto d = poll_down(ref);  // already there: no waiting
    REQUIRE(d);
    REQUIRE(d->reason == ember::exit_reason::noproc());
    REQUIRE(d->who == p);
    auto null_ref = ember::monitor(ember::pid{});
    REQUIRE(poll_down(null_ref)->reason == ember::exit_reason::noproc());
    (void)watch;
  });
}

TEST_CASE("monitor: spawn_monitor sees the child's real reason however fast it exits", "[monitor]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  in_process(workers, [] {
    for (int i = 0; i < 200; ++i) {
      auto [p, ref] = ember::spawn_monitor([] { ember::exit(ember::exit_reason::shutdown("quick")); });
      auto d = ember::receive(ember::when([&](const ember::down& d) { return d.ref == ref; },
                                          [](ember::down d) { return d; }));
      REQUIRE(d.who == p);
      REQUIRE(d.reason == ember::exit_reason::shutdown("quick"));
    }
  });
}

TEST_CASE("demonitor: no down arrives after it", "[monitor]") {
  in_process(2, [] {
    auto p = ember::spawn([] { ember::receive([](go) {}); });
    auto ref = ember::monitor(p);
    auto witness = ember::monitor(p);
    REQUIRE(ember::demonitor(ref));
    ember::send(p, go{});
    ember::receive(ember::when([&](const ember::down& d) { return d.ref == witness; }, [](ember::down) {}));
    // p has exited and its downs were sent before the witness's arrived.
    REQUIRE_FALSE(poll_down(ref));
    REQUIRE_FALSE(ember::demonitor(ref));  // no longer active
  });
}

TEST_CASE("demonitor with flush removes a down already delivered", "[monitor]") {
  in_process(2, [] {
    auto [p, ref] = ember::spawn_monitor([] {});
    auto witness = ember::monitor(p);  // noproc or normal; either way it comes after ref's down
    ember::receive(ember::when([&](const ember::down& d) { return d.ref == witness; }, [](ember::down) {}));
    REQUIRE_FALSE(ember::demonitor(ref, ember::demonitor_option::flush));
    REQUIRE_FALSE(poll_down(ref));
  });
}

TEST_CASE("monitor calls outside a process throw not_in_process", "[monitor][misuse]") {
  CHECK_THROWS_AS(ember::monitor(ember::pid{}), ember::not_in_process);
  CHECK_THROWS_AS(ember::demonitor(ember::monitor_ref{}), ember::not_in_process);
  CHECK_THROWS_AS(ember::spawn_monitor([] {}), ember::not_in_process);
}

TEST_CASE("stress: processes monitoring and dying at random get every down exactly once", "[monitor][stress]") {
  unsigned workers = GENERATE(1u, 2u, 4u);
  const int n = int(scaled(2000, 300));
  std::atomic<long> downs{0};
  std::atomic<long> expected{0};
  in_process(workers, [&] {
    auto me = ember::self();
    auto targets = std::make_shared<std::vector<ember::pid>>();
    for (int i = 0; i < n; ++i)
      targets->push_back(ember::spawn([] { ember::receive([](go) {}); }));
    for (int w = 0; w < n; ++w)
      ember::spawn([&, me, w, targets] {
        // Watch a few targets, drop one watch again with flush, wait for the rest.
        std::vector<ember::monitor_ref> refs;
        for (int k = 0; k < 4; ++k) refs.push_back(ember::monitor((*targets)[(w * 7 + k * 13) % targets->size()]));
        ember::demonitor(refs.back(), ember::demonitor_option::flush);
        refs.pop_back();
        expected += long(refs.size());
        ember::send(me, 1);
        long got = 0;
        while (got < long(refs.size())) {
          ember::receive([&](const ember::down& d) {
            for (auto& r : refs) got += r == d.ref;
          });
        }
        downs += got;
        // Nothing more may come for these refs (nor the flushed one).
        bool extra = ember::receive([](const ember::down&) { return true; }, ember::after(0ms, [] { return false; }));
        if (extra) downs += 1000000;
        ember::send(me, 2);
      });
    for (int i = 0; i < n; ++i) ember::receive(ember::when([](int v) { return v == 1; }, [](int) {}));
    for (auto& t : *targets) ember::send(t, go{});
    for (int i = 0; i < n; ++i) ember::receive(ember::when([](int v) { return v == 2; }, [](int) {}));
  });
  CHECK(downs == expected);
  CHECK(expected == 3L * n);
}
