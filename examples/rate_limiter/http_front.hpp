// examples/rate_limiter/http_front.hpp — the rate limiter over HTTP/1.1: one
// ember process per connection (ember::io::tcp_server's), Boost.Beast for
// the protocol, every socket read and write through ember::io::use_process
// (so a connection waits only for itself, and a kill or an exit signal
// cancels what it waits for).
//
//   rate_limiter::service limiter(opts);          // its tree started somewhere
//   auto web = ember::io::tcp_server::start_link(io.get_executor(),
//       {.endpoint = {address_v4::loopback(), 8080}},
//       rate_limiter::http_handler(limiter, {}));   // serve_connection per connection
//
// Routes (docs/examples/rate_limiter.md has them as a table):
//   GET /check?key=K   service::check(K), answered by its decision's outcome:
//                        admitted     200, {"result":"admitted"}
//                        refused      429, Retry-After: the decision's
//                                     retry_after in whole seconds, rounded up
//                                     (none when a limit of 0 never lets it
//                                     through); the body names the window
//                        unknown_key  403
//                        overloaded,
//                        unavailable  503, Retry-After:
//                                     http_options::unavailable_retry_after
//                      K is percent-decoded ('+' stays a plus sign) and must
//                      be 1 to max_key_length printable ASCII characters,
//                      given once: else 400 (the connection stays open).
//   /check, any other method: 405 with Allow: GET.  Any other path: 404.
//   Bodies are small JSON objects; the answer to a HEAD request has the
//   headers only.
//
// The connection (serve_connection), one request after another (HTTP/1.1
// keep-alive; pipelined requests are answered in order):
//  - A request must come whole within idle_timeout (on the runtime's clock)
//    of the previous answer, or of the accept: else the connection is
//    closed without an answer.  So is one that ends (end of stream, a reset,
//    a request cut off half-way): nothing is logged, the process ends
//    normally.
//  - Bounded input: the request line and header fields at most header_limit
//    bytes (more: 431), a body at most body_limit bytes (more, by
//    Content-Length or by chunks: 413), any other malformed request: 400.
//    Each of these answers closes the connection.  Unparsed input is
//    buffered up to header_limit + body_limit bytes, a body up to
//    body_limit.
//  - "Connection: close" (and HTTP/1.0 without keep-alive) is honoured: the
//    answer says Connection: close and the connection closes after it.
//  - Closing after an answer is graceful: the server shuts its sending side
//    down, then reads and drops up to linger_bytes of what the client still
//    sends, for at most linger_timeout, so that the client reads the answer
//    instead of a reset.
//  - An answer that cannot be written within write_timeout (a client that
//    does not read) closes the connection.
//  - tcp_server's drain (its stop, or its supervisor's shutdown) reaches the
//    connection process, which traps exits, as an exit signal: a
//    connection waiting for its next request closes at once; a request
//    being read or decided is answered, with Connection: close, and the
//    connection closes after it.  (A process that does not trap exits is
//    simply ended by the signal, its socket closed.)
//
// Beast's synchronous http::read and http::write run over process_stream,
// whose read_some and write_some are single socket operations waited for
// with use_process (process_stream says why not Beast's asynchronous ones).
//
// Threads: serve_connection runs in process context, in the process that
// owns the socket (closed when it returns or its process ends); the
// handler http_handler makes is called by tcp_server in each connection's
// process.  Ownership: the service is a shared handle, copied into the
// handler.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "ember/ember.hpp"
#include "ember/io/io.hpp"
#include "ember/io/tcp_server.hpp"
#include "rate_limiter.hpp"

