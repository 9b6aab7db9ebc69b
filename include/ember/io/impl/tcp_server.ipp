// ember/io/impl/tcp_server.ipp — the supervised TCP server
// (io/tcp_server.hpp); compiled once, in src/io.cpp.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>

#include "ember/dynamic_supervisor.hpp"
#include "ember/ember.hpp"
#include "ember/io/detail/strand.hpp"
#include "ember/io/tcp_server.hpp"
#include "ember/io/use_process.hpp"

namespace ember::io {
namespace detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace sup = ember::supervisor;

/// What the server's start functions share.  They all run in the server's
/// supervisor process, one at a time; listen_error is written by the
/// listener's init, which the supervisor waits for.
struct server_shared {
  server_shared(asio::any_io_executor e, tcp_server_options o, tcp_server::handler h)
      : ex(std::move(e)), opts(o), serve(std::move(h)) {}
  asio::any_io_executor ex;
  tcp_server_options opts;
  tcp_server::handler serve;
  ember::pid connections;  // the current connections supervisor
  ember::pid listener;     // the current listener
  boost::system::error_code listen_error;
};

// The listener's requests.
struct acquire_slot {};   // call: a slot for one connection; answers the listening socket
struct slot_used {        // cast: the acceptor started `connection` with its slot (null: none)
  ember::pid acceptor;
  ember::pid connection;
};
struct count_request {};
struct endpoint_request {};

/// Owns the listening socket; counts connections against the limit.
struct listener : ember::gen_server::behaviour<listener> {
  using info = ember::gen_server::types<ember::down>;

  explicit listener(std::shared_ptr<server_shared> sh) : sh_(std::move(sh)), conns_(sh_->connections) {}

  next init() {
    boost::system::error_code ec;
    acc_ = std::make_shared<tcp::acceptor>(detail::strand_for(sh_->ex));
    const tcp::endpoint& ep = sh_->opts.endpoint;
    acc_->open(ep.protocol(), ec);
    if (!ec && sh_->opts.reuse_address) acc_->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc_->bind(ep, ec);
    if (!ec) acc_->listen(sh_->opts.backlog, ec);
    if (ec) {
      sh_->listen_error = ec;
      return stop_with(exit_reason::error(
          fmt::format("ember::io::tcp_server: listen on {}:{}: {}", ep.address().to_string(), ep.port(), ec.message())));
    }
    local_ = acc_->local_endpoint();
    // A listener started again finds the connections still running.
    for (const sup::child_info& c : ember::dynamic_supervisor::which_children(conns_))
      if (!c.pid.is_null()) {
        ++used_;
        watch_connection(c.pid);
      }
    return {};
  }

  // No close here: the listening socket closes with its last owner.  In a
  // drain that is this object (the acceptors stopped first, and each ended
  // only after its accept completed), so the socket is closed before the
  // listener's exit is seen.  When everything is killed at once (the
  // runtime stopping), an acceptor may still have an accept pending on the
  // socket's strand: it holds the socket until then, and closing it here
  // would race with that accept.

  call_reply<std::shared_ptr<tcp::acceptor>> handle_call(acquire_slot, const ember::gen_server::from& f) {
    slot_holder& h = holder(f.caller);
    if (used_ < sh_->opts.max_connections) {
      ++used_;
      ++h.slots;
      return reply_with(acc_);
    }
    waiting_.push_back(f);
    return noreply();
  }
  std::size_t handle_call(count_request, const ember::gen_server::from&) { return connections_.size(); }
  tcp::endpoint handle_call(endpoint_request, const ember::gen_server::from&) { return local_; }

  void handle_cast(slot_used u) {
    auto it = holders_.find(u.acceptor);
    if (it != holders_.end() && it->second.slots > 0) --it->second.slots;
    if (u.connection.is_null()) {
      release();
      return;
    }
    watch_connection(u.connection);
  }

