// examples/rate_limiter — the demo: 3,000 customers with different
// contracts send bursts of requests through the rate limiter for 26
// simulated hours.  It prints admitted and refused counts per window every
// two simulated hours, with a sample of the limit-hit log lines, then checks
// that no customer ever got more than its contract allows in any minute,
// hour or day (an exact sliding-window count of every admitted request).
//
// The service runs as an application (ember::application::run) whose root
// supervisor holds the rate limiter's tree and the traffic generator.  Time
// is a manual clock: a driver thread moves it through the 26 hours in one
// advance(), which fires every timer in order and runs the runtime at each
// step, so the run takes well under a second and its output is the same
// every time.  In a real deployment the clock and the driver go; nothing
// else changes.
//
// Then the HTTP front (http_front.hpp): a fresh rate limiter on the system
// clock behind GET /check on 127.0.0.1 (a port the system picks), and a
// client that asks it a handful of questions over one keep-alive
// connection: 200 three times, then 429 with Retry-After, then 403, 400 and
// 404.  It prints each answer and checks its status.
//
// Exit status: 0 when the run was clean and every check passed.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/core.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "ember/ember.hpp"
#include "ember/io/io.hpp"
#include "ember/io/tcp_server.hpp"
#include "http_front.hpp"
#include "rate_limiter.hpp"

using namespace std::chrono_literals;
namespace rl = rate_limiter;
namespace sup = ember::supervisor;
using std::chrono::milliseconds;

namespace {

// ---- the schedule -------------------------------------------------------------------

constexpr std::size_t customer_count = 3000;
constexpr milliseconds tick_every = 15min;  // bursts start on each tick
constexpr int ticks = 26 * 4;               // 26 hours
constexpr int ticks_per_report = 8;         // a report every 2 hours
constexpr int bursts_per_tick = 20;         // from the occasional and regular customers
constexpr int largest_burst = 40;           // requests, from one customer at once

/// Contract tiers: {name, per minute, per hour, per day}.
struct tier {
  std::string_view name;
  rl::limits limits;
};
constexpr std::array<tier, 3> tiers{{
    {"basic", {.per_minute = 10, .per_hour = 30, .per_day = 150}},
    {"pro", {.per_minute = 40, .per_hour = 400, .per_day = 2000}},
    {"enterprise", {.per_minute = 200, .per_hour = 3000, .per_day = 30000}},
}};

/// How a customer sends: now and then (most), regularly (a fifth of them
/// send four fifths of the occasional bursts), or all the time (a few basic
/// customers whose scripts hammer the API and run into every window).
enum class habit { occasional, regular, hammering };

struct customer {
  std::string key;
  std::string name;
  const tier* plan;
  habit style;
};

std::vector<customer> make_customers() {
  std::vector<customer> cs;
  cs.reserve(customer_count);
  for (std::size_t i = 0; i < customer_count; ++i) {
    const tier* plan = i % 10 < 6 ? &tiers[0] : i % 10 < 9 ? &tiers[1] : &tiers[2];
    const habit h = i % 500 == 5 ? habit::hammering : i % 5 == 0 ? habit::regular : habit::occasional;
    cs.push_back({fmt::format("ak-{:04}", i), fmt::format("Customer {:04}", i), plan, h});
  }
  return cs;
}

/// "d1 02:10:00.250" for a time on the simulated clock.
std::string sim_time(std::chrono::nanoseconds t) {
  const auto ms = std::chrono::duration_cast<milliseconds>(t).count();
  return fmt::format("d{} {:02}:{:02}:{:02}.{:03}", ms / 86'400'000, ms / 3'600'000 % 24, ms / 60'000 % 60,
                     ms / 1000 % 60, ms % 1000);
}

// ---- printing the limit-hit lines, a few per report ------------------------------------

/// An spdlog sink that prints, in each report period, the first limit-hit
/// line of each window (minute, hour, day), stamped with simulated time, and
/// counts the others.
class sampled_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit sampled_sink(std::shared_ptr<ember::manual_clock> clock) : clock_(std::move(clock)) {}

