// ember/io/impl/use_process.ipp — the token's cold paths (compiled once, in
// src/io.cpp).
#pragma once

#include "ember/io/use_process.hpp"

namespace ember::io::detail {

void throw_timed_out() {
  throw boost::system::system_error(boost::asio::error::timed_out, "ember::io::use_process: the operation timed out");
}

void throw_interrupted() {
  throw boost::system::system_error(boost::asio::error::interrupted,
                                    "ember::io::use_process: an exit signal (trapped) interrupted the operation");
}

void throw_abandoned() {
  throw boost::system::system_error(boost::asio::error::operation_aborted,
                                    "ember::io::use_process: the I/O context was destroyed with the operation pending");
}

void throw_in_blocking() {
  throw ember::error(
      "ember::io::use_process would wait inside ember::blocking (the process runs off the schedulers there); "
      "start the operation before or after the blocking section");
}

}  // namespace ember::io::detail
