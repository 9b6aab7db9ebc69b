// ember/io/impl/tcp_socket.ipp — process-owned TCP sockets with active modes
// (compiled once, in src/io.cpp).
//
// Everything that touches a socket's state runs on the socket's strand: the
// read that feeds active mode and its completion, the owner's requests
// (posted there; the owner waits with use_process), and the close from the
// handle's destructor (posted; nobody waits).
#pragma once

#include <algorithm>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "ember/io/detail/owned_socket.hpp"
#include "ember/io/detail/strand.hpp"
#include "ember/io/tcp_socket.hpp"
#include "ember/io/use_process.hpp"
#include "ember/io/write.hpp"
#include "ember/receive.hpp"
#include "ember/send.hpp"
#include "ember/this_process.hpp"

namespace ember::io {

namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t read_chunk = 64 * 1024;

using detail::make_error;
using detail::request_error;

[[noreturn]] void throw_request(const char* what, const boost::system::error_code& ec) {
  detail::throw_request("tcp_socket", what, ec);
}
}  // namespace

active active::n(long k) {
  if (k < 1) throw bad_argument("ember::io::active::n: k = " + std::to_string(k) + ": must be at least 1");
  return active(k);
}

struct tcp_socket::state : std::enable_shared_from_this<state> {
  state(tcp::socket s, ember::pid owner)
      : strand(detail::strand_for(s.get_executor())),
        sock(strand),
        id(detail::new_socket_id()),
        buf(read_chunk) {
    own.owner = owner;
    boost::system::error_code ec;
    local = s.local_endpoint(ec);
    remote = s.remote_endpoint(ec);
    const tcp protocol = local.protocol();
    // The same descriptor, on the socket's own strand.
    sock.assign(protocol, s.release());
  }

  asio::any_io_executor strand;  // a strand (detail/strand.hpp)
  tcp::socket sock;              // on the strand
  const socket_id id;
  tcp::endpoint local, remote;  // as when the handle was made
  // -- strand only ------------------------------------------------------------
  detail::active_owner own;  // the owner, the mode
  bool reading = false;
  bool ended = false;         // end of stream or an error seen
  bool end_delivered = false;  // tcp_closed sent (or returned to a passive read)
  boost::system::error_code end_error;
  std::deque<ember::binary> held;  // read, not yet delivered
  std::vector<char> buf;

  /// Deliver one piece of data to the owner and count it.
  void deliver(ember::binary b) {
    ember::send(own.owner, tcp_data{id, std::move(b)});
    if (own.count_delivery()) ember::send(own.owner, tcp_passive{id});
  }
  /// What is held first (in order), then the end, while active.
  void deliver_held() {
    while (own.mode != 0 && !held.empty()) {
      ember::binary b = std::move(held.front());
      held.pop_front();
      deliver(std::move(b));
    }
    if (own.mode != 0 && held.empty() && ended && !end_delivered) {
      end_delivered = true;
      if (end_error != asio::error::eof) ember::send(own.owner, tcp_error{id, end_error});
      ember::send(own.owner, tcp_closed{id});
    }
  }
  /// Keep one read outstanding while active.
  void arm() {
    if (reading || ended || own.mode == 0 || !sock.is_open()) return;
    reading = true;
    sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }
  void on_read(boost::system::error_code ec, std::size_t n) {
    reading = false;
    if (ec == asio::error::operation_aborted) return;  // closed
    if (!ec) {
      held.emplace_back(buf.data(), n);
    } else {
      ended = true;
      end_error = ec;
    }
    deliver_held();
    arm();
  }
};

namespace {
template <class F>
void on_strand(tcp_socket::state& st, const char* what, F f) {
  detail::on_strand(st.strand, "tcp_socket", what, std::move(f));
}
}  // namespace

tcp_socket::tcp_socket(protocol::socket s) : st_(std::make_shared<state>(std::move(s), ember::self())) {}

tcp_socket tcp_socket::connect(const asio::any_io_executor& ex, const protocol::endpoint& to,
                               ember::detail::timeout_arg timeout) {
  const std::int64_t ns = timeout.ns("io::tcp_socket::connect", "timeout");
  protocol::socket s(ex);
  use_process_t token = use_process;
  token.timeout_ns = ns;
  s.async_connect(to, token);
  return tcp_socket(std::move(s));
}

tcp_socket& tcp_socket::operator=(tcp_socket&& o) noexcept {
  if (this != &o) {
    tcp_socket gone(std::move(*this));
    st_ = std::move(o.st_);
  }
  return *this;
}

tcp_socket::~tcp_socket() {
  if (st_) detail::post_close(st_);
}

socket_id tcp_socket::id() const noexcept { return st_ ? st_->id : socket_id{}; }
tcp_socket::protocol::endpoint tcp_socket::local_endpoint() const { return st_ ? st_->local : protocol::endpoint{}; }
tcp_socket::protocol::endpoint tcp_socket::remote_endpoint() const { return st_ ? st_->remote : protocol::endpoint{}; }

void tcp_socket::set_active(active a) {
  if (!st_) throw ember::error("ember::io::tcp_socket::set_active: no socket");
  ember::detail::enter_runtime("io::tcp_socket::set_active");
  detail::post_set_active(st_, a.value());
}

