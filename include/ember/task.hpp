// ember/task.hpp — Elixir's Task for ember: run a function in its own
// process and collect its result, fan work out over a range with bounded
// concurrency, and start tasks under a supervisor.
//
//   auto h = ember::task::async([] { return compute(); });   // linked, monitored
//   int v = ember::task::await(h, 5s);                        // or task_exited / task_timeout
//
//   auto rs = ember::task::async_stream(items, work, {.max_concurrency = 4});
//
//   auto sup = ember::task::start_supervisor();
//   auto n = ember::task::async_nolink(sup.server(), [] { return risky(); });
//
// The parts: task/async.hpp (async, await, yield, shutdown, ignore),
// task/stream.hpp (async_stream), task/supervisor.hpp (Task.Supervisor:
// start_child, async_nolink).  The contract is the "task" table in
// docs/behaviours.md; the differences from Elixir are listed there.
//
// Threads: process context.  Ownership: a handle belongs to the process
// that started the task; results are moved to it.
#pragma once

#include "ember/task/async.hpp"
#include "ember/task/stream.hpp"
#include "ember/task/supervisor.hpp"