  /// Start a new period; returns how many lines the one that ends held back.
  std::uint64_t next_period() {
    std::lock_guard lk(mutex_);
    const std::uint64_t held = held_back_;
    shown_ = {};
    held_back_ = 0;
    return held;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const std::size_t w = text.find("per-day") != std::string_view::npos    ? 2
                          : text.find("per-hour") != std::string_view::npos ? 1
                                                                            : 0;
    if (shown_[w]) {
      ++held_back_;
      return;
    }
    shown_[w] = true;
    fmt::print("    {}  {}\n", sim_time(clock_->now()), text);
  }
  void flush_() override { std::fflush(stdout); }

private:
  std::shared_ptr<ember::manual_clock> clock_;
  std::array<bool, 3> shown_{};  // guarded by mutex_: a line of this window was printed in this period
  std::uint64_t held_back_ = 0;  // guarded by mutex_
};

// ---- counting answers -------------------------------------------------------------------

struct tally {
  std::uint64_t requests = 0, admitted = 0, unknown_key = 0, unavailable = 0, overloaded = 0;
  std::array<std::uint64_t, 3> refused{};  // by window

  void add(const rl::decision& d) {
    ++requests;
    switch (d.result) {
      case rl::outcome::admitted: ++admitted; break;
      case rl::outcome::refused: ++refused[std::size_t(d.hit)]; break;
      case rl::outcome::unknown_key: ++unknown_key; break;
      case rl::outcome::unavailable: ++unavailable; break;
      case rl::outcome::overloaded: ++overloaded; break;
    }
  }
  tally& operator+=(const tally& o) {
    requests += o.requests;
    admitted += o.admitted;
    unknown_key += o.unknown_key;
    unavailable += o.unavailable;
    overloaded += o.overloaded;
    for (std::size_t w = 0; w < refused.size(); ++w) refused[w] += o.refused[w];
    return *this;
  }
};

constexpr std::size_t no_customer = std::size_t(-1);

/// What one burst's client reports back to the generator.
struct burst_done {
  std::size_t customer;               // no_customer for a revoked key
  tally answers;
  std::vector<std::int64_t> admitted;  // when each admitted request was admitted (ms)
  std::array<bool, 3> refused_by{};    // which windows refused some request
};

/// What the run produced, for main to check once the application is over.
struct results {
  explicit results(std::size_t customers) : admitted_at(customers), refused_by(customers) {}
  tally total;
  std::vector<std::vector<std::int64_t>> admitted_at;  // per customer
  std::vector<std::array<bool, 3>> refused_by;         // per customer
  rl::stats service_stats;
  bool finished = false;
};

// ---- the traffic generator ---------------------------------------------------------------

struct next_tick {};

/// The process that plays the customers: on each tick it starts bursts,
/// each in a client process of its own (sequential requests for one key;
/// a flash crowd runs several clients for one key at once), and it adds up
/// what the clients report.  Every ticks_per_report ticks it prints a report.
class traffic_generator {
public:
  traffic_generator(const std::vector<customer>& customers, rl::service limiter,
                    std::shared_ptr<ember::manual_clock> clock, std::shared_ptr<sampled_sink> sink, results& out)
      : customers_(customers), limiter_(std::move(limiter)), clock_(std::move(clock)), sink_(std::move(sink)),
        out_(out) {
    for (std::size_t i = 0; i < customers_.size(); ++i) {
      if (customers_[i].style == habit::hammering) hammering_.push_back(i);
      if (customers_[i].style == habit::regular) regulars_.push_back(i);
      else if (customers_[i].style == habit::occasional) occasional_.push_back(i);
    }
  }

  void run() {
    print_header();
    for (int t = 0; t <= ticks; ++t) {
      if (t > 0) wait_for_tick();
      if (t > 0 && t % ticks_per_report == 0) report();
      if (t < ticks) start_bursts();
    }
    while (outstanding_ > 0) collect(ember::receive([](burst_done b) { return b; }));
    out_.service_stats = limiter_.counters();
    out_.finished = true;
  }

private:
  void print_header() const {
    std::size_t by_habit[3] = {};
    for (const customer& c : customers_) ++by_habit[std::size_t(c.style)];
    fmt::print("rate_limiter: {} customers ({} occasional, {} regular, {} hammering) for {} simulated hours\n",
               customers_.size(), by_habit[0], by_habit[1], by_habit[2], ticks * tick_every / 1h);
    for (const tier& t : tiers)
      fmt::print("  {:<10} {:>4}/minute {:>5}/hour {:>6}/day\n", t.name, t.limits.per_minute, t.limits.per_hour,
                 t.limits.per_day);
    fmt::print("  limit-hit log lines: the first of each window in each report period is shown\n\n");
  }

  /// Collect what clients report until the next tick.
  void wait_for_tick() {
    ember::send_after(ember::self(), tick_every, next_tick{});
    for (bool ticked = false; !ticked;)
      ember::receive([this](burst_done b) { collect(std::move(b)); }, [&ticked](next_tick) { ticked = true; });
  }