namespace rate_limiter {

/// How the HTTP front serves a connection.
struct http_options {
  /// A request must come whole within this long of the previous answer (or
  /// of the accept); else the connection is closed without an answer.
  milliseconds idle_timeout{std::chrono::seconds(30)};
  /// An answer must be written within this long; else the connection closes.
  milliseconds write_timeout{std::chrono::seconds(10)};
  /// The request line and header fields, in bytes, at most (more: 431).
  std::uint32_t header_limit = 8 * 1024;
  /// A request body, in bytes, at most (more: 413).  /check takes none.
  std::uint64_t body_limit = 1024;
  /// The longest API key accepted (longer: 400).
  std::size_t max_key_length = 128;
  /// Retry-After on a 503 (the limiter shed the request or could not decide).
  std::chrono::seconds unavailable_retry_after{1};
  /// Closing after an answer: unread input dropped at most, and for how long.
  std::size_t linger_bytes = 64 * 1024;
  milliseconds linger_timeout{std::chrono::seconds(2)};
};

/// Throws std::invalid_argument for a duration that is not positive (or
/// beyond ~49 days), a limit of 0, or a negative Retry-After.
inline void validate(const http_options& o) {
  for (milliseconds d : {o.idle_timeout, o.write_timeout, o.linger_timeout})
    if (d <= milliseconds(0) || d > ember::max_timer_delay)
      throw std::invalid_argument("rate_limiter::http_options: timeouts must be positive and at most ~49 days");
  if (o.header_limit == 0 || o.body_limit > std::numeric_limits<std::uint32_t>::max() || o.max_key_length == 0)
    throw std::invalid_argument(
        "rate_limiter::http_options: header_limit and max_key_length must be positive, body_limit at most 4 GiB");
  if (o.unavailable_retry_after < std::chrono::seconds(0))
    throw std::invalid_argument("rate_limiter::http_options: unavailable_retry_after must not be negative");
}

namespace http_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

/// A duration in whole seconds, rounded up (Retry-After's unit).
inline std::int64_t seconds_up(milliseconds d) { return d.count() <= 0 ? 0 : (d.count() + 999) / 1000; }

inline response json_response(http::status status, std::string body) {
  response res;
  res.result(status);
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

inline response error_response(http::status status, std::string_view what) {
  return json_response(status, fmt::format(R"({{"error":"{}"}})", what));
}

/// The answer to a decision (the table at the top of this file).
inline response decision_response(const decision& d, const http_options& o) {
  switch (d.result) {
    case outcome::admitted: return json_response(http::status::ok, R"({"result":"admitted"})");
    case outcome::refused: {
      response res = json_response(
          http::status::too_many_requests,
          fmt::format(R"({{"result":"refused","window":"{}","count":{},"limit":{},"retry_after_ms":{}}})",
                      name_of(d.hit), d.count, d.limit,
                      d.retry_after ? std::to_string(d.retry_after->count()) : std::string("null")));
      if (d.retry_after) res.set(http::field::retry_after, std::to_string(seconds_up(*d.retry_after)));
      return res;
    }
    case outcome::unknown_key: return json_response(http::status::forbidden, R"({"result":"unknown_key"})");
    case outcome::overloaded:
    case outcome::unavailable: {
      response res =
          json_response(http::status::service_unavailable, fmt::format(R"({{"result":"{}"}})", name_of(d.result)));
      res.set(http::field::retry_after, std::to_string(o.unavailable_retry_after.count()));
      return res;
    }
  }
  return error_response(http::status::internal_server_error, "unexpected decision");
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The query parameter `key`, percent-decoded and checked; or why not.
struct key_param {
  std::string value;
  std::string_view error;  // empty: value is good
};

inline key_param key_from_query(std::string_view query, std::size_t max_length) {
  key_param r;
  bool found = false;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != "key") continue;
    if (found) return {{}, "key given more than once"};
    found = true;
    const std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (raw.size() > 3 * max_length) return {{}, "key too long"};  // decodes to more than max_length
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        r.value += raw[i];
        continue;
      }
      const int hi = i + 2 < raw.size() ? hex_value(raw[i + 1]) : -1;
      const int lo = i + 2 < raw.size() ? hex_value(raw[i + 2]) : -1;
      if (hi < 0 || lo < 0) return {{}, "bad percent-encoding in key"};
      r.value += char(hi * 16 + lo);
      i += 2;
    }
  }
  if (r.value.empty()) return {{}, "missing key"};
  if (r.value.size() > max_length) return {{}, "key too long"};
  for (char c : r.value)
    if (c < '!' || c > '~') return {{}, "key must be printable ASCII without spaces"};
  return r;
}

