// ember/gen_server.hpp — OTP's gen_server: a process that owns a C++ object
// and answers typed requests.
//
//   struct counter : ember::gen_server::behaviour<counter> {
//     long n = 0;
//     long handle_call(inc, const ember::gen_server::from&) { return ++n; }   // reply type: long
//     void handle_cast(reset) { n = 0; }
//     using info = ember::gen_server::types<ember::down>;                     // other messages it takes
//     void handle_info(const ember::down& d) { ... }
//   };
//   auto s = ember::gen_server::start<counter>();            // in a process
//   long v = ember::gen_server::call(s.server(), inc{});      // checked at compile time
//
// The contract (every callback, result and failure) is the table in
// docs/behaviours.md; in short:
//  - start/start_link construct the object inside the new process from the
//    arguments, then run init() if it has one.  A constructor or init that
//    throws, or an init that returns stop_with(r), makes start return that
//    reason, and nothing is left running (the process ends normally, so a
//    link made by start_link does not kill the starter).  A taken name makes
//    start return already_started with the holder's pid.  A name is a
//    registered name (name{"n"}) or a via_name (ember::via(registry, key)):
//    the new process takes it before its object is built and gives it back
//    if init fails; a server<S> made from either looks it up at each use.
//    init that calls exit(r) fails the start with r.  A failed start leaves
//    the starter nothing: no monitor, no link, no exit_message.
//  - call(server, req[, timeout]) returns what handle_call(req, from) returns
//    (or the R of its call_reply<R>).  Failures throw: call_timeout (default
//    5000 ms; a reply that comes later is dropped, never seen), call_noproc
//    (no such process or name), call_exited (the server exited first; its
//    reason), call_self (a server calling itself), bad_request (a server of
//    another type), bad_argument (a negative timeout other than infinity,
//    or NaN).  A call's cost does not grow with unrelated queued messages.
//  - start_monitor also monitors the server from its spawn; options{.timeout}
//    kills a server still in init after that long (start: timed_out());
//    init may return ignore() (start: ignored(); nothing runs).
//  - send_request/wait_response/receive_response/check_response and
//    request_id_collection: many calls in flight (gen_server/request.hpp).
//  - cast(server, msg) sends and returns; handle_cast(msg) runs.
//  - Messages of the types listed in `using info = types<...>` go to
//    handle_info; others go to a catch-all handle_info(any_message&) if the
//    server has one, else are logged (with their type's name) and dropped.
//    A trapped exit signal from the starter (the parent) stops the server
//    with that reason instead.
//  - Handlers may return a `next` (noreply(), .after(t), .then(c),
//    .hibernate(), stop_with(r)) and handle_call a call_reply<R>
//    (reply_with(v), noreply() to answer later with reply(from, v),
//    stop_with(r, v)).  after(t): handle_info(server_timeout) if no message
//    comes within t; after(t, msg): handle_info(msg) instead.  then(c):
//    handle_continue(c) runs before any message.
//  - terminate(reason), if defined, runs when a handler returns stop, when a
//    handler throws (reason: the error), and when the parent's exit signal
//    is trapped — not when the server is killed without trapping exits.
//    It runs at most once; if it throws or exits, that is the final reason
//    and the error report names both.
//
// The parts: gen_server/result.hpp (what handlers return),
// gen_server/server_loop.hpp (the server process), gen_server/start.hpp,
// gen_server/call.hpp, gen_server/request.hpp (asynchronous requests).
//  - Between messages the server holds no stack: its process hibernates
//    (the stack goes back to the pool) and takes one when a message comes.
//
// Threads: start/call/stop in process context; cast, reply from any
// process.  Ownership: the server object lives in the server process and
// dies with it.
#pragma once

#include "ember/gen_server/result.hpp"
#include "ember/gen_server/server_loop.hpp"
#include "ember/gen_server/start.hpp"
#include "ember/gen_server/call.hpp"
#include "ember/gen_server/request.hpp"
