// examples/rate_limiter — tests of the HTTP front (http_front.hpp) on
// ember::io::tcp_server, end to end over real 127.0.0.1 sockets: 200 while
// a key's quota lasts, then 429 with an exact Retry-After (a manual clock:
// no sleeps, exact values), 403 and 503, keep-alive and pipelining,
// 400/404/405, Connection: close, oversized request lines, headers and
// bodies (431, 413) closing the connection, the idle timeout, the server's
// drain, 200 concurrent connections, and clients that go away mid-request.
// Plus the mapping of decisions to answers, the parsing of the key and the
// options' checks, without sockets.
//
// Two set-ups: a manual clock (one worker; the test thread is the client,
// with an Asio io_context of its own, and moves the clock once a request
// waits for its contract lookup), and the system clock (two workers;
// clients are ember processes using ember::io::use_process).
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "ember/io/tcp_server.hpp"
#include "http_front.hpp"
#include "rate_limiter.hpp"
#include "support/support.hpp"

using namespace std::chrono_literals;
namespace rl = rate_limiter;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

using response = http::response<http::string_body>;

std::shared_ptr<spdlog::logger> quiet_logger() {
  return std::make_shared<spdlog::logger>("rate_limiter", std::make_shared<spdlog::sinks::null_sink_mt>());
}

/// A contract directory that counts the lookups it is asked, so that a test
/// can wait until a request waits for its contract before moving the clock.
class counting_directory {
public:
  explicit counting_directory(std::map<std::string, rl::contract> table) : s_(std::make_shared<state>()) {
    s_->table = std::move(table);
  }

  [[nodiscard]] rl::directory fn() const {
    return [s = s_](const std::string& key) -> std::optional<rl::contract> {
      std::lock_guard lk(s->m);
      ++s->asked;
      s->cv.notify_all();
      auto it = s->table.find(key);
      if (it == s->table.end()) return std::nullopt;
      return it->second;
    };
  }

  /// Block until n lookups in all have been asked (at most 10 s).
  void wait_for(std::size_t n) const {
    std::unique_lock lk(s_->m);
    const bool asked = s_->cv.wait_for(lk, 10s, [&] { return s_->asked >= n; });
    INFO("lookups asked: " << s_->asked << " of " << n);
    REQUIRE(asked);
  }

private:
  struct state {
    std::mutex m;
    std::condition_variable cv;
    std::size_t asked = 0;  // guarded by m
    std::map<std::string, rl::contract> table;
  };
  std::shared_ptr<state> s_;
};

constexpr milliseconds lookup_delay = 100ms;

/// Options for the manual-clock tests: ak-acme may send 3 a minute.
rl::options acme_options(const counting_directory& dir) {
  rl::options o;
  o.contracts = dir.fn();
  o.logger = quiet_logger();
  o.lookup_delay = lookup_delay;
  o.idle_timeout = 48h;  // key servers stay up
  return o;
}

counting_directory acme_directory() {
  return counting_directory({{"ak-acme", {"Acme Corp", {.per_minute = 3, .per_hour = 100, .per_day = 1000}}}});
}

/// The HTTP options of the manual-clock tests: no timeout fires unless a
/// test moves the clock past it.
rl::http_options manual_http() {
  rl::http_options h;
  h.idle_timeout = 1h;
  h.linger_timeout = 1h;
  h.unavailable_retry_after = 7s;
  return h;
}

/// The HTTP front on a manual clock: a one-worker runtime whose time moves
/// only when the test moves it, its event loop on that worker, the service
/// tree and the tcp_server started by one process.
class manual_front {
public:
  explicit manual_front(const counting_directory& dir, rl::options o, rl::http_options h = manual_http())
      : clock_(std::make_shared<ember::manual_clock>()), dir_(dir) {
    o.clock = clock_;
    ember::runtime_options ro = ember_test::manual_opts(clock_);
    io_.emplace(ember::io::on_workers, ro);
    rt_ = std::make_unique<ember::runtime>(ro);
    auto at = std::make_shared<std::optional<tcp::endpoint>>();
    auto web = std::make_shared<std::optional<ember::io::tcp_server>>();
    rt_->spawn([svc = rl::service(std::move(o)), h, at, web, &io = *io_] {
      auto tree = svc.start_link();
      if (!tree) ember::exit(tree.error());
      const auto server = ember::io::tcp_server::start_link(io.get_executor(), {}, rl::http_handler(svc, h));
      *at = server.local_endpoint();
      *web = server;
      ember::receive([](const ember::exit_message&) {});  // until the runtime stops
    });
    clock_->settle();
    REQUIRE(*at);
    at_ = **at;
    web_ = **web;
  }
  ~manual_front() { rt_->stop(); }

