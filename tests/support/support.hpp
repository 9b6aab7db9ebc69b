// tests/support/support.hpp — shared test helpers.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <catch2/catch.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "ember/ember.hpp"

namespace ember_test {

/// Sizes shrink under sanitizers (EMBER_TEST_SCALE=small) so the suite stays
/// fast there; the logic tested is the same.
inline std::size_t scaled(std::size_t full, std::size_t small) {
  const char* s = std::getenv("EMBER_TEST_SCALE");
  return (s && std::strcmp(s, "small") == 0) ? small : full;
}

/// Anonymous resident memory of this program (heaps, stacks, malloc), in
/// bytes; 0 if it cannot be read.  File-backed pages (the program's code as
/// it first runs) are left out: they are not memory a process can hold or
/// give back, and a path run for the first time would count them.
inline std::size_t resident_bytes() {
  long pages = 0, resident = 0, shared = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld %ld", &pages, &resident, &shared) != 3) resident = shared = 0;
    std::fclose(f);
  }
  return std::size_t(resident - shared) * std::size_t(::sysconf(_SC_PAGESIZE));
}

/// Runtime options with `workers` threads and a logger that drops output
/// (tests that check logs make their own).
inline ember::runtime_options opts(unsigned workers) {
  ember::runtime_options o;
  o.workers = workers;
  o.logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  return o;
}

/// Options for a runtime driven by `clock` (one worker: a manual clock
/// drives one; logs dropped).
inline ember::runtime_options manual_opts(const std::shared_ptr<ember::manual_clock>& clock) {
  auto o = opts(1);
  o.clock = clock;
  return o;
}

/// A logger whose lines a test can read from any thread, at any time.
struct captured_log {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("captured", sink);
  [[nodiscard]] std::string text() const {
    std::string all;
    for (const std::string& l : sink->last_formatted()) all += l;
    return all;
  }
  [[nodiscard]] bool contains(std::string_view s) const { return text().find(s) != std::string::npos; }
};

/// opts(workers), logging into `log`.
inline ember::runtime_options opts(unsigned workers, const captured_log& log) {
  ember::runtime_options o;
  o.workers = workers;
  o.logger = log.logger;
  return o;
}

/// Run body as a process on a fresh runtime with `workers` threads, wait for
/// it, and fail the test unless it ended normally (a failed REQUIRE inside
/// it ends it abnormally).
template <class F>
void in_process(unsigned workers, F&& body) {
  ember::runtime rt(opts(workers));
  auto r = rt.spawn_monitor(std::forward<F>(body)).wait();
  INFO("exit reason: " << r);
  CHECK(r.is_normal());
}

}  // namespace ember_test
