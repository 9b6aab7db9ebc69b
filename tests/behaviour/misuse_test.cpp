// Misuse and bad input get typed errors that say what was wrong.
#include <catch2/catch.hpp>

#include "support/support.hpp"

using ember_test::opts;

TEST_CASE("process-context calls outside a process throw not_in_process", "[misuse]") {
  CHECK_THROWS_AS(ember::self(), ember::not_in_process);
  CHECK_THROWS_AS(ember::receive<int>(), ember::not_in_process);
  CHECK_THROWS_AS(ember::yield(), ember::not_in_process);
  CHECK_THROWS_AS(ember::exit(ember::exit_reason::normal()), ember::not_in_process);
  CHECK_THROWS_AS(ember::spawn([] {}), ember::not_in_process);
  CHECK_THROWS_WITH(ember::receive<int>(), Catch::Contains("receive") && Catch::Contains("inside an ember process"));
  CHECK_NOTHROW(ember::checkpoint());  // a no-op outside a process
}

TEST_CASE("spawn on a stopped runtime throws runtime_stopped", "[misuse]") {
  ember::runtime rt(opts(1));
  rt.stop();
  CHECK_THROWS_AS(rt.spawn([] {}), ember::runtime_stopped);
  CHECK_THROWS_WITH(rt.spawn([] {}), Catch::Contains("stopping or stopped"));
  CHECK_NOTHROW(rt.stop());  // idempotent
}

TEST_CASE("zero or absurd stack sizes are refused with invalid_option", "[misuse]") {
  {
    auto o = opts(1);
    o.stack_size = 0;
    CHECK_THROWS_AS(ember::runtime(o), ember::invalid_option);
    o.stack_size = std::size_t{1} << 40;
    CHECK_THROWS_WITH(ember::runtime(o), Catch::Contains("stack_size"));
  }
  ember::runtime rt(opts(1));
  ember::spawn_options so;
  so.stack_size = 100;
  CHECK_THROWS_AS(rt.spawn([] {}, so), ember::invalid_option);
  so.stack_size = std::size_t{1} << 40;
  CHECK_THROWS_WITH(rt.spawn([] {}, so), Catch::Contains("spawn_options::stack_size"));
  // Nothing was leaked or left half-made: the runtime still works.
  CHECK(rt.process_count() == 0);
  CHECK(rt.spawn_monitor([] {}).wait().is_normal());
}

TEST_CASE("other out-of-range runtime options are refused", "[misuse]") {
  auto o = opts(5000);
  CHECK_THROWS_WITH(ember::runtime(o), Catch::Contains("workers"));
  o = opts(1);
  o.reductions = 0;
  CHECK_THROWS_WITH(ember::runtime(o), Catch::Contains("reductions"));
}

TEST_CASE("wait() and stop() from inside a process of the same runtime throw", "[misuse]") {
  ember::runtime rt(opts(1));
  std::atomic<int> errors{0};
  auto p = rt.spawn_monitor([&] {
    try {
      rt.wait(ember::self());
    } catch (const ember::error&) {
      ++errors;
    }
    try {
      rt.stop();
    } catch (const ember::error&) {
      ++errors;
    }
  });
  p.wait();
  CHECK(errors == 2);
}

TEST_CASE("a spawn whose callable throws on copy leaves nothing behind", "[misuse]") {
  struct bad_copy {
    bad_copy() = default;
    bad_copy(const bad_copy&) { throw std::runtime_error("no copies"); }
    void operator()() const {}
  };
  ember::runtime rt(opts(1));
  bad_copy b;
  CHECK_THROWS_WITH(rt.spawn(b), "no copies");
  CHECK(rt.process_count() == 0);
}
