// Private heaps — the rules at the top of include/ember/heap.hpp: each
// process's heap is freed whole when it ends, is accounted in process_info,
// can be capped (the process alone is killed with max_heap_size_exceeded,
// logged with its figures); a gen_server's state lives in it; a pmr value
// sent from a heap is copied out of it.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory_resource>
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

struct ping {
  ember::pid from;
};
struct pong {};
struct go {};

/// A process that answers ping with pong until told to stop.
void ponger() {
  for (;;) {
    bool more = ember::receive([](ping p) {
      ember::send(p.from, pong{});
      return true;
    }, [](go) { return false; });
    if (!more) return;
  }
}

}  // namespace

TEST_CASE("heap: a process past its cap dies alone with max_heap_size_exceeded, and its memory goes back",
          "[heap]") {
  std::ostringstream log;
  auto o = opts(2);
  o.logger = std::make_shared<spdlog::logger>("heap", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  ember::runtime rt(o);
  const std::size_t cap = scaled(256, 32) << 20;  // 256 MiB (32 under sanitizers)
  std::size_t before = 0;
  std::size_t held = 0;
  std::size_t peak = 0;
  auto r = rt.spawn_monitor([&] {
              std::vector<ember::pid> neighbours;
              for (int i = 0; i < 4; ++i) neighbours.push_back(ember::spawn(ponger));
              for (ember::pid n : neighbours) {
                ember::send(n, ping{ember::self()});
                ember::receive<pong>();
              }
              // The baseline: the runtime and the neighbours are up and have run.
              before = resident_bytes();
              ember::spawn_options so;
              so.max_heap_size = cap;
              const ember::pid parent = ember::self();
              ember::pid hog = ember::spawn(
                  [parent, cap] {
                    // Allocate and touch 1 MiB blocks for ever: only the cap ends it.
                    std::pmr::vector<std::pmr::vector<char>> blocks(ember::heap_allocator());
                    bool shown = false;
                    for (std::size_t i = 0;; ++i) {
                      blocks.emplace_back(std::size_t(1) << 20, char(i));
                      if (!shown && ember::heap().bytes() >= cap / 4 * 3) {
                        shown = true;
                        ember::send(parent, go{});
                        ember::receive<go>();  // the parent looks at it meanwhile
                      }
                    }
                  },
                  so);
              const ember::monitor_ref m = ember::monitor(hog);
              ember::receive<go>();
              auto info = ember::process_info(hog);
              REQUIRE(info);
              CHECK(info->max_heap_size == cap);
              CHECK(info->heap_size >= cap / 4 * 3);
              CHECK(info->memory > info->heap_size);
              held = resident_bytes();  // the hog's blocks are touched: resident
              ember::send(hog, go{});
              const ember::down d = ember::receive([&](ember::down x) { return x; });
              REQUIRE(d.ref == m);
              peak = resident_bytes();
              const auto* why = d.reason.value<ember::max_heap_size_exceeded>();
              REQUIRE(why != nullptr);
              CHECK(why->limit == cap);
              CHECK(why->heap_bytes <= cap);
              CHECK(why->heap_bytes + why->requested > cap);
              CHECK(d.reason.text().find("max_heap_size") != std::string::npos);
              // The neighbours live on and answer.
              for (ember::pid n : neighbours) {
                ember::send(n, ping{ember::self()});
                ember::receive<pong>();
                ember::send(n, go{});
              }
            });
  CHECK(r.wait().is_normal());
  // The heap was freed before the `down` was sent: what the hog held is
  // back with the system, not just with the C library.
  const std::size_t after = resident_bytes();
  INFO("resident before " << before << ", hog at 3/4 of its cap " << held << ", at the down " << peak << ", after "
                           << after);
  CHECK(held > before + cap / 2);
  CHECK(after < before + cap / 8);
  CHECK(rt.heaps() == 0);
  CHECK(rt.heap_bytes() == 0);
  // Logged with the pid and the figures.
  CHECK(log.str().find("killed: max_heap_size") != std::string::npos);
  CHECK(log.str().find(std::to_string(cap)) != std::string::npos);
}

TEST_CASE("heap: what a process leaves in its heap is freed when it ends (1,000,000 processes)", "[heap]") {
  ember::runtime rt(opts(2));
  const std::size_t n = scaled(1000000, 20000);
  auto r = rt.spawn_monitor([n] {
    std::size_t done = 0;
    std::size_t spawned = 0;
    // At most 10,000 alive at once; each allocates, frees some, keeps some
    // (never freed) and ends.  Its `down` (or a noproc one) comes after its
    // heap is gone.
    while (done < n) {
      while (spawned < n && spawned - done < 10000) {
        ember::monitor(ember::spawn([i = spawned] {
          std::pmr::vector<int> kept(ember::heap_allocator());
          kept.resize(16 + i % 64);
          void* lost = ember::heap().allocate(100 + i % 5000);  // never deallocated
          std::memset(lost, 1, 100);
          std::pmr::string s("a string long enough to allocate from the heap", ember::heap_allocator());
          std::pmr::vector<int> freed(100, 7, ember::heap_allocator());
          freed = {};
          ember::checkpoint();
        }));
        ++spawned;
      }
      ember::receive<ember::down>();
      ++done;
    }
  });
  CHECK(r.wait().is_normal());
  CHECK(rt.heaps() == 0);
  CHECK(rt.heap_bytes() == 0);
}

TEST_CASE("heap: process_info counts the heap as it grows and shrinks", "[heap]") {
  in_process(1, [] {
    CHECK(ember::process_info(ember::self())->heap_size == 0);  // none before first use
    ember::process_heap& h = ember::heap();
    void* big = h.allocate(std::size_t(1) << 20);
    auto info = ember::process_info(ember::self());
    REQUIRE(info);
    CHECK(info->heap_size >= (std::size_t(1) << 20));
    CHECK(info->heap_size == h.bytes());
    CHECK(info->memory >= info->heap_size);
    h.deallocate(big, std::size_t(1) << 20);
    CHECK(ember::process_info(ember::self())->heap_size < 4096);
    // Small blocks are reused after a free.
    void* a = h.allocate(48);
    h.deallocate(a, 48);
    CHECK(h.allocate(48) == a);
  });
}

namespace {
struct add {
  int n;
};
struct size_q {};
/// A server whose state takes a std::pmr allocator: its vector lives in
/// the server's heap.
struct hoarder : ember::gen_server::behaviour<hoarder> {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  std::pmr::vector<int> items;
  std::pmr::memory_resource* where;
  hoarder(std::allocator_arg_t, const allocator_type& a) : items(a), where(a.resource()) {}
  std::size_t handle_call(add a, const ember::gen_server::from&) {
    for (int i = 0; i < a.n; ++i) items.push_back(i);
    return items.size();
  }
  bool handle_call(size_q, const ember::gen_server::from&) { return where == &ember::heap(); }
};
}  // namespace

TEST_CASE("heap: a gen_server's state lives in its heap, past the cap the call sees it exit", "[heap][gen_server]") {
  in_process(1, [] {
    auto s = ember::gen_server::start<hoarder>(ember::gen_server::options{.spawn = {.max_heap_size = 4u << 20}});
    REQUIRE(s);
    CHECK(ember::gen_server::call(s.server(), size_q{}));  // the allocator is the server's own heap
    CHECK(ember::gen_server::call(s.server(), add{100000}) == 100000u);
    auto info = ember::process_info(s.pid());
    REQUIRE(info);
    CHECK(info->heap_size >= 400000u);
    CHECK(info->max_heap_size == (4u << 20));
    const ember::monitor_ref m = ember::monitor(s.pid());
    try {
      ember::gen_server::call(s.server(), add{2000000});
      FAIL("the call returned");
    } catch (const ember::call_exited& e) {
      REQUIRE(e.reason().value<ember::max_heap_size_exceeded>() != nullptr);
      CHECK(e.reason().value<ember::max_heap_size_exceeded>()->limit == (4u << 20));
    }
    const ember::down d = ember::receive<ember::down>();
    CHECK(d.ref == m);
    CHECK(d.reason.value<ember::max_heap_size_exceeded>() != nullptr);
  });
}

TEST_CASE("heap: a runtime default cap applies unless the spawn options lift it", "[heap]") {
  auto o = opts(1);
  o.max_heap_size = 1 << 20;
  ember::runtime rt(o);
  auto capped = rt.spawn_monitor([] { static_cast<void>(ember::heap().allocate(2 << 20)); });
  CHECK(capped.wait().value<ember::max_heap_size_exceeded>() != nullptr);
  ember::spawn_options so;
  so.max_heap_size = ember::unlimited;
  auto lifted = rt.spawn_monitor([] { static_cast<void>(ember::heap().allocate(2 << 20)); }, so);
  CHECK(lifted.wait().is_normal());
  CHECK(rt.heap_bytes() == 0);
}

TEST_CASE("heap: a pmr message sent from a heap is copied out of it", "[heap][send]") {
  in_process(2, [] {
    const ember::pid me = ember::self();
    const ember::pid sender = ember::spawn([me] {
      std::pmr::string s(200, 'x', ember::heap_allocator());
      ember::send(me, s);
      ember::send(me, std::move(s));
    });
    const ember::monitor_ref m = ember::monitor(sender);
    ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
    // The sender and its heap are gone; the strings are intact and their
    // memory is the global heap's.
    for (int i = 0; i < 2; ++i) {
      std::pmr::string got = ember::receive<std::pmr::string>();
      CHECK(std::string_view(got) == std::string(200, 'x'));
      CHECK(got.get_allocator().resource() == std::pmr::get_default_resource());
    }
  });
}

TEST_CASE("heap: misuse", "[heap][misuse]") {
  CHECK_THROWS_AS(ember::heap(), ember::not_in_process);
  in_process(1, [] {
    ember::registry<std::string> reg(ember::registry_keys::unique);
    CHECK_THROWS_AS(ember::gen_server::start<hoarder>(
                        ember::gen_server::options{.name = "a", .via = ember::via(reg, std::string("b"))}),
                    ember::bad_argument);
  });
}
