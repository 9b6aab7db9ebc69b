// Scaling: work that must stay linear in the number of processes or
// children.  Each test compares the cost per item at two sizes, a factor
// of 10 apart, with a generous bound: a quadratic cost multiplies the
// per-item cost by the size ratio, a linear one leaves it flat (cache
// effects and noise stay well inside the bound).  No absolute timings.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "support/support.hpp"

using ember_test::opts;
using ember_test::scaled;

namespace {

using clk = std::chrono::steady_clock;

struct stop_msg {};

/// Seconds that runtime::stop() takes with n processes, each waiting in
/// receive (linked to one parent when `linked`); and the resident memory
/// growth across the stop.
std::pair<double, long> stop_with(std::size_t n, bool linked) {
  auto rt = std::make_unique<ember::runtime>(opts(2));
  std::atomic<std::size_t> up{0};
  rt->spawn([&] {
    for (std::size_t i = 0; i < n; ++i) {
      auto body = [&up] {
        up.fetch_add(1);
        ember::receive<stop_msg>();
      };
      if (linked) ember::spawn_link(body);
      else ember::spawn(body);
    }
    ember::receive<stop_msg>();
  });
  // Every child has run to its receive (a test waiting on a plain thread
  // for a runtime to reach a state has no message to wait for).
  while (up.load() < n) std::this_thread::yield();
  const long rss0 = long(ember_test::resident_bytes());
  auto t0 = clk::now();
  rt->stop();
  const double s = std::chrono::duration<double>(clk::now() - t0).count();
  const long grown = long(ember_test::resident_bytes()) - rss0;
  return {s, grown};
}

}  // namespace

TEST_CASE("scale: runtime::stop is linear in the processes, linked to one parent or not, and allocates nothing "
          "per process",
          "[scale]") {
  const bool linked = GENERATE(true, false);
  const std::size_t small = scaled(20000, 4000), big = small * 10;
  double small_s = 1e9;
  for (int i = 0; i < 3; ++i) small_s = std::min(small_s, stop_with(small, linked).first);
  const auto [big_s, grown] = stop_with(big, linked);
  const double ratio = (big_s / double(big)) / (small_s / double(small));
  INFO("linked " << linked << ": " << small << " processes stop in " << small_s << " s, " << big << " in " << big_s
                 << " s (per-process ratio " << ratio << "); resident memory grew " << grown << " bytes");
  // Quadratic: the ratio would be about 10 (it was 40 for 200,000 against
  // 800,000 before kills were made once per process).
  CHECK(ratio < 4);
  // Each kill used to allocate a wake envelope per pass, and passes came
  // every 20 ms: hundreds of bytes per process.  Now none: what growth is
  // left is the runtime's own lists (8 bytes per freed block).
  CHECK(grown < long(big) * 128);
}
