// ember/io/impl/udp_socket.ipp — process-owned UDP sockets with active
// modes (compiled once, in src/io.cpp).
//
// As for tcp_socket: everything that touches the socket's state runs on
// its strand — the read that feeds an active mode and its completion, the
// owner's requests (posted there; the owner waits with use_process), and
// the close from the handle's destructor (posted; nobody waits).
#pragma once

#include <deque>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/post.hpp>

#include "ember/io/detail/owned_socket.hpp"
#include "ember/io/detail/strand.hpp"
#include "ember/io/udp_socket.hpp"
#include "ember/this_process.hpp"

namespace ember::io {

namespace {
namespace asio = boost::asio;
using udp = asio::ip::udp;

// The largest UDP payload over IPv4 is 65,507 bytes, over IPv6 65,527: a
// datagram always fits, and is never truncated.
constexpr std::size_t max_datagram = 64 * 1024;
}  // namespace

struct udp_socket::state : std::enable_shared_from_this<state> {
  state(udp::socket s, ember::pid owner)
      : strand(detail::strand_for(s.get_executor())), sock(strand), id(detail::new_socket_id()), buf(max_datagram) {
    own.owner = owner;
    boost::system::error_code ec;
    local = s.local_endpoint(ec);
    // The same descriptor, on the socket's own strand.
    if (s.is_open()) sock.assign(local.protocol(), s.release());
  }

  asio::any_io_executor strand;  // a strand (detail/strand.hpp)
  udp::socket sock;              // on the strand
  const socket_id id;
  udp::endpoint local;  // as when the handle was made
  // -- strand only ------------------------------------------------------------
  detail::active_owner own;  // the owner, the mode
  bool reading = false;
  std::deque<datagram> held;  // read, not yet delivered
  std::vector<char> buf;
  udp::endpoint from;  // the sender of the datagram being read

  void deliver(datagram d) {
    ember::send(own.owner, udp_data{id, d.from, std::move(d.data)});
    if (own.count_delivery()) ember::send(own.owner, udp_passive{id});
  }
  void deliver_held() {
    while (own.mode != 0 && !held.empty()) {
      datagram d = std::move(held.front());
      held.pop_front();
      deliver(std::move(d));
    }
  }
  /// Keep one read outstanding while active.
  void arm() {
    if (reading || own.mode == 0 || !sock.is_open()) return;
    reading = true;
    sock.async_receive_from(asio::buffer(buf), from,
                            [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }
  void on_read(boost::system::error_code ec, std::size_t n) {
    reading = false;
    // Closed, or turned passive (the read was cancelled before it read).
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) return;
    if (!ec) held.push_back(datagram{from, ember::binary(buf.data(), n)});
    else ember::send(own.owner, udp_error{id, ec});
    deliver_held();
    arm();
  }
};

namespace {
/// A passive recv, run on the socket's strand (posted again while the read
/// of an active mode that has just ended is still finishing).
template <class Handler>
struct udp_recv_op {
  udp_socket::state* st;
  Handler h;

