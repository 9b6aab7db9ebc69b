// ember/ember.hpp — the whole public API, in layer order.
//
// Threads/ownership: see each header.
#pragma once

#include "ember/errors.hpp"
#include "ember/exit_reason.hpp"
#include "ember/options.hpp"
#include "ember/pid.hpp"

#include "ember/runtime.hpp"
#include "ember/this_process.hpp"
#include "ember/spawn.hpp"
#include "ember/send.hpp"
#include "ember/receive.hpp"
#include "ember/blocking.hpp"
#include "ember/scheduler_stats.hpp"
#include "ember/signal/monitor.hpp"
#include "ember/signal/link.hpp"
#include "ember/names.hpp"
#include "ember/process_info.hpp"
#include "ember/clock.hpp"
#include "ember/timer.hpp"
#include "ember/proc_lib.hpp"
#include "ember/gen_server.hpp"
#include "ember/registry.hpp"
#include "ember/child_spec.hpp"
#include "ember/supervisor.hpp"
#include "ember/dynamic_supervisor.hpp"
#include "ember/application.hpp"
#include "ember/task.hpp"
#include "ember/binary.hpp"
#include "ember/heap.hpp"
#include "ember/limits.hpp"
