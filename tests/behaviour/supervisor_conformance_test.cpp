// supervisor and dynamic_supervisor conformance (include/ember/supervisor.hpp,
// dynamic_supervisor.hpp): the cases an OTP or Elixir user hits beyond the
// basic rules — ignore from temporary children, start functions that exit,
// taken names, children waiting to restart, exit signals ahead of queued
// calls, start functions returning the wrong pid, and restart windows that
// would overflow.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/supervision.hpp"

using namespace std::chrono_literals;
using ember_test::in_process;
using namespace ember_test::supervision;
namespace dyn = ember::dynamic_supervisor;

TEST_CASE("supervisor: a temporary child whose start returns ignore is not kept; other restart types keep it "
          "as stopped",
          "[supervisor]") {
  in_process(2, [] {
    auto ignoring = [](std::string id, sup::restart_type t) {
      sup::child_spec c{std::move(id), [] { return sup::started::ignore(); }};
      c.restart = t;
      return c;
    };
    // At the supervisor's start ...
    auto s = sup::start_link({}, {ignoring("perm", sup::permanent), ignoring("temp", sup::temporary),
                                  ignoring("trans", sup::transient)});
    REQUIRE(s);
    auto kids = sup::which_children(s.server());
    REQUIRE(kids.size() == 2);
    REQUIRE(kids[0].id == "perm");
    REQUIRE(kids[0].status == sup::child_status::stopped);
    REQUIRE(kids[1].id == "trans");
    auto n = sup::count_children(s.server());
    REQUIRE(n.specs == 2);
    REQUIRE(n.workers == 2);
    // ... and through start_child.
    auto r = sup::start_child(s.server(), ignoring("temp2", sup::temporary));
    REQUIRE(r);
    REQUIRE(r.pid().is_null());
    REQUIRE(sup::count_children(s.server()).specs == 2);
    REQUIRE(sup::restart_child(s.server(), "temp2").error() == sup::child_error::not_found);
    // The id is free again.
    REQUIRE(sup::start_child(s.server(), ignoring("temp2", sup::permanent)));
    REQUIRE(sup::count_children(s.server()).specs == 3);
  });
}