  void handle_info(const ember::down& d) {
    if (connections_.erase(d.ref.id) != 0) {
      release();
      return;
    }
    auto it = holders_.find(d.who);
    if (it == holders_.end() || !(it->second.ref == d.ref)) return;
    // An acceptor went: its slots and its queued request go with it.
    const std::size_t slots = it->second.slots;
    holders_.erase(it);
    std::erase_if(waiting_, [&](const ember::gen_server::from& f) { return f.caller == d.who; });
    for (std::size_t i = 0; i < slots; ++i) release();
  }

private:
  struct slot_holder {
    ember::monitor_ref ref;
    std::size_t slots = 0;
  };

  slot_holder& holder(ember::pid p) {
    auto [it, fresh] = holders_.try_emplace(p);
    if (fresh) it->second.ref = ember::monitor(p);
    return it->second;
  }

  void watch_connection(ember::pid p) { connections_.emplace(ember::monitor(p).id, p); }

  /// One slot is free again: give it to the longest waiting acceptor.
  void release() {
    --used_;
    while (!waiting_.empty() && used_ < sh_->opts.max_connections) {
      ember::gen_server::from f = waiting_.front();
      waiting_.pop_front();
      ++used_;
      ++holder(f.caller).slots;
      ember::gen_server::reply(f, acc_);
    }
  }

  std::shared_ptr<server_shared> sh_;
  ember::pid conns_;
  std::shared_ptr<tcp::acceptor> acc_;
  tcp::endpoint local_;
  std::size_t used_ = 0;  // slots out: held by acceptors, or a running connection's
  std::unordered_map<std::uint64_t, ember::pid> connections_;  // by monitor id
  std::unordered_map<ember::pid, slot_holder> holders_;        // acceptors
  std::deque<ember::gen_server::from> waiting_;                // acquire_slot calls at the limit
};

/// Accept on `acc` (on its strand: the acceptors share it) into a socket on
/// `ex`, waiting in the calling process.  The connection's socket needs no
/// strand: one process uses it, and a cancellation never runs beside one of
/// its operations' steps (use_process.hpp).
tcp::socket accept_one(const std::shared_ptr<tcp::acceptor>& acc, const asio::any_io_executor& ex,
                       boost::system::error_code& ec) {
  auto init = [&acc, &ex](auto handler) {
    // Note the acceptor's strand as the handler's executor now, so that a
    // cancellation queues behind this initiation on the same strand.
    (void)asio::get_associated_executor(handler, acc->get_executor());
    asio::post(acc->get_executor(),
               [acc, ex, h = std::move(handler)]() mutable { acc->async_accept(ex, std::move(h)); });
  };
  auto token = asio::redirect_error(use_process, ec);
  return asio::async_initiate<decltype(token), void(boost::system::error_code, tcp::socket)>(std::move(init), token);
}

/// An acceptor: a slot, a connection, its process; again.
void acceptor_loop(std::shared_ptr<server_shared> sh, ember::pid listener_pid, ember::pid conns) {
  const ember::gen_server::server<listener> lst(listener_pid);
  const ember::pid self = ember::self();
  for (;;) {
    std::shared_ptr<tcp::acceptor> acc =
        ember::gen_server::call(lst, acquire_slot{}, ember::gen_server::infinity);
    tcp::socket sock(sh->ex);
    for (;;) {
      boost::system::error_code ec;
      sock = accept_one(acc, sh->ex, ec);
      if (!ec) break;
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
        ember::exit(exit_reason::shutdown());  // the listening socket is gone
      // Out of descriptors and the like: wait a little, as ranch does.
      ember::receive(ember::after(std::chrono::milliseconds(10), [] {}));
    }
    auto owned = std::make_shared<tcp::socket>(std::move(sock));
    sup::child_spec c;
    c.id = "connection";
    c.restart = sup::temporary;
    c.shutdown = sup::shutdown_spec::timeout(sh->opts.drain_timeout);
    c.start = [owned, sh]() -> sup::started {
      return ember::spawn_link([owned, sh] {
        ember::process_flag(ember::trap_exit, true);
        tcp::socket s = std::move(*owned);
        sh->serve(std::move(s));
      });
    };
    const sup::child_result r = ember::dynamic_supervisor::start_child(conns, std::move(c));
    ember::gen_server::cast(lst, slot_used{self, r ? r.pid() : ember::pid{}});
  }
}

std::vector<sup::child_spec> server_children(const std::shared_ptr<server_shared>& sh) {
  std::vector<sup::child_spec> cs;
  sup::child_spec conns;
  conns.id = "connections";
  conns.type = sup::child_type::supervisor;
  conns.start = [sh]() -> sup::started {
    auto r = ember::dynamic_supervisor::start_link();
    if (r) sh->connections = r.pid();
    return r;
  };
  cs.push_back(std::move(conns));

  sup::child_spec lst;
  lst.id = "listener";
  lst.start = [sh]() -> sup::started {
    auto r = ember::gen_server::start_link<listener>(sh);
    if (r) sh->listener = r.pid();
    return r;
  };
  cs.push_back(std::move(lst));

  for (std::size_t i = 0; i < sh->opts.acceptors; ++i) {
    sup::child_spec a;
    a.id = fmt::format("acceptor_{}", i + 1);
    a.shutdown = sup::shutdown_spec::brutal_kill();
    a.start = [sh]() -> sup::started {
      const ember::pid l = sh->listener, c = sh->connections;
      return ember::spawn_link([sh, l, c] { acceptor_loop(sh, l, c); });
    };
    cs.push_back(std::move(a));
  }
  return cs;
}

std::shared_ptr<server_shared> make_shared_state(const asio::any_io_executor& ex, tcp_server_options o,
                                                 tcp_server::handler h) {
  if (o.acceptors == 0) throw ember::bad_argument("ember::io::tcp_server: acceptors = 0: must be >= 1");
  if (o.max_connections == 0)
    throw ember::bad_argument("ember::io::tcp_server: max_connections = 0: must be >= 1");
  if (o.drain_timeout.count() < 0)
    throw ember::bad_argument(fmt::format("ember::io::tcp_server: drain_timeout = {} ms: must be >= 0",
                                          o.drain_timeout.count()));
  if (!h) throw ember::bad_argument("ember::io::tcp_server: no handler");
  return std::make_shared<server_shared>(ex, o, std::move(h));
}

const sup::flags server_flags{.strategy = sup::rest_for_one, .intensity = 10,
                              .period = std::chrono::milliseconds(10000)};

ember::pid listener_of(ember::pid server) {
  const std::optional<sup::child_info> c = sup::which_child(sup::ref(server), "listener");
  if (!c || c->pid.is_null()) throw ember::error("ember::io::tcp_server: the listener is not running");
  return c->pid;
}

}  // namespace detail

