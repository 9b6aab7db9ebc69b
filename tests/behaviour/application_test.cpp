// application (include/ember/application.hpp): run a tree as the program.
// Shutdown by SIGTERM, SIGINT and stop() stops a tree of gen_servers in
// reverse start order with reason shutdown; each exit status (clean, crash,
// failed start, killed after the shutdown timeout or on a second signal);
// the reports; the signal handlers and mask are given back; misuse.
//
// Signals are raised from inside the application once its root is up (the
// start function raises after the root's start returned), so no test waits
// by sleeping.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <signal.h>

#include "support/support.hpp"

using namespace std::chrono_literals;
namespace app = ember::application;
namespace gs = ember::gen_server;

namespace {

/// Who ran terminate, in order, and with which reason (shared by a tree).
struct journal {
  std::mutex mu;
  std::vector<std::pair<std::string, ember::exit_reason>> entries;
  void note(std::string who, ember::exit_reason r) {
    std::lock_guard lk(mu);
    entries.emplace_back(std::move(who), std::move(r));
  }
  std::vector<std::pair<std::string, ember::exit_reason>> read() {
    std::lock_guard lk(mu);
    return entries;
  }
};

struct get_id {};

/// A child that traps exits and notes its terminate.
struct leaf : gs::behaviour<leaf> {
  std::string id;
  std::shared_ptr<journal> log;
  leaf(std::string i, std::shared_ptr<journal> j) : id(std::move(i)), log(std::move(j)) {}
  void init() { ember::process_flag(ember::trap_exit, true); }
  std::string handle_call(get_id) { return id; }
  void terminate(const ember::exit_reason& r) { log->note(id, r); }
};

/// A root that start_links a, then b, and stops them in reverse order in
/// its terminate before noting its own.
struct tree_root : gs::behaviour<tree_root> {
  std::shared_ptr<journal> log;
  ember::pid a, b;
  explicit tree_root(std::shared_ptr<journal> j) : log(std::move(j)) {}
  next init() {
    ember::process_flag(ember::trap_exit, true);
    auto ra = gs::start_link<leaf>(std::string("a"), log);
    if (!ra) return stop_with(ra.error());
    auto rb = gs::start_link<leaf>(std::string("b"), log);
    if (!rb) return stop_with(rb.error());
    a = ra.pid();
    b = rb.pid();
    return noreply();
  }
  std::string handle_call(get_id) { return "root"; }
  void terminate(const ember::exit_reason& r) {
    gs::stop<leaf>(b, ember::exit_reason::shutdown());
    gs::stop<leaf>(a, ember::exit_reason::shutdown());
    log->note("root", r);
  }
};

/// Fails to start.
struct no_config {
  void init() { throw std::runtime_error("no config file"); }
  int handle_call(get_id) { return 0; }
};

/// Traps exits; its terminate runs `on_terminate` (set by the test).
struct scripted_root : gs::behaviour<scripted_root> {
  std::function<void(const ember::exit_reason&)> on_terminate;
  explicit scripted_root(std::function<void(const ember::exit_reason&)> f) : on_terminate(std::move(f)) {}
  void init() { ember::process_flag(ember::trap_exit, true); }
  int handle_call(get_id) { return 0; }
  void terminate(const ember::exit_reason& r) { on_terminate(r); }
};

struct never {};
struct ready {};

/// Options whose logger writes into `out` at every level.
app::options logged(unsigned workers, std::ostringstream& out) {
  app::options o;
  o.runtime = ember_test::opts(workers);
  o.runtime.logger = std::make_shared<spdlog::logger>("app", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  o.runtime.logger->set_level(spdlog::level::debug);
  return o;
}

bool has(const std::ostringstream& out, const std::string& text) { return out.str().find(text) != std::string::npos; }

/// Run the tree; `trigger` runs in the master right after the root started.
/// Checks that the tree stopped in reverse start order with `shutdown`.
void check_tree_shutdown(const std::function<void()>& trigger, const std::string& requested_by) {
  for (unsigned workers : {1u, 2u, 4u}) {
    INFO("workers: " << workers);
    auto j = std::make_shared<journal>();
    std::ostringstream out;
    std::string root_pid;
    const int status = app::run(
        [&] {
          auto r = gs::start_link<tree_root>(j);
          if (r) {
            root_pid = fmt::format("{}", r.pid());
            trigger();
          }
          return r;
        },
        logged(workers, out));
    INFO("log:\n" << out.str());
    CHECK(status == app::exit_status::clean);
    const auto e = j->read();
    REQUIRE(e.size() == 3);
    CHECK(e[0].first == "b");
    CHECK(e[1].first == "a");
    CHECK(e[2].first == "root");
    for (const auto& [who, reason] : e) {
      INFO(who);
      CHECK(reason == ember::exit_reason::shutdown());
    }
    CHECK(has(out, "application: started root " + root_pid));
    CHECK(has(out, "application: shutdown requested by " + requested_by + "; stopping root " + root_pid));
    CHECK(has(out, "application: root " + root_pid + " shut down with reason shutdown"));
  }
}

/// Set `h` for SIGINT and SIGTERM while alive; give the previous ones back.
struct handler_scope {
  struct sigaction old_int {}, old_term {};
  explicit handler_scope(void (*h)(int)) {
    struct sigaction sa {};
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    REQUIRE(::sigaction(SIGINT, &sa, &old_int) == 0);
    REQUIRE(::sigaction(SIGTERM, &sa, &old_term) == 0);
  }
  ~handler_scope() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
};

void (*current_handler(int sig))(int) {
  struct sigaction now {};
  ::sigaction(sig, nullptr, &now);
  return now.sa_handler;
}

std::atomic<int> test_handler_calls{0};
void test_handler(int) { test_handler_calls.fetch_add(1); }

}  // namespace

TEST_CASE("application: SIGTERM stops the tree in reverse start order, terminate runs with shutdown, status 0",
          "[application]") {
  check_tree_shutdown([] { std::raise(SIGTERM); }, "signal 15 (SIGTERM)");
}

TEST_CASE("application: SIGINT does the same as SIGTERM", "[application]") {
  check_tree_shutdown([] { std::raise(SIGINT); }, "signal 2 (SIGINT)");
}

TEST_CASE("application: stop() from the application does the same, a second stop() changes nothing",
          "[application]") {
  check_tree_shutdown(
      [] {
        CHECK(app::stop());
        CHECK(app::stop());
      },
      "ember::application::stop()");
}

TEST_CASE("application: stop() from another thread, false when no application runs", "[application]") {
  CHECK_FALSE(app::stop());
  auto j = std::make_shared<journal>();
  std::promise<void> up;
  std::atomic<bool> stopped{false};
  std::thread t([&] {
    up.get_future().wait();
    stopped = app::stop();
  });
  std::ostringstream out;
  const int status = app::run(
      [&] {
        auto r = gs::start_link<tree_root>(j);
        up.set_value();
        return r;
      },
      logged(2, out));
  t.join();
  INFO("log:\n" << out.str());
  CHECK(stopped);
  CHECK(status == app::exit_status::clean);
  CHECK(j->read().size() == 3);
  CHECK_FALSE(app::stop());
}

TEST_CASE("application: a root that ends by itself ends the application: normal is 0, a crash is 1 and logged",
          "[application]") {
  std::ostringstream out;
  CHECK(app::run([] { return ember::spawn_link([] {}); }, logged(2, out)) == app::exit_status::clean);
  CHECK(has(out, "exited with reason normal"));

  std::ostringstream out2;
  std::string root_pid;
  const int status = app::run(
      [&] {
        ember::pid p = ember::spawn_link([] { throw std::runtime_error("disk on fire"); });
        root_pid = fmt::format("{}", p);
        return p;
      },
      logged(2, out2));
  INFO("log:\n" << out2.str());
  CHECK(status == app::exit_status::crashed);
  CHECK(has(out2, "[error] application: root " + root_pid + " exited with reason disk on fire"));
}

TEST_CASE("application: a failed start returns 2 and logs the error, so does a start function that throws",
          "[application]") {
  std::ostringstream out;
  CHECK(app::run([] { return gs::start_link<no_config>(); }, logged(2, out)) == app::exit_status::start_failed);
  INFO("log:\n" << out.str());
  CHECK(has(out, "[error] application: the root failed to start: no config file"));

  std::ostringstream out2;
  CHECK(app::run([]() -> ember::pid { throw std::runtime_error("bad flags"); }, logged(2, out2)) ==
        app::exit_status::start_failed);
  CHECK(has(out2, "[error] application: the root failed to start: bad flags"));
}

TEST_CASE("application: a root that ignores shutdown is killed after shutdown_timeout, status 3", "[application]") {
  std::ostringstream out;
  app::options o = logged(2, out);
  o.shutdown_timeout = 50ms;  // the timeout under test
  std::string root_pid;
  const int status = app::run(
      [&] {
        const ember::pid master = ember::self();
        ember::pid p = ember::spawn_link([master] {
          ember::process_flag(ember::trap_exit, true);
          ember::send(master, ready{});
          for (;;) ember::receive([](const ember::exit_message&) {});  // ignores everything
        });
        ember::receive([](ready) {});  // it traps exits now
        root_pid = fmt::format("{}", p);
        std::raise(SIGTERM);
        return p;
      },
      o);
  INFO("log:\n" << out.str());
  CHECK(status == app::exit_status::killed);
  CHECK(has(out, "[error] application: root " + root_pid + " did not shut down within 50 ms: killing it"));
  CHECK(has(out, "[error] application: root " + root_pid + " was killed"));
}

TEST_CASE("application: a second signal during a slow shutdown kills the root at once, status 3", "[application]") {
  std::ostringstream out;
  app::options o = logged(2, out);
  o.shutdown_timeout = 60s;  // far beyond the test: only the second signal can end the shutdown early
  std::atomic<bool> terminating{false};
  std::string root_pid;
  const int status = app::run(
      [&] {
        auto r = gs::start_link<scripted_root>([&](const ember::exit_reason&) {
          terminating = true;
          std::raise(SIGINT);                    // the second signal, during the shutdown
          ember::receive([](never) {});          // a terminate that never ends by itself
        });
        if (r) {
          root_pid = fmt::format("{}", r.pid());
          std::raise(SIGTERM);
        }
        return r;
      },
      o);
  INFO("log:\n" << out.str());
  CHECK(terminating);
  CHECK(status == app::exit_status::killed);
  CHECK(has(out, "[error] application: signal 2 (SIGINT) during the shutdown: killing root " + root_pid + " at once"));
  CHECK_FALSE(has(out, "did not shut down within"));
}

TEST_CASE("application: shutdown_timeout 0 kills the root at once (no terminate), status 3", "[application]") {
  std::ostringstream out;
  app::options o = logged(2, out);
  o.shutdown_timeout = 0ms;
  std::atomic<bool> terminated{false};
  const int status = app::run(
      [&] {
        auto r = gs::start_link<scripted_root>([&](const ember::exit_reason&) { terminated = true; });
        CHECK(app::stop());
        return r;
      },
      o);
  INFO("log:\n" << out.str());
  CHECK(status == app::exit_status::killed);
  CHECK_FALSE(terminated);
}

TEST_CASE("application: a root whose shutdown fails (terminate throws) gives status 1", "[application]") {
  std::ostringstream out;
  const int status = app::run(
      [&] {
        auto r = gs::start_link<scripted_root>([](const ember::exit_reason&) { throw std::runtime_error("stuck"); });
        CHECK(app::stop());
        return r;
      },
      logged(2, out));
  INFO("log:\n" << out.str());
  CHECK(status == app::exit_status::crashed);
  CHECK(has(out, "during the shutdown"));
}

TEST_CASE("application: the previous SIGINT/SIGTERM handlers and the signal mask are given back", "[application]") {
  handler_scope scope(&test_handler);
  sigset_t mask_before, mask_after;
  REQUIRE(::pthread_sigmask(SIG_BLOCK, nullptr, &mask_before) == 0);

  for (bool handle : {true, false}) {
    INFO("handle_signals: " << handle);
    app::options o;
    o.runtime = ember_test::opts(2);
    o.handle_signals = handle;
    void (*during_int)(int) = nullptr;
    void (*during_term)(int) = nullptr;
    CHECK(app::run(
              [&] {
                during_int = current_handler(SIGINT);
                during_term = current_handler(SIGTERM);
                return ember::spawn_link([] {});
              },
              o) == app::exit_status::clean);
    CHECK((during_int == &test_handler) == !handle);
    CHECK((during_term == &test_handler) == !handle);
    CHECK(current_handler(SIGINT) == &test_handler);
    CHECK(current_handler(SIGTERM) == &test_handler);
  }
  // And they work: the test's handler gets the signals again.
  const int before = test_handler_calls.load();
  std::raise(SIGTERM);
  std::raise(SIGINT);
  CHECK(test_handler_calls.load() == before + 2);

  REQUIRE(::pthread_sigmask(SIG_BLOCK, nullptr, &mask_after) == 0);
  CHECK(sigismember(&mask_after, SIGINT) == sigismember(&mask_before, SIGINT));
  CHECK(sigismember(&mask_after, SIGTERM) == sigismember(&mask_before, SIGTERM));
}

TEST_CASE("application: one run at a time (already_running), not from inside a process, shutdown_timeout range",
          "[application]") {
  std::atomic<bool> refused{false};
  CHECK(app::run(
            [&] {
              std::thread t([&] {
                try {
                  app::run([] { return ember::spawn_link([] {}); }, {});
                } catch (const app::already_running& e) {
                  refused = std::string(e.what()).find("already running") != std::string::npos;
                }
              });
              t.join();
              return ember::spawn_link([] {});
            },
            {ember_test::opts(2)}) == app::exit_status::clean);
  CHECK(refused);

  // The slot is free again.
  CHECK(app::run([] { return ember::spawn_link([] {}); }, {ember_test::opts(1)}) == app::exit_status::clean);

  ember_test::in_process(1, [] {
    CHECK_THROWS_AS(app::run([] { return ember::spawn_link([] {}); }, {}), ember::error);
  });

  app::options o;
  o.runtime = ember_test::opts(1);
  o.shutdown_timeout = std::chrono::hours(24 * 365);
  CHECK_THROWS_AS(app::run([] { return ember::spawn_link([] {}); }, o), ember::invalid_option);
}
