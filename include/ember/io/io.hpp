// ember/io/io.hpp — ember's I/O layer (target ember::io): Boost.Asio for
// processes.  context.hpp runs the event loop; use_process.hpp makes any
// Asio operation a call that suspends only the calling process;
// write.hpp writes without suspending while the kernel takes the bytes;
// tcp_socket.hpp is gen_tcp's socket with active modes, udp_socket.hpp
// gen_udp's; tcp_server.hpp a supervised server (a process per
// connection, a limit, a drain).
//
// The core never includes this layer (or Asio); this layer uses the core's
// public headers and its completion wait (detail/completion.hpp).
#pragma once

#include "ember/io/context.hpp"
#include "ember/io/tcp_server.hpp"
#include "ember/io/tcp_socket.hpp"
#include "ember/io/udp_socket.hpp"
#include "ember/io/use_process.hpp"
#include "ember/io/write.hpp"