tcp_server tcp_server::start_link(const boost::asio::any_io_executor& ex, tcp_server_options o, handler h) {
  auto sh = detail::make_shared_state(ex, o, std::move(h));
  auto r = ember::supervisor::start_link(detail::server_flags, detail::server_children(sh));
  if (!r) {
    if (sh->listen_error)
      throw boost::system::system_error(
          sh->listen_error, fmt::format("ember::io::tcp_server: listen on {}:{}",
                                        o.endpoint.address().to_string(), o.endpoint.port()));
    throw ember::error(fmt::format("ember::io::tcp_server: the server did not start: {}", r.error()));
  }
  return tcp_server(r.pid());
}

ember::supervisor::child_spec tcp_server::child_spec(std::string id, const boost::asio::any_io_executor& ex,
                                                     tcp_server_options o, handler h) {
  return ember::supervisor::supervisor_child(std::move(id), detail::server_flags,
                                             detail::server_children(detail::make_shared_state(ex, o, std::move(h))));
}

boost::asio::ip::tcp::endpoint tcp_server::local_endpoint() const {
  return ember::gen_server::call(ember::gen_server::server<detail::listener>(detail::listener_of(pid_)),
                                 detail::endpoint_request{});
}

std::size_t tcp_server::connection_count() const {
  return ember::gen_server::call(ember::gen_server::server<detail::listener>(detail::listener_of(pid_)),
                                 detail::count_request{});
}

void tcp_server::stop() const {
  // Reason normal: the server's parent (linked) is not taken down with it;
  // the children are stopped with `shutdown` whatever the reason.
  ember::gen_server::stop(ember::supervisor::ref(pid_), exit_reason::normal(), ember::gen_server::infinity);
}

}  // namespace ember::io
