#include <catch2/catch.hpp>

#include <sstream>
#include <unordered_set>

#include "ember/exit_reason.hpp"
#include "ember/pid.hpp"

TEST_CASE("pid: prints as <0.N.0> with fmt and ostream", "[pid]") {
  ember::pid p(nullptr, 42);
  CHECK(fmt::format("{}", p) == "<0.42.0>");
  std::ostringstream os;
  os << p;
  CHECK(os.str() == "<0.42.0>");
  CHECK(fmt::format("{}", ember::pid{}) == "<0.0.0>");
}

TEST_CASE("pid: compares and hashes by serial", "[pid]") {
  ember::pid a(nullptr, 1), b(nullptr, 2), a2(nullptr, 1);
  CHECK(a == a2);
  CHECK(a != b);
  CHECK(a < b);
  std::unordered_set<ember::pid> s{a, b, a2};
  CHECK(s.size() == 2);
  CHECK_FALSE(ember::pid{});
  CHECK(a);
  CHECK(sizeof(ember::pid) <= 16);
}

TEST_CASE("exit_reason: Erlang spelling", "[exit_reason]") {
  CHECK(ember::exit_reason::normal().to_string() == "normal");
  CHECK(ember::exit_reason::shutdown().to_string() == "shutdown");
  CHECK(ember::exit_reason::shutdown("db_down").to_string() == "{shutdown,db_down}");
  CHECK(ember::exit_reason::killed().to_string() == "killed");
  CHECK(ember::exit_reason::error("bad").to_string() == "bad");
  CHECK(fmt::format("{}", ember::exit_reason::noproc()) == "noproc");
}
