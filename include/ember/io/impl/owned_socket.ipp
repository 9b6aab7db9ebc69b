// ember/io/impl/owned_socket.ipp — the owner's request errors (compiled
// once, in src/io.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <boost/system/system_error.hpp>

#include "ember/io/detail/owned_socket.hpp"

namespace ember::io::detail {

namespace {
std::atomic<std::uint64_t> next_socket_id{1};

class request_category_t final : public boost::system::error_category {
public:
  const char* name() const noexcept override { return "ember.io.socket"; }
  std::string message(int v) const override {
    switch (request_error(v)) {
      case request_error::not_owner: return "the calling process does not own the socket";
      case request_error::active_mode: return "the socket is in an active mode (set_active(active::off()) first)";
      case request_error::closed: return "the socket is closed";
    }
    return "unknown";
  }
};
const request_category_t request_category{};
}  // namespace

socket_id new_socket_id() noexcept { return socket_id{next_socket_id.fetch_add(1, std::memory_order_relaxed)}; }

boost::system::error_code make_error(request_error e) noexcept { return {int(e), request_category}; }

void throw_request(const char* type, const char* what, const boost::system::error_code& ec) {
  const std::string where = std::string("ember::io::") + type + "::" + what;
  if (ec == make_error(request_error::not_owner)) throw not_owner(where + ": " + ec.message());
  if (&ec.category() == &request_category) throw ember::error(where + ": " + ec.message());
  throw boost::system::system_error(ec, where);
}

}  // namespace ember::io::detail