/// The answer to one well-formed request (process context: it may call the
/// limiter).
inline response route(const request& req, const service& limiter, const http_options& o) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (path != "/check") return error_response(http::status::not_found, "no such resource");
  if (req.method() != http::verb::get) {
    response res = error_response(http::status::method_not_allowed, "only GET");
    res.set(http::field::allow, "GET");
    return res;
  }
  const key_param key =
      key_from_query(q == std::string_view::npos ? std::string_view() : target.substr(q + 1), o.max_key_length);
  if (!key.error.empty()) return error_response(http::status::bad_request, key.error);
  return decision_response(limiter.check(key.value), o);
}

/// What a failed read is answered: nothing (close quietly) for a stream
/// that ended, a timeout or a socket error; 431, 413 or 400 for a request
/// that broke the limits or the protocol.
inline std::optional<http::status> status_for(const boost::system::error_code& ec, bool header_done) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) return std::nullopt;
  switch (static_cast<http::error>(ec.value())) {
    case http::error::end_of_stream:   // closed between requests
    case http::error::partial_message:  // closed half-way through one
    case http::error::short_read: return std::nullopt;
    case http::error::header_limit: return http::status::request_header_fields_too_large;
    case http::error::body_limit: return http::status::payload_too_large;
    case http::error::buffer_overflow:
      return header_done ? http::status::payload_too_large : http::status::request_header_fields_too_large;
    default: return http::status::bad_request;
  }
}

