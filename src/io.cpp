// src/io.cpp — the compiled part of ember's io layer (target ember::io).
#include "ember/io/io.hpp"

#include "ember/io/impl/context.ipp"
#include "ember/io/impl/use_process.ipp"
#include "ember/io/impl/owned_socket.ipp"
#include "ember/io/impl/tcp_socket.ipp"
#include "ember/io/impl/tcp_server.ipp"
#include "ember/io/impl/udp_socket.ipp"
#include "ember/io/impl/write.ipp"