  void start_bursts() {
    // The hammering customers send a minute's worth and a fifth every tick.
    for (std::size_t i : hammering_) start_client(i, int(customers_[i].plan->limits.per_minute * 6 / 5));
    // Occasional bursts, four in five from the regulars.
    std::uniform_real_distribution<double> size_factor(0.2, 1.3);
    std::uniform_int_distribution<int> percent(0, 99);
    for (int b = 0; b < bursts_per_tick; ++b) {
      const std::vector<std::size_t>& pool = percent(rng_) < 80 ? regulars_ : occasional_;
      const std::size_t i = pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(rng_)];
      const int size = std::clamp(int(customers_[i].plan->limits.per_minute * size_factor(rng_)), 1, largest_burst);
      if (percent(rng_) < 20) {
        // A flash crowd: four clients at once, racing for the key's server.
        for (int c = 0; c < 4; ++c) start_client(i, (size + 3) / 4);
      } else {
        start_client(i, size);
      }
    }
    // Now and then a request with a revoked key.
    if (percent(rng_) < 30) start_client(no_customer, 3);
  }

  void start_client(std::size_t i, int requests) {
    const std::string key =
        i == no_customer ? fmt::format("ak-revoked-{}", std::uniform_int_distribution<int>(0, 9)(rng_))
                         : customers_[i].key;
    ++outstanding_;
    ember::spawn([limiter = limiter_, clock = clock_, key, i, requests, to = ember::self()] {
      burst_done r{i, {}, {}, {}};
      for (int n = 0; n < requests; ++n) {
        const rl::decision d = limiter.check(key);
        r.answers.add(d);
        if (d.admitted()) r.admitted.push_back(std::chrono::duration_cast<milliseconds>(clock->now()).count());
        if (d.result == rl::outcome::refused) r.refused_by[std::size_t(d.hit)] = true;
      }
      ember::send(to, std::move(r));
    });
  }

  void collect(burst_done b) {
    --outstanding_;
    period_ += b.answers;
    out_.total += b.answers;
    if (b.customer == no_customer) return;
    auto& times = out_.admitted_at[b.customer];
    times.insert(times.end(), b.admitted.begin(), b.admitted.end());
    for (std::size_t w = 0; w < 3; ++w)
      if (b.refused_by[w]) out_.refused_by[b.customer][w] = true;
  }

  void report() {
    const rl::stats s = limiter_.counters();
    const tally& p = period_;
    fmt::print("[{}] {} requests: {} admitted; refused by the minute {}, the hour {}, the day {}; unknown key {}\n",
               sim_time(clock_->now()).substr(0, 8), p.requests, p.admitted, p.refused[0], p.refused[1], p.refused[2],
               p.unknown_key);
    fmt::print("           key servers: {} running, {} started, {} stopped idle, {} took back windows; {} windows "
               "parked; {} lookups\n",
               limiter_.running_key_servers(), s.key_servers_started, s.idle_stops, s.windows_restored,
               limiter_.parked_windows(), s.lookups);
    if (const std::uint64_t held = sink_->next_period()) fmt::print("    (+{} more limit-hit lines)\n", held);
    period_ = {};
  }

  const std::vector<customer>& customers_;
  rl::service limiter_;
  std::shared_ptr<ember::manual_clock> clock_;
  std::shared_ptr<sampled_sink> sink_;
  results& out_;
  std::vector<std::size_t> hammering_, regulars_, occasional_;
  std::mt19937_64 rng_{2024};
  std::size_t outstanding_ = 0;  // clients that have not reported yet
  tally period_;                 // answers since the last report
};

// ---- the checks -----------------------------------------------------------------------

/// The most admitted requests any closed interval [t - length, t] holds.
std::size_t busiest(const std::vector<std::int64_t>& sorted, milliseconds length) {
  std::size_t most = 0;
  std::size_t first = 0;
  for (std::size_t last = 0; last < sorted.size(); ++last) {
    while (sorted[first] < sorted[last] - length.count()) ++first;
    most = std::max(most, last - first + 1);
  }
  return most;
}