/// The answer to a request that broke the limits or the protocol (it
/// closes the connection).
inline response refusal_response(http::status status) {
  const std::string_view what = status == http::status::request_header_fields_too_large ? "header too large"
                                : status == http::status::payload_too_large            ? "body too large"
                                                                                       : "bad request";
  response res = error_response(status, what);
  res.version(11);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

/// The connection's socket as a synchronous stream for Beast's http::read
/// and http::write: each read_some and write_some is one socket operation
/// that the calling process waits for through ember::io::use_process, until
/// the deadline last set (then asio::error::timed_out).  After
/// interrupt_next_read(), the next read_some is also ended by an exit
/// signal the process traps (use_process.interruptible()), until a read
/// brings data.
///
/// Beast's synchronous algorithms over single socket operations: each read
/// gets what is left of one deadline for the whole request, and only the
/// read that waits for a new request is interruptible.  (Beast's
/// asynchronous operations with use_process work as well; a timeout on one
/// cancels the whole composed operation.)
class process_stream {
public:
  using executor_type = tcp::socket::executor_type;

  explicit process_stream(tcp::socket& s) noexcept : s_(s) {}

  /// The operations from now on must be over within d.
  void deadline_in(milliseconds d) { deadline_ = ember::now() + d; }
  /// A trapped exit signal ends the reads from now on until one brings data.
  void interrupt_next_read() noexcept { interruptible_ = true; }

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& b, boost::system::error_code& ec) {
    const auto left = deadline_ - ember::now();
    if (left <= std::chrono::nanoseconds(0)) {
      ec = asio::error::timed_out;
      return 0;
    }
    ember::io::use_process_t token = ember::io::use_process.timeout(left);
    if (interruptible_) token = token.interruptible();
    const std::size_t n = s_.async_read_some(b, asio::redirect_error(token, ec));
    if (n > 0) interruptible_ = false;
    return n;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& b) {
    boost::system::error_code ec;
    const std::size_t n = read_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& b, boost::system::error_code& ec) {
    const auto left = deadline_ - ember::now();
    if (left <= std::chrono::nanoseconds(0)) {
      ec = asio::error::timed_out;
      return 0;
    }
    return s_.async_write_some(b, asio::redirect_error(ember::io::use_process.timeout(left), ec));
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& b) {
    boost::system::error_code ec;
    const std::size_t n = write_some(b, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  executor_type get_executor() { return s_.get_executor(); }

private:
  tcp::socket& s_;
  ember::time_point deadline_{};
  bool interruptible_ = false;
};

/// Whether the server is draining: tcp_server tells a connection process
/// (which traps exits) with an exit signal, here taken as an exit_message
/// if one is waiting.  Never waits.
inline bool drain_requested() {
  return ember::receive([](const ember::exit_message&) { return true; },
                        ember::after(std::chrono::milliseconds(0), [] { return false; }));
}

/// Write one answer within write_timeout; false when it could not be (the
/// connection is done).
inline bool write(process_stream& stream, response& res, const http_options& o) {
  boost::system::error_code ec;
  stream.deadline_in(o.write_timeout);
  http::write(stream, res, ec);
  return !ec;
}

/// Close after an answer: shut the sending side, then drop what the client
/// still sends (bounded) until it closes too, so that no unread input
/// turns the close into a reset that could destroy the answer in flight.
inline void close_gracefully(tcp::socket& s, const http_options& o) {
  boost::system::error_code ec;
  s.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return;
  const ember::time_point deadline = ember::now() + o.linger_timeout;
  std::array<char, 2048> drop;
  for (std::size_t dropped = 0; dropped < o.linger_bytes;) {
    const auto left = deadline - ember::now();
    if (left <= std::chrono::nanoseconds(0)) return;
    dropped += s.async_read_some(asio::buffer(drop), asio::redirect_error(ember::io::use_process.timeout(left), ec));
    if (ec) return;  // the client closed (or went)
  }
}

}  // namespace http_detail

/// Serve HTTP on `s` until the connection ends (see the top of this file).
/// Process context; the calling process owns the socket.  Throws
/// std::invalid_argument for bad options.
inline void serve_connection(boost::asio::ip::tcp::socket s, service limiter, http_options o) {
  namespace http = boost::beast::http;
  using namespace http_detail;
  validate(o);
  // Holds what has been read and not yet parsed: at most one request's
  // header and body.
  boost::beast::flat_buffer buffer(std::size_t(o.header_limit) + std::size_t(o.body_limit));
  process_stream stream(s);
  boost::system::error_code nodelay_ec;
  s.set_option(boost::asio::ip::tcp::no_delay(true), nodelay_ec);  // answers go out at once (no Nagle wait)
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(o.header_limit);
    parser.body_limit(o.body_limit);
    boost::system::error_code ec;
    stream.deadline_in(o.idle_timeout);  // for the whole request
    // Between requests (nothing of the next one read yet), a drain ends
    // the wait at once.
    if (buffer.size() == 0) stream.interrupt_next_read();
    http::read(stream, buffer, parser, ec);
    if (ec) {
      const std::optional<http::status> refusal = status_for(ec, parser.is_header_done());
      if (!refusal) return;  // ended, timed out or failed: close quietly
      response res = refusal_response(*refusal);
      if (write(stream, res, o)) close_gracefully(s, o);
      return;
    }
    const request req = parser.release();
    response res = route(req, limiter, o);
    res.version(req.version());
    // Draining (the exit signal came while the request was read or
    // decided): this answer is the last.
    res.keep_alive(req.keep_alive() && !drain_requested());
    res.prepare_payload();
    if (req.method() == http::verb::head) {
      const std::size_t length = res.body().size();
      res.body().clear();
      res.content_length(length);  // what a GET would have carried
    }
    if (!write(stream, res, o)) return;
    if (res.need_eof()) {
      close_gracefully(s, o);
      return;
    }
  }
}

/// The connection handler for ember::io::tcp_server: serve_connection with
/// this limiter and these options, in each connection's process.  Throws
/// std::invalid_argument for bad options (here, not per connection).
inline ember::io::tcp_server::handler http_handler(service limiter, http_options o) {
  validate(o);
  return [limiter = std::move(limiter), o = std::move(o)](boost::asio::ip::tcp::socket s) {
    serve_connection(std::move(s), limiter, o);
  };
}

}  // namespace rate_limiter