  void operator()() {
    udp_socket::state& s = *st;
    using detail::make_error;
    using detail::request_error;
    if (s.own.mode != 0) return std::move(h)(make_error(request_error::active_mode), udp_socket::datagram{});
    if (!s.held.empty()) {
      udp_socket::datagram d = std::move(s.held.front());
      s.held.pop_front();
      return std::move(h)(boost::system::error_code{}, std::move(d));
    }
    if (!s.sock.is_open()) return std::move(h)(make_error(request_error::closed), udp_socket::datagram{});
    if (s.reading) {
      asio::post(s.strand, std::move(*this));
      return;
    }
    s.reading = true;
    auto slot = asio::get_associated_cancellation_slot(h);
    s.sock.async_receive_from(
        asio::buffer(s.buf), s.from,
        asio::bind_cancellation_slot(slot, [&s, h = std::move(h)](boost::system::error_code e, std::size_t n) mutable {
          s.reading = false;
          if (e) return std::move(h)(e, udp_socket::datagram{});
          std::move(h)(e, udp_socket::datagram{s.from, ember::binary(s.buf.data(), n)});
        }));
  }
};
}  // namespace

udp_socket::udp_socket(protocol::socket s) : st_(std::make_shared<state>(std::move(s), ember::self())) {}

udp_socket udp_socket::open(const asio::any_io_executor& ex, const protocol::endpoint& local) {
  ember::detail::enter_runtime("io::udp_socket::open");
  protocol::socket s(ex);
  s.open(local.protocol());
  s.bind(local);
  return udp_socket(std::move(s));
}

udp_socket& udp_socket::operator=(udp_socket&& o) noexcept {
  if (this != &o) {
    udp_socket gone(std::move(*this));
    st_ = std::move(o.st_);
  }
  return *this;
}

udp_socket::~udp_socket() {
  if (st_) detail::post_close(st_);
}

socket_id udp_socket::id() const noexcept { return st_ ? st_->id : socket_id{}; }
udp_socket::protocol::endpoint udp_socket::local_endpoint() const { return st_ ? st_->local : protocol::endpoint{}; }

void udp_socket::set_active(active a) {
  if (!st_) throw ember::error("ember::io::udp_socket::set_active: no socket");
  ember::detail::enter_runtime("io::udp_socket::set_active");
  detail::post_set_active(st_, a.value());
}

void udp_socket::controlling_process(ember::pid p) {
  if (!st_) throw ember::error("ember::io::udp_socket::controlling_process: no socket");
  detail::hand_over<udp_data, udp_error, udp_passive>(*st_, "udp_socket", p);
}

void udp_socket::send_to(const protocol::endpoint& to, std::string_view data) {
  if (!st_) throw ember::error("ember::io::udp_socket::send_to: no socket");
  state& st = *st_;
  const auto token = asio::as_tuple(use_process);
  auto [ec, n] = asio::async_initiate<decltype(token), void(boost::system::error_code, std::size_t)>(
      [&st, &to, data](auto handler) {
        (void)asio::get_associated_executor(handler, st.strand);
        asio::post(st.strand, [&st, &to, data, h = std::move(handler)]() mutable {
          if (!st.sock.is_open())
            return std::move(h)(detail::make_error(detail::request_error::closed), std::size_t{0});
          st.sock.async_send_to(asio::buffer(data.data(), data.size()), to, std::move(h));
        });
      },
      token);
  (void)n;
  if (ec) detail::throw_request("udp_socket", "send_to", ec);
}

void udp_socket::send_to(const protocol::endpoint& to, const ember::binary& data) {
  send_to(to, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

udp_socket::datagram udp_socket::recv(ember::detail::timeout_arg timeout) {
  if (!st_) throw ember::error("ember::io::udp_socket::recv: no socket");
  state& st = *st_;
  use_process_t timed = use_process;
  timed.timeout_ns = timeout.ns("io::udp_socket::recv", "timeout");
  const auto token = asio::as_tuple(timed);
  auto [ec, d] = asio::async_initiate<decltype(token), void(boost::system::error_code, datagram)>(
      [&st](auto handler) {
        (void)asio::get_associated_executor(handler, st.strand);
        asio::post(st.strand, udp_recv_op<decltype(handler)>{&st, std::move(handler)});
      },
      token);
  if (ec == asio::error::operation_aborted && timed.timeout_ns >= 0) ec = asio::error::timed_out;
  if (ec) detail::throw_request("udp_socket", "recv", ec);
  return std::move(d);
}

void udp_socket::close() {
  if (!st_) return;
  state& st = *st_;
  detail::on_strand(st.strand, "udp_socket", "close", [&st]() -> boost::system::error_code {
    boost::system::error_code ec;
    st.sock.close(ec);
    st.held.clear();
    return {};
  });
}

}  // namespace ember::io