/// Check the run; print what failed.  True when all is well.
bool check(const std::vector<customer>& customers, results& r) {
  bool ok = true;
  auto fail = [&ok](const std::string& what) {
    fmt::print("check FAILED: {}\n", what);
    ok = false;
  };
  if (!r.finished) fail("the traffic generator did not finish");
  std::size_t over = 0;
  for (std::size_t i = 0; i < customers.size(); ++i) {
    auto& times = r.admitted_at[i];
    std::sort(times.begin(), times.end());
    for (rl::window w : {rl::window::minute, rl::window::hour, rl::window::day}) {
      const std::size_t most = busiest(times, rl::shape_of(w).length);
      if (most > customers[i].plan->limits.of(w)) {
        if (over++ < 5)
          fail(fmt::format("{} got {} requests within one {} (limit {})", customers[i].key, most, w,
                           customers[i].plan->limits.of(w)));
      }
    }
    if (customers[i].style == habit::hammering && r.refused_by[i] != std::array<bool, 3>{true, true, true})
      fail(fmt::format("hammering customer {} was not refused by every window", customers[i].key));
  }
  if (r.total.unavailable != 0) fail(fmt::format("{} requests were answered unavailable", r.total.unavailable));
  if (r.total.overloaded != 0) fail(fmt::format("{} requests were answered overloaded", r.total.overloaded));
  if (r.service_stats.lookups != r.service_stats.key_servers_started)
    fail(fmt::format("{} lookups for {} key server starts", r.service_stats.lookups,
                     r.service_stats.key_servers_started));
  return ok;
}

// ---- the HTTP front ---------------------------------------------------------------

