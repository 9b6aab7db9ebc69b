// src/ember.cpp — the one compiled unit: the non-template core of ember.
// Headers carry the code; the .ipp files hold what must be compiled once.
#include "ember/ember.hpp"

#include "ember/impl/call.ipp"
#include "ember/impl/envelope_pool.ipp"
#include "ember/impl/fast_clock.ipp"
#include "ember/impl/gen_server.ipp"
#include "ember/impl/application.ipp"
#include "ember/impl/registry.ipp"
#include "ember/impl/supervisor.ipp"
#include "ember/impl/park.ipp"
#include "ember/impl/runtime_core.ipp"
#include "ember/impl/signals.ipp"
#include "ember/impl/stack_pool.ipp"
#include "ember/impl/this_process.ipp"
#include "ember/impl/timer.ipp"
#include "ember/impl/worker.ipp"