  [[nodiscard]] tcp::endpoint endpoint() const { return at_; }
  /// Wait until the n-th contract lookup has been asked, then move the
  /// clock by the lookup delay: the requests waiting for it are answered.
  void answer_lookup(std::size_t n) {
    dir_.wait_for(n);
    clock_->advance(lookup_delay);
  }
  void advance(milliseconds d) { clock_->advance(d); }
  /// Stop (drain) the server, in a process of its own; wait() on the
  /// result returns once the drain is over.
  ember::runtime::monitored stop_server() {
    return rt_->spawn_monitor([web = web_] { web.stop(); });
  }

private:
  std::shared_ptr<ember::manual_clock> clock_;
  const counting_directory& dir_;
  std::optional<ember::io::context> io_;
  std::unique_ptr<ember::runtime> rt_;
  tcp::endpoint at_;
  ember::io::tcp_server web_{ember::pid{}};
};

/// A client on the test thread, with an io_context of its own: each
/// operation runs with a 10 s deadline (a safety net that fails the test,
/// never a wait for an event).
class client {
public:
  explicit client(tcp::endpoint at) : sock_(ioc_) {
    sock_.connect(at);
    sock_.set_option(tcp::no_delay(true));
  }

  void send(std::string_view raw) { asio::write(sock_, asio::buffer(raw.data(), raw.size())); }
  void close() { sock_.close(); }
  void get(std::string_view target) { send("GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n"); }

  /// The next response (the test fails when none comes).  head: the
  /// request was HEAD (no body follows).
  response receive(bool head = false) {
    http::response_parser<http::string_body> p;
    p.skip(head);
    const boost::system::error_code ec =
        run([&](auto handler) { http::async_read(sock_, buf_, p, std::move(handler)); });
    INFO("reading a response: " << ec.message());
    REQUIRE(!ec);
    return p.release();
  }

  /// What the server does next: "eof" (it closed, sending nothing more),
  /// "data", "timeout", or the error.
  std::string next() {
    if (buf_.size() != 0) return "data";
    std::array<char, 1> c{};
    const boost::system::error_code ec =
        run([&](auto handler) { sock_.async_read_some(asio::buffer(c), std::move(handler)); });
    if (ec == asio::error::eof) return "eof";
    if (ec == asio::error::timed_out) return "timeout";
    return ec ? ec.message() : "data";
  }

private:
  template <class Start>
  boost::system::error_code run(Start start) {
    std::optional<boost::system::error_code> result;
    start([&result](boost::system::error_code ec, std::size_t) { result = ec; });
    ioc_.restart();
    ioc_.run_for(10s);
    if (result) return *result;
    sock_.cancel();
    ioc_.restart();
    ioc_.run();
    return asio::error::timed_out;
  }

  asio::io_context ioc_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
};

std::string header(const response& r, http::field f) {
  auto it = r.find(f);
  return it == r.end() ? std::string("(none)") : std::string(it->value());
}