/// The rate limiter behind its HTTP front on 127.0.0.1, on the system
/// clock, and a client asking it over one keep-alive connection.  Prints
/// each answer; true when every status (and the Retry-After) is right.
bool http_demo() {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  using tcp = asio::ip::tcp;

  rl::options o;
  o.contracts = [](const std::string& key) -> std::optional<rl::contract> {
    if (key != "ak-demo") return std::nullopt;
    return rl::contract{"Demo Inc (basic)", {.per_minute = 3, .per_hour = 30, .per_day = 150}};
  };
  o.lookup_delay = 20ms;
  o.logger = std::make_shared<spdlog::logger>("rate_limiter", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  o.logger->set_pattern("    log: %v");
  const rl::service limiter(o);

  struct step {
    std::string_view target;
    http::status expect;
  };
  constexpr std::array<step, 7> steps{{
      {"/check?key=ak-demo", http::status::ok},
      {"/check?key=ak-demo", http::status::ok},
      {"/check?key=ak-demo", http::status::ok},
      {"/check?key=ak-demo", http::status::too_many_requests},  // the fourth within a minute
      {"/check?key=ak-unknown", http::status::forbidden},
      {"/check", http::status::bad_request},
      {"/metrics", http::status::not_found},
  }};
  bool ok = true;
  auto fail = [&ok](const std::string& what) {
    fmt::print("check FAILED: {}\n", what);
    ok = false;
  };

  ember::runtime_options ro;
  ro.logger = std::make_shared<spdlog::logger>("ember", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  ro.logger->set_pattern("  [%l] %v");
  ember::io::context io(ember::io::on_workers, ro);  // the runtime's workers run the event loop
  const int status = ember::run(
      [&] {
        auto tree = limiter.start_link();
        if (!tree) ember::exit(tree.error());
        // The HTTP server: a process per connection, serving the limiter.
        const auto web = ember::io::tcp_server::start_link(
            io.get_executor(), {.endpoint = {asio::ip::address_v4::loopback(), 0}}, rl::http_handler(limiter, {}));
        const tcp::endpoint at = web.local_endpoint();
        fmt::print("\nHTTP front on 127.0.0.1 (system clock; ak-demo may send 3 a minute), "
                   "one keep-alive connection:\n");

        tcp::socket s(io.get_executor());
        s.async_connect(at, ember::io::use_process.timeout(5s));
        rl::http_detail::process_stream stream(s);  // Beast's read and write, waiting in this process
        beast::flat_buffer buffer;
        for (const step& st : steps) {
          http::request<http::empty_body> req{http::verb::get, beast::string_view(st.target.data(), st.target.size()),
                                               11};
          req.set(http::field::host, "127.0.0.1");
          stream.deadline_in(5s);
          http::write(stream, req);  // throws on failure: the run fails
          http::response<http::string_body> res;
          http::read(stream, buffer, res);
          const auto retry = res.find(http::field::retry_after);
          const std::string retry_after =
              retry == res.end() ? std::string() : fmt::format("  Retry-After: {}", std::string_view(retry->value()));
          fmt::print("  GET {:<22} -> {} {}{}  {}\n", st.target, res.result_int(),
                     std::string_view(res.reason()), retry_after, res.body());
          if (res.result() != st.expect)
            fail(fmt::format("GET {} answered {}, not {}", st.target, res.result_int(), unsigned(st.expect)));
          // A request refused by the minute can go again once its bucket
          // has left the window: at most 61 s.
          if (st.expect == http::status::too_many_requests) {
            const int seconds = retry == res.end() ? 0 : std::atoi(std::string(retry->value()).c_str());
            if (seconds < 1 || seconds > 61) fail(fmt::format("the 429 said Retry-After '{}'", retry_after));
          }
        }
        web.stop();                                   // the server drains and ends
        ember::exit(ember::exit_reason::shutdown());  // the tree (linked) goes with us
      },
      ro);
  if (status != 0) fail("the HTTP run did not end cleanly");
  if (ok) fmt::print("check: the HTTP front answered 200 three times, then 429 with Retry-After, 403, 400 and 404\n");
  return ok;
}

}  // namespace

int main() {
  const std::vector<customer> customers = make_customers();
  auto directory = std::make_shared<std::unordered_map<std::string, rl::contract>>();
  for (const customer& c : customers)
    directory->emplace(c.key, rl::contract{fmt::format("{} ({})", c.name, c.plan->name), c.plan->limits});

  auto clock = std::make_shared<ember::manual_clock>();
  auto sink = std::make_shared<sampled_sink>(clock);

  rl::options o;
  o.contracts = [directory = std::shared_ptr<const std::unordered_map<std::string, rl::contract>>(directory)](
                    const std::string& key) -> std::optional<rl::contract> {
    auto it = directory->find(key);
    if (it == directory->end()) return std::nullopt;
    return it->second;
  };
  o.lookup_delay = 250ms;
  o.idle_timeout = 30min;
  o.logger = std::make_shared<spdlog::logger>("rate_limiter", sink);
  o.clock = clock;
  const rl::service limiter(o);

  results out(customers.size());
  // The driver: once the tree runs, move the clock through the whole run
  // (traffic and all), then ask the application to shut down.  It is the
  // only one that ends the application, so no advance() can overlap the
  // runtime's end.
  std::promise<bool> tree_started;
  std::thread driver([&clock, started = tree_started.get_future()]() mutable {
    if (started.get()) clock->advance(ticks * tick_every + 1min);
    ember::application::stop();
  });

  ember::application::options app;
  app.runtime.clock = clock;
  app.runtime.logger = std::make_shared<spdlog::logger>("ember", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  app.runtime.logger->set_pattern("  [%l] %v");
  const int status = ember::application::run(
      [&]() -> sup::start_result {
        sup::child_spec traffic;
        traffic.id = "traffic";
        traffic.restart = sup::temporary;
        traffic.start = [&]() -> sup::started {
          // proc_lib's handshake: the supervisor goes on once the generator
          // is set up, so a shutdown cannot catch it half-made.
          return ember::proc_lib::start_link([&customers, limiter, clock, sink, &out](ember::proc_lib::starter& s) {
            traffic_generator generator(customers, limiter, clock, sink, out);
            s.init_ack();
            generator.run();
          });
        };
        auto root = sup::start_link({.strategy = sup::one_for_one}, {limiter.child_spec("rate_limiter"), traffic});
        tree_started.set_value(bool(root));
        return root;
      },
      app);
  try {
    tree_started.set_value(false);  // the start function never got that far
  } catch (const std::future_error&) {
  }
  driver.join();

  const tally& t = out.total;
  const rl::stats& s = out.service_stats;
  fmt::print("\ntotal: {} requests: {} admitted; refused by the minute {}, the hour {}, the day {}; unknown key {}, "
             "unavailable {}, overloaded {}\n",
             t.requests, t.admitted, t.refused[0], t.refused[1], t.refused[2], t.unknown_key, t.unavailable,
             t.overloaded);
  fmt::print("key servers: {} started, {} stopped when idle, {} took back parked windows; {} contract lookups\n",
             s.key_servers_started, s.idle_stops, s.windows_restored, s.lookups);
  const bool ok = check(customers, out);
  if (ok)
    fmt::print("check: no customer got more than its contract allows in any minute, hour or day ({} admitted "
               "requests, counted exactly); each hammering customer met all three limits\n",
               t.admitted);
  const bool http_ok = http_demo();
  return status == ember::application::exit_status::clean && ok && http_ok ? 0 : 1;
}
