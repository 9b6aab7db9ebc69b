// tests/support/supervision.hpp — what the supervisor tests share: a
// member server that reports its start and terminate to an observer, a
// member whose init fails, one that ignores shutdown, and helpers to read
// the reports and to kill children and wait for them.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/support.hpp"

namespace ember_test::supervision {

using namespace std::chrono_literals;
namespace gs = ember::gen_server;
namespace sup = ember::supervisor;

inline namespace helpers {

/// What a member tells the test: "start" or "stop:<reason>", its id, pid.
struct event {
  std::string what;
  std::string id;
  ember::pid who;
};
struct quit {  // cast: stop with this reason
  ember::exit_reason reason;
};
struct whoami {};
struct go {};

/// A gen_server that reports its start and its terminate to `obs`.
struct member : gs::behaviour<member> {
  ember::pid obs;
  std::string id;
  bool trap;
  member(ember::pid o, std::string i, bool trap_exits = true) : obs(o), id(std::move(i)), trap(trap_exits) {}
  next init() {
    if (trap) ember::process_flag(ember::trap_exit, true);
    ember::send(obs, event{"start", id, ember::self()});
    return {};
  }
  std::string handle_call(whoami) { return id; }
  next handle_cast(quit q) { return stop_with(q.reason); }
  void terminate(const ember::exit_reason& r) { ember::send(obs, event{"stop:" + r.to_string(), id, ember::self()}); }
};

/// A member whose init fails.
struct broken : gs::behaviour<broken> {
  explicit broken(int) {}
  void init() { throw std::runtime_error("no database"); }
  int handle_call(whoami) { return 0; }
};

/// A member that ignores `shutdown` for ever (it traps exits and its
/// terminate blocks).
struct stubborn : gs::behaviour<stubborn> {
  ember::pid obs;
  explicit stubborn(ember::pid o) : obs(o) {}
  next init() {
    ember::process_flag(ember::trap_exit, true);
    ember::send(obs, event{"start", "stubborn", ember::self()});
    return {};
  }
  int handle_call(whoami) { return 0; }
  void terminate(const ember::exit_reason&) {
    ember::send(obs, event{"terminating", "stubborn", ember::self()});
    ember::receive([](go) {});
  }
};

inline event next_event() {
  return ember::receive([](event e) { return e; },
                        ember::after(10s, [] { return event{"none (timed out)", "", {}}; }));
}

/// The next events, as "what id" strings.
inline std::vector<std::string> events(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    event e = next_event();
    out.push_back(e.what + " " + e.id);
  }
  return out;
}

/// Kill p and wait until it is gone; its link's exit signal then sits in
/// the supervisor's mailbox ahead of any later call.
inline void kill_and_wait(ember::pid p, ember::exit_reason r = ember::exit_reason::kill()) {
  auto m = ember::monitor(p);
  ember::exit(p, std::move(r));
  ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
}

/// Make member p stop with r and wait until it is gone (as kill_and_wait).
inline void quit_and_wait(ember::pid p, ember::exit_reason r) {
  auto m = ember::monitor(p);
  gs::cast<member>(p, quit{std::move(r)});
  ember::receive(ember::when([m](const ember::down& d) { return d.ref == m; }, [](ember::down) {}));
}

inline ember::pid pid_of(const sup::ref& s, const std::string& id) {
  for (const auto& c : sup::which_children(s))
    if (c.id == id) return c.pid;
  return {};
}

inline std::vector<sup::child_spec> abc(ember::pid obs, sup::restart_type t = sup::permanent) {
  std::vector<sup::child_spec> v{sup::worker<member>("a", obs, "a"), sup::worker<member>("b", obs, "b"),
                                 sup::worker<member>("c", obs, "c")};
  for (auto& c : v) c.restart = t;
  return v;
}

using strs = std::vector<std::string>;

}  // namespace helpers

}  // namespace ember_test::supervision