void tcp_socket::controlling_process(ember::pid p) {
  if (!st_) throw ember::error("ember::io::tcp_socket::controlling_process: no socket");
  detail::hand_over<tcp_data, tcp_closed, tcp_error, tcp_passive>(*st_, "tcp_socket", p);
}

void tcp_socket::write(std::string_view data) {
  if (!st_) throw ember::error("ember::io::tcp_socket::write: no socket");
  state& st = *st_;
  // What the kernel takes at once needs no wait (io::write): only the
  // owner closes the socket, and it does so on the strand while it waits,
  // so the descriptor cannot change under this call.
  if (const ember::detail::process* self = ember::detail::enter_runtime("io::tcp_socket::write");
      !self->in_blocking && st.sock.is_open() && !data.empty()) {
    ::iovec v{const_cast<char*>(data.data()), data.size()};
    boost::system::error_code ec;
    const std::size_t done = detail::send_now(st.sock.native_handle(), &v, 1, ec);
    if (ec) throw_request("write", ec);
    if (done == data.size()) return;
    data.remove_prefix(done);
  }
  const auto token = asio::as_tuple(use_process);
  auto [ec, n] = asio::async_initiate<decltype(token), void(boost::system::error_code, std::size_t)>(
      [&st, data](auto handler) {
        (void)asio::get_associated_executor(handler, st.strand);
        asio::post(st.strand, [&st, data, h = std::move(handler)]() mutable {
          if (!st.sock.is_open()) return std::move(h)(make_error(request_error::closed), std::size_t{0});
          asio::async_write(st.sock, asio::buffer(data.data(), data.size()), std::move(h));
        });
      },
      token);
  (void)n;
  if (ec) throw_request("write", ec);
}

void tcp_socket::write(const ember::binary& data) {
  write(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

namespace {
/// A passive read, run on the socket's strand (posted again while the read
/// of an active mode that has just ended is still finishing).
template <class Handler>
struct recv_op {
  tcp_socket::state* st;
  std::size_t want;
  Handler h;

  void operator()() {
    tcp_socket::state& s = *st;
    if (s.own.mode != 0) return std::move(h)(make_error(request_error::active_mode), ember::binary{});
    if (!s.held.empty()) {
      ember::binary& front = s.held.front();
      if (front.size() <= want) {
        ember::binary b = std::move(front);
        s.held.pop_front();
        return std::move(h)(boost::system::error_code{}, std::move(b));
      }
      ember::binary head(front.data(), want), rest(front.data() + want, front.size() - want);
      front = std::move(rest);
      return std::move(h)(boost::system::error_code{}, std::move(head));
    }
    if (s.ended) {
      s.end_delivered = true;
      return std::move(h)(s.end_error, ember::binary{});
    }
    if (!s.sock.is_open()) return std::move(h)(make_error(request_error::closed), ember::binary{});
    if (s.reading) {  // cancelled by set_active(off); its completion is on its way
      asio::post(s.strand, std::move(*this));
      return;
    }
    s.reading = true;
    auto slot = asio::get_associated_cancellation_slot(h);
    s.sock.async_read_some(
        asio::buffer(s.buf.data(), want),
        asio::bind_cancellation_slot(slot, [&s, h = std::move(h)](boost::system::error_code e, std::size_t n) mutable {
          s.reading = false;
          if (e && e != asio::error::operation_aborted) {
            s.ended = true;
            s.end_error = e;
            s.end_delivered = true;
          }
          std::move(h)(e, e ? ember::binary{} : ember::binary(s.buf.data(), n));
        }));
  }
};
}  // namespace

ember::binary tcp_socket::recv(std::size_t max, ember::detail::timeout_arg timeout) {
  if (!st_) throw ember::error("ember::io::tcp_socket::recv: no socket");
  state& st = *st_;
  const std::size_t want = max == 0 ? read_chunk : std::min(max, read_chunk);
  use_process_t timed = use_process;
  timed.timeout_ns = timeout.ns("io::tcp_socket::recv", "timeout");
  const auto token = asio::as_tuple(timed);
  auto [ec, data] = asio::async_initiate<decltype(token), void(boost::system::error_code, ember::binary)>(
      [&st, want](auto handler) {
        (void)asio::get_associated_executor(handler, st.strand);
        asio::post(st.strand, recv_op<decltype(handler)>{&st, want, std::move(handler)});
      },
      token);
  // A read the timeout cancelled (a kill would have ended the process).
  if (ec == asio::error::operation_aborted && timed.timeout_ns >= 0) ec = asio::error::timed_out;
  if (ec) throw_request("recv", ec);
  return std::move(data);
}

void tcp_socket::close() {
  if (!st_) return;
  state& st = *st_;
  on_strand(st, "close", [&st]() -> boost::system::error_code {
    boost::system::error_code ec;
    st.sock.close(ec);
    st.held.clear();
    st.ended = true;
    st.end_delivered = true;
    st.end_error = asio::error::eof;
    return {};
  });
}

}  // namespace ember::io