/// The HTTP front on the system clock with two workers: run body(io, at,
/// service) in a process while the service and its tcp_server run; then
/// stop (drain) the server and the runtime.
///
/// body must leave no connection to the server that can end by itself
/// while the server stops (its clients keep their sockets open): a child
/// that exits just as its supervisor begins to stop it can leave the
/// supervisor waiting for ever (its `down` is swept aside before the wait
/// looks for it), and the drain with it.  Tests that need a connection to
/// end use serve_connection directly (served_directly below).
template <class F>
void with_real_front(rl::options o, rl::http_options h, F body) {
  auto ro = ember_test::opts(2);
  ember::io::context io(ember::io::on_workers, ro);
  ember::runtime rt(ro);
  auto r = rt.spawn_monitor([&] {
              rl::service svc(std::move(o));
              auto tree = svc.start_link();
              REQUIRE(tree);
              const auto web = ember::io::tcp_server::start_link(io.get_executor(), {}, rl::http_handler(svc, h));
              body(io, web.local_endpoint(), svc);
              web.stop();
              ember::exit(ember::exit_reason::shutdown());  // the tree goes with it
            }).wait();
  INFO("exit reason: " << r);
  CHECK(r == ember::exit_reason::shutdown());
}

/// A connection served by serve_connection in a monitored process of its
/// own, accepted on `acc` (no tcp_server): the client's socket and the
/// server's pid.  Process context.
struct direct_connection {
  tcp::socket client;
  ember::pid server;
};
direct_connection served_directly(ember::io::context& io, tcp::acceptor& acc, const rl::service& svc,
                                  const rl::http_options& h) {
  tcp::socket c(io.get_executor());
  c.async_connect(acc.local_endpoint(), ember::io::use_process);
  tcp::socket accepted = acc.async_accept(ember::io::use_process);
  const ember::pid server = ember::spawn_monitor([s = std::move(accepted), svc, h]() mutable {
                              rl::serve_connection(std::move(s), svc, h);
                            }).first;
  return {std::move(c), server};
}

/// How the monitored process `p` ended (10 s at most).
ember::exit_reason end_of_process(ember::pid p) {
  return ember::receive(ember::when([p](const ember::down& d) { return d.who == p; },
                                    [](const ember::down& d) { return d.reason; }),
                        ember::after(10s, [] { return ember::exit_reason::error("no down within 10 s"); }));
}

/// What the peer of s does next: "eof" (it closed, sending nothing more),
/// "data", or the error (10 s at most).  Process context.
std::string end_of_stream(tcp::socket& s) {
  char c;
  boost::system::error_code ec;
  s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(ember::io::use_process.timeout(10s), ec));
  return ec == asio::error::eof ? std::string("eof") : ec ? ec.message() : std::string("data");
}

/// Options for the system-clock tests: any key "ak-..." with room to spare.
rl::options roomy_options(milliseconds delay = 1ms) {
  rl::options o;
  o.contracts = [](const std::string& key) -> std::optional<rl::contract> {
    if (key.rfind("ak-", 0) != 0) return std::nullopt;
    return rl::contract{"customer " + key, {.per_minute = 10000, .per_hour = 100000, .per_day = 1000000}};
  };
  o.logger = quiet_logger();
  o.lookup_delay = delay;
  return o;
}

/// One GET from a process, on its connection s; the answer.  (Beast's
/// synchronous algorithms over the front's process_stream: each socket
/// operation waits in the process, 10 s at most.)
response ask_in_process(tcp::socket& s, beast::flat_buffer& buf, std::string_view target) {
  http::request<http::empty_body> req{http::verb::get, beast::string_view(target.data(), target.size()), 11};
  req.set(http::field::host, "127.0.0.1");
  rl::http_detail::process_stream stream(s);
  stream.deadline_in(10s);
  http::write(stream, req);
  response res;
  http::read(stream, buf, res);
  return res;
}

struct client_done {
  int client;
  std::string problem;  // empty: every answer was right
};
struct hold_on {};  // never sent

}  // namespace

// ---- without sockets -------------------------------------------------------------

TEST_CASE("http: each decision has its status — Retry-After in whole seconds rounded up, none when never",
          "[rate_limiter][http]") {
  rl::http_options h;
  h.unavailable_retry_after = 3s;
  using rl::http_detail::decision_response;
  using rl::window;

  response ok = decision_response(rl::decision::admit(), h);
  CHECK(ok.result() == http::status::ok);
  CHECK(ok.body() == R"({"result":"admitted"})");
  CHECK(header(ok, http::field::content_type) == "application/json");
  CHECK(header(ok, http::field::retry_after) == "(none)");

  const std::pair<milliseconds, std::string> rounding[] = {
      {1ms, "1"}, {999ms, "1"}, {1000ms, "1"}, {1001ms, "2"}, {60'900ms, "61"}, {4h + 15min, "15300"}};
  for (const auto& [wait, seconds] : rounding) {
    response r = decision_response(rl::decision::refuse(window::minute, 3, 3, wait), h);
    INFO("retry_after " << wait.count() << " ms");
    CHECK(r.result() == http::status::too_many_requests);
    CHECK(header(r, http::field::retry_after) == seconds);
  }
  response hour = decision_response(rl::decision::refuse(window::hour, 30, 30, 60'900ms), h);
  CHECK(hour.body() == R"({"result":"refused","window":"hour","count":30,"limit":30,"retry_after_ms":60900})");
  response never = decision_response(rl::decision::refuse(window::day, 0, 0, std::nullopt), h);
  CHECK(never.result() == http::status::too_many_requests);
  CHECK(header(never, http::field::retry_after) == "(none)");
  CHECK(never.body() == R"({"result":"refused","window":"day","count":0,"limit":0,"retry_after_ms":null})");

  response unknown = decision_response(rl::decision::unknown_key(), h);
  CHECK(unknown.result() == http::status::forbidden);
  CHECK(header(unknown, http::field::retry_after) == "(none)");
  for (const rl::decision& d : {rl::decision::overloaded(), rl::decision::unavailable()}) {
    response r = decision_response(d, h);
    INFO(d);
    CHECK(r.result() == http::status::service_unavailable);
    CHECK(header(r, http::field::retry_after) == "3");
    CHECK(r.body() == R"({"result":")" + std::string(rl::name_of(d.result)) + R"("})");
  }
}

TEST_CASE("http: the key is taken from the query once, percent-decoded and checked", "[rate_limiter][http]") {
  using rl::http_detail::key_from_query;
  auto key = [](std::string_view q) { return key_from_query(q, 16).value; };
  auto error = [](std::string_view q) { return std::string(key_from_query(q, 16).error); };
  CHECK(key("key=ak-acme") == "ak-acme");
  CHECK(key("x=1&key=ak-acme&y") == "ak-acme");
  CHECK(key("key=ak%2Dacme%2b") == "ak-acme+");
  CHECK(key("key=a+b") == "a+b");  // '+' is a plus sign
  CHECK(key("keys=1&key=k") == "k");
  CHECK(error("key=ak-acme") == "");
  CHECK(error("") == "missing key");
  CHECK(error("key") == "missing key");
  CHECK(error("key=") == "missing key");
  CHECK(error("other=ak-acme") == "missing key");
  CHECK(error("key=a&key=b") == "key given more than once");
  CHECK(error("key=%zz") == "bad percent-encoding in key");
  CHECK(error("key=ab%4") == "bad percent-encoding in key");
  CHECK(error("key=0123456789abcdef") == "");
  CHECK(error("key=0123456789abcdefg") == "key too long");
  CHECK(error("key=a%20b") == "key must be printable ASCII without spaces");
  CHECK(error("key=a%00b") == "key must be printable ASCII without spaces");
  CHECK(error("key=%C3%A9") == "key must be printable ASCII without spaces");
}

TEST_CASE("http: options out of range are refused when the handler is made", "[rate_limiter][http]") {
  auto limiter = rl::service(roomy_options());
  CHECK_NOTHROW(rl::http_handler(limiter, {}));
  auto bad = [&](auto change) {
    rl::http_options h;
    change(h);
    CHECK_THROWS_AS(rl::http_handler(limiter, h), std::invalid_argument);
  };
  bad([](rl::http_options& h) { h.idle_timeout = 0ms; });
  bad([](rl::http_options& h) { h.write_timeout = -1ms; });
  bad([](rl::http_options& h) { h.linger_timeout = milliseconds(ember::max_timer_delay) + 1ms; });
  bad([](rl::http_options& h) { h.header_limit = 0; });
  bad([](rl::http_options& h) { h.body_limit = std::uint64_t(1) << 33; });
  bad([](rl::http_options& h) { h.max_key_length = 0; });
  bad([](rl::http_options& h) { h.unavailable_retry_after = -1s; });
}

// ---- over a socket, on a manual clock ----------------------------------------------

TEST_CASE("http: 200 while a key's quota lasts, then 429 with an exact Retry-After, then 200 once it has passed "
          "— all on one connection",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  manual_front front(dir, acme_options(dir));
  client c(front.endpoint());

  // The first request waits for the key's contract, looked up once.
  c.get("/check?key=ak-acme");
  front.answer_lookup(1);  // now 0.1 s: the request is admitted then
  response r = c.receive();
  CHECK(r.result() == http::status::ok);
  CHECK(r.body() == R"({"result":"admitted"})");
  CHECK(r.keep_alive());
  for (int i = 0; i < 2; ++i) {
    c.get("/check?key=ak-acme");
    CHECK(c.receive().result() == http::status::ok);
  }
  // The fourth within the minute: the first leaves at 61 s (its bucket's
  // end), 60.9 s from now, so Retry-After says 61.
  c.get("/check?key=ak-acme");
  r = c.receive();
  CHECK(r.result() == http::status::too_many_requests);
  CHECK(header(r, http::field::retry_after) == "61");
  CHECK(r.body() == R"({"result":"refused","window":"minute","count":3,"limit":3,"retry_after_ms":60900})");
  CHECK(r.keep_alive());

  front.advance(60'900ms - 1ms);  // a millisecond short: still refused
  c.get("/check?key=ak-acme");
  r = c.receive();
  CHECK(r.result() == http::status::too_many_requests);
  CHECK(header(r, http::field::retry_after) == "1");
  front.advance(1ms);
  c.get("/check?key=ak-acme");
  CHECK(c.receive().result() == http::status::ok);
}

TEST_CASE("http: an unknown key is 403 — and 503 with Retry-After when the limiter cannot decide (max_keys)",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  rl::options o = acme_options(dir);
  o.max_keys = 1;
  manual_front front(dir, o);
  client c(front.endpoint());

  c.get("/check?key=ak-revoked");
  front.answer_lookup(1);
  response r = c.receive();
  CHECK(r.result() == http::status::forbidden);
  CHECK(r.body() == R"({"result":"unknown_key"})");
  // The unknown key's server holds the one place: a new key cannot be decided.
  c.get("/check?key=ak-acme");
  r = c.receive();
  CHECK(r.result() == http::status::service_unavailable);
  CHECK(header(r, http::field::retry_after) == "7");
  CHECK(r.body() == R"({"result":"unavailable"})");
  CHECK(r.keep_alive());
}

TEST_CASE("http: 400 for a missing or bad key, 404 for another path, 405 with Allow for another method — "
          "the connection stays usable",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  manual_front front(dir, acme_options(dir));
  client c(front.endpoint());

  for (std::string_view target : {"/check", "/check?key=", "/check?key=%zz", "/check?key=a&key=b", "/check?other=1"}) {
    INFO(target);
    c.get(target);
    response r = c.receive();
    CHECK(r.result() == http::status::bad_request);
    CHECK(r.body().find(R"("error":)") != std::string::npos);
    CHECK(r.keep_alive());
  }
  for (std::string_view target : {"/", "/checks?key=ak-acme", "/check/ak-acme", "/nope"}) {
    INFO(target);
    c.get(target);
    response r = c.receive();
    CHECK(r.result() == http::status::not_found);
    CHECK(r.body() == R"({"error":"no such resource"})");
  }
  c.send("POST /check?key=ak-acme HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi");
  response r = c.receive();
  CHECK(r.result() == http::status::method_not_allowed);
  CHECK(header(r, http::field::allow) == "GET");
  c.send("DELETE /check?key=ak-acme HTTP/1.1\r\nHost: test\r\n\r\n");
  CHECK(c.receive().result() == http::status::method_not_allowed);
  // HEAD: the headers a GET of the same would carry, no body.
  c.send("HEAD /check?key=ak-acme HTTP/1.1\r\nHost: test\r\n\r\n");
  r = c.receive(true);
  CHECK(r.result() == http::status::method_not_allowed);
  CHECK(header(r, http::field::content_length) == std::to_string(std::string_view(R"({"error":"only GET"})").size()));
  // None of these reached the limiter; the connection still serves.
  c.get("/check?key=ak-acme");
  front.answer_lookup(1);
  CHECK(c.receive().result() == http::status::ok);
}

TEST_CASE("http: pipelined requests on one connection are answered in order", "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  manual_front front(dir, acme_options(dir));
  client c(front.endpoint());
  c.get("/check?key=ak-acme");
  front.answer_lookup(1);
  CHECK(c.receive().result() == http::status::ok);

  std::string five;
  for (std::string_view target : {"/check?key=ak-acme", "/nope", "/check?key=ak-acme", "/check", "/check?key=ak-acme"})
    five += "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n\r\n";
  c.send(five);
  CHECK(c.receive().result() == http::status::ok);
  CHECK(c.receive().result() == http::status::not_found);
  CHECK(c.receive().result() == http::status::ok);
  CHECK(c.receive().result() == http::status::bad_request);
  CHECK(c.receive().result() == http::status::too_many_requests);  // the fourth of the minute
}

TEST_CASE("http: Connection: close is honoured — HTTP/1.0 closes unless it asks for keep-alive",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  manual_front front(dir, acme_options(dir));
  {
    client c(front.endpoint());
    c.send("GET /nope HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    response r = c.receive();
    CHECK(r.result() == http::status::not_found);
    CHECK(!r.keep_alive());
    CHECK(header(r, http::field::connection) == "close");
    CHECK(c.next() == "eof");
  }
  {
    client c(front.endpoint());
    c.send("GET /nope HTTP/1.0\r\n\r\n");
    response r = c.receive();
    CHECK(r.version() == 10);
    CHECK(!r.keep_alive());
    CHECK(c.next() == "eof");
  }
  {
    client c(front.endpoint());
    c.send("GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(c.receive().keep_alive());
    c.send("GET /check HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(c.receive().result() == http::status::bad_request);
  }
}

TEST_CASE("http: an oversized request line or header is answered 431, a malformed request 400 — "
          "and the connection closed",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  rl::http_options h = manual_http();
  h.header_limit = 4096;
  manual_front front(dir, acme_options(dir), h);

  const std::string big(16 * 1024, 'a');
  const std::pair<std::string, http::status> cases[] = {
      {"GET /check?key=" + big + " HTTP/1.1\r\nHost: test\r\n\r\n", http::status::request_header_fields_too_large},
      {"GET /check?key=ak-acme HTTP/1.1\r\nHost: test\r\nX-Big: " + big + "\r\n\r\n",
       http::status::request_header_fields_too_large},
      {"GET /check?key=" + big, http::status::request_header_fields_too_large},  // never ends
      {"GET /check?key=ak-acme HTTP/1.1\r\nHost: test\r\n" + [&] {
         std::string many;
         for (int i = 0; i < 600; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
         return many;
       }() + "\r\n",
       http::status::request_header_fields_too_large},
      {"HELLO\r\n\r\n", http::status::bad_request},
      {"GET /check?key=ak-acme FTP/1.1\r\n\r\n", http::status::bad_request},
      {"GET /check?key=ak-acme HTTP/1.1\r\nContent-Length: x\r\n\r\n", http::status::bad_request},
      {"GET /check?key=ak-acme HTTP/1.1\r\nBad Field: 1\r\n\r\n", http::status::bad_request},
  };
  for (const auto& [raw, status] : cases) {
    INFO(raw.substr(0, 60) << " (" << raw.size() << " bytes)");
    client c(front.endpoint());
    c.send(raw);
    response r = c.receive();
    CHECK(r.result() == status);
    CHECK(!r.keep_alive());
    CHECK(c.next() == "eof");
  }
}

TEST_CASE("http: a body over the limit is answered 413 and the connection closed", "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  rl::http_options h = manual_http();
  h.body_limit = 64;
  manual_front front(dir, acme_options(dir), h);
  {  // announced by Content-Length: answered before the body is read
    client c(front.endpoint());
    c.send("POST /check?key=ak-acme HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n" +
           std::string(1000, 'x'));
    response r = c.receive();
    CHECK(r.result() == http::status::payload_too_large);
    CHECK(!r.keep_alive());
    CHECK(c.next() == "eof");
  }
  {  // chunked: answered once the chunks pass the limit
    client c(front.endpoint());
    c.send("POST /check?key=ak-acme HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
           "28\r\n" + std::string(40, 'x') + "\r\n28\r\n" + std::string(40, 'x') + "\r\n0\r\n\r\n");
    response r = c.receive();
    CHECK(r.result() == http::status::payload_too_large);
    CHECK(c.next() == "eof");
  }
  {  // within the limit: read whole, then routed (405: /check takes GET)
    client c(front.endpoint());
    c.send("POST /check?key=ak-acme HTTP/1.1\r\nHost: test\r\nContent-Length: 64\r\n\r\n" + std::string(64, 'x'));
    CHECK(c.receive().result() == http::status::method_not_allowed);
    c.get("/nope");
    CHECK(c.receive().result() == http::status::not_found);
  }
}

TEST_CASE("http: a connection waits idle_timeout on the runtime's clock for a request, then closes quietly",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  rl::http_options h = manual_http();
  h.idle_timeout = 30s;
  manual_front front(dir, acme_options(dir), h);
  client c(front.endpoint());
  // An answer proves the connection's process runs and has started its
  // wait for the next request (it answers, then waits, with no time moving
  // between): the idle time counts from here.
  c.get("/nope");
  CHECK(c.receive().result() == http::status::not_found);
  c.send("GET /check?key=ak");  // half a request
  front.advance(30s - 1ms);
  c.send("-acme HTTP/1.1\r\nHost: test\r\n\r\n");  // whole, a millisecond early
  front.answer_lookup(1);
  CHECK(c.receive().result() == http::status::ok);
  front.advance(30s);  // nothing comes for 30 s
  CHECK(c.next() == "eof");
}

TEST_CASE("http: the server's drain closes a connection waiting for its next request at once, and answers a request "
          "being decided, with Connection: close",
          "[rate_limiter][http]") {
  const counting_directory dir = acme_directory();
  manual_front front(dir, acme_options(dir));
  client idle(front.endpoint());
  idle.get("/nope");
  CHECK(idle.receive().result() == http::status::not_found);
  client busy(front.endpoint());
  busy.get("/check?key=ak-acme");
  dir.wait_for(1);  // busy's request waits for its contract

  auto stopping = front.stop_server();
  const std::string idle_end = idle.next();
  CHECK(idle_end == "eof");  // no time has moved: the drain ended its wait
  if (idle_end != "eof") front.advance(ember::io::tcp_server_options{}.drain_timeout);  // (so that the test ends)
  front.answer_lookup(1);
  response r = busy.receive();
  CHECK(r.result() == http::status::ok);
  CHECK(!r.keep_alive());
  CHECK(busy.next() == "eof");
  busy.close();  // its connection, lingering for this, ends: the drain is over
  const ember::exit_reason stopped = stopping.wait();
  INFO("the stopping process: " << stopped);
  CHECK(stopped.is_normal());
  CHECK_THROWS_AS(client(front.endpoint()), boost::system::system_error);  // nobody listens now
}

// ---- over a socket, on the system clock ------------------------------------------

TEST_CASE("http: many concurrent connections each doing a few requests are all answered", "[rate_limiter][http]") {
  const int clients = int(ember_test::scaled(200, 40));
  constexpr int requests = 3;
  with_real_front(roomy_options(), {}, [clients](ember::io::context& io, tcp::endpoint at, const rl::service&) {
    const ember::pid me = ember::self();
    for (int c = 0; c < clients; ++c)
      ember::spawn([&io, at, me, c] {
        tcp::socket s(io.get_executor());
        s.async_connect(at, ember::io::use_process.timeout(10s));
        beast::flat_buffer buf;
        std::string problem;
        for (int i = 0; i < requests; ++i) {
          response r = ask_in_process(s, buf, "/check?key=ak-" + std::to_string(c % 20));
          if (r.result() != http::status::ok || !r.keep_alive())
            problem += fmt::format("request {}: {} keep-alive {}; ", i, r.result_int(), r.keep_alive());
        }
        ember::send(me, client_done{c, problem});
        ember::receive([](const hold_on&) {});  // the connection stays open until the runtime stops
      });
    for (int c = 0; c < clients; ++c)
      ember::receive(
          [](const client_done& d) {
            INFO("client " << d.client);
            CHECK(d.problem == "");
          },
          ember::after(60s, [] { FAIL("a client got no answers"); }));
  });
}

TEST_CASE("http: an idle connection, or one that stalls mid-request, is closed after idle_timeout without an answer",
          "[rate_limiter][http]") {
  rl::http_options h;
  h.idle_timeout = 50ms;
  with_real_front(roomy_options(), h, [h](ember::io::context& io, tcp::endpoint, const rl::service& svc) {
    tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
    direct_connection idle = served_directly(io, acc, svc, h);
    CHECK(end_of_stream(idle.client) == "eof");
    CHECK(end_of_process(idle.server).is_normal());
    direct_connection stalled = served_directly(io, acc, svc, h);
    asio::async_write(stalled.client, asio::buffer(std::string("GET /check?key=ak-1 HTTP/1.1\r\nHo")),
                      ember::io::use_process);
    CHECK(end_of_stream(stalled.client) == "eof");
    CHECK(end_of_process(stalled.server).is_normal());
  });
}

TEST_CASE("http: a client that goes away mid-request, or before its answer, ends its connection's process "
          "normally — the server goes on",
          "[rate_limiter][http]") {
  rl::http_options h;
  h.idle_timeout = 10s;
  // A lookup slow enough that the client of the last case has gone before
  // its answer is written.
  with_real_front(roomy_options(50ms), h, [h](ember::io::context& io, tcp::endpoint at, const rl::service& svc) {
    tcp::acceptor acc(io.get_executor(), {asio::ip::address_v4::loopback(), 0});
    enum class leave { close, reset };
    const std::tuple<std::string, std::string, leave> cases[] = {
        {"half a request line", "GET /check?ke", leave::close},
        {"half a header", "GET /check?key=ak-1 HTTP/1.1\r\nHost: te", leave::close},
        {"a body cut short", "POST /check?key=ak-1 HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789", leave::close},
        {"a reset mid-header", "GET /check?key=ak-1 HTTP/1.1\r\nHo", leave::reset},
        {"gone before the answer", "GET /check?key=ak-slow HTTP/1.1\r\nHost: test\r\n\r\n", leave::close},
    };
    for (const auto& [what, raw, how] : cases) {
      INFO(what);
      direct_connection conn = served_directly(io, acc, svc, h);
      asio::async_write(conn.client, asio::buffer(raw), ember::io::use_process);
      if (how == leave::reset) conn.client.set_option(asio::socket_base::linger(true, 0));
      conn.client.close();
      const ember::exit_reason r = end_of_process(conn.server);
      INFO("exit reason: " << r);
      CHECK(r.is_normal());
    }
    CHECK(svc.counters().lookups == 1);  // the last case's request reached the limiter
    // The server and the limiter are unharmed: a new connection is served.
    const ember::pid me = ember::self();
    ember::spawn([&io, at, me] {
      tcp::socket s(io.get_executor());
      s.async_connect(at, ember::io::use_process);
      beast::flat_buffer buf;
      const response r = ask_in_process(s, buf, "/check?key=ak-1");
      ember::send(me, client_done{0, r.result() == http::status::ok ? "" : std::to_string(r.result_int())});
      ember::receive([](const hold_on&) {});  // the connection stays open until the runtime stops
    });
    ember::receive([](const client_done& d) { CHECK(d.problem == ""); },
                   ember::after(10s, [] { FAIL("no answer"); }));
  });
}
