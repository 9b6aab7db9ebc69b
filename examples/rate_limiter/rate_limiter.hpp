// examples/rate_limiter/rate_limiter.hpp — a per-customer rate limiter for
// an upstream API that sends no rate-limit headers: one gen_server per API
// key, started on the key's first request under a dynamic_supervisor and
// found through a via-name in an ember::registry.
//
//   rate_limiter::service limiter(opts);                    // opts.contracts: key -> contract
//   sup::start_link({}, {limiter.child_spec(), ...});       // in the application's tree
//   rate_limiter::decision d = limiter.check("ak-0042");    // in any process
//   if (d.admitted()) forward(request); else answer_429(d.retry_after);
//
// The tree (docs/examples/rate_limiter.md draws it):
//   supervisor "rate_limiter" (one_for_one)
//     window_store      gen_server: windows parked by idle key servers
//     config            gen_server: contract lookups (slow; answered later)
//     keys              dynamic_supervisor of key servers (temporary children)
//       key_server*     gen_server per API key, named via(keys registry, key)
//
// How a request goes (service::check, process context):
//  1. whereis(key) in the keys registry; if nobody holds the key,
//     dynamic_supervisor::start_child(key_server_spec(key)).  The starts
//     of one service run one at a time in its dynamic supervisor, and the
//     new server takes the via-name before its object is built, so of any
//     number of concurrent first requests exactly one starts the server;
//     the others' starts find the key taken (already_started()), return
//     `ignore`, and their requests look the holder up.
//  2. gen_server::call(server, check_request).  The server answers from its
//     windows (windows.hpp).  Until its contract has come it answers
//     nothing: it keeps each caller's `from` (handle_call returns
//     noreply()) and, when the one lookup it asked for comes back, answers
//     them all in arrival order with reply(from, decision).
//  3. A server that stopped between the lookup and the call (it went idle)
//     answers call_noproc or call_exited: the request starts over, at most
//     four times (then `unavailable`).
//
// Idle keys: a key server with no request for options::idle_timeout stops
// (gen_server after(t) -> handle_info(server_timeout)).  Before it stops it
// parks its windows in the window store and gives up its via-name; the next
// server for the key takes them back, so windows survive idle stops (a
// reset would hand a customer that hit its daily limit a fresh day for
// waiting out the idle time).  The contract is looked up again.
//
// Threads: service::check, parked_windows in process context; the other
// service members from any thread.  Ownership: a service is a cheap handle
// (copies share one context: options, registries, counters); every process
// of the tree holds the context too, so it outlives whichever goes last.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "ember/ember.hpp"
#include "windows.hpp"

namespace rate_limiter {

namespace gs = ember::gen_server;
namespace sup = ember::supervisor;
namespace dyn = ember::dynamic_supervisor;

/// A customer's contract with us: who it is and its limits.
struct contract {
  std::string customer;
  rate_limiter::limits limits;
};

/// The slow configuration lookup: the contract for an API key, or nullopt
/// for a key with none.  Called in the config process; it must be safe to
/// call from any thread.
using directory = std::function<std::optional<contract>(const std::string& api_key)>;

struct options {
  /// Where contracts come from (required).
  directory contracts;
  /// How long a contract lookup takes (simulated on the runtime clock: the
  /// config process answers this long after it is asked).
  milliseconds lookup_delay{200};
  /// A key server waits this long for its contract; then the requests
  /// waiting for it are answered `unavailable` and the server stops (the
  /// next request looks the contract up again).
  milliseconds lookup_deadline{2000};
  /// A key server with no request for this long stops (its windows parked).
  milliseconds idle_timeout{std::chrono::minutes(10)};
  /// How long check() waits for the key server's answer (then `unavailable`).
  milliseconds call_timeout{5000};
  /// How often the window store drops parked windows that have emptied.
  milliseconds store_sweep_interval{std::chrono::hours(1)};
  /// Key servers running at once, at most (then `unavailable` for new keys).
  std::size_t max_keys = dyn::unlimited;
  /// Messages a key server may have queued; a request that finds its
  /// mailbox full is answered `overloaded` at once (load shedding: its
  /// mailbox is bounded with the refuse policy).  1 to
  /// ember::max_mailbox_capacity.
  std::size_t max_queued = 1000;
  /// Where limit-hit lines go; null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
  /// The runtime's manual clock, in tests and simulations; null: the
  /// monotonic system clock (the one a runtime without a manual clock uses).
  std::shared_ptr<ember::manual_clock> clock;
};

/// What the service has done so far (monotonic counts).
struct stats {
  std::uint64_t key_servers_started = 0;
  std::uint64_t lookups = 0;           // contract lookups asked of the config process
  std::uint64_t idle_stops = 0;        // key servers that stopped for want of requests
  std::uint64_t windows_restored = 0;  // starts that took back windows parked by an idle predecessor
};

namespace detail {

/// What every process of one service shares.
struct context {
  explicit context(options o)
      : opts(std::move(o)),
        logger(opts.logger ? opts.logger : spdlog::default_logger()),
        store(ember::via(parts, "window_store")),
        config(ember::via(parts, "config")),
        key_supervisor(ember::via(parts, "keys")) {}

  /// Now, in milliseconds, on the service's clock.
  [[nodiscard]] milliseconds now() const {
    using std::chrono::duration_cast;
    if (opts.clock) return duration_cast<milliseconds>(opts.clock->now());
    return duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch());
  }

  const options opts;
  const std::shared_ptr<spdlog::logger> logger;
  ember::registry<std::string> keys{ember::registry_keys::unique};   // API key -> its key server
  ember::registry<std::string> parts{ember::registry_keys::unique};  // the service's own processes, by role
  const ember::via_name store, config, key_supervisor;
  // ordering: relaxed; plain counts, read for reports and tests once the
  // runtime is idle or after a message exchange.
  std::atomic<std::uint64_t> key_servers_started{0}, lookups{0}, idle_stops{0}, windows_restored{0};
};

// ---- messages ----

struct check_request {};  // call -> decision
struct lookup_request {   // cast to the config process
  std::string api_key;
  ember::pid reply_to;
};
struct contract_answer {  // the config process -> the key server that asked
  std::string api_key;
  std::optional<contract> found;
};
struct lookup_deadline {};  // a key server's own timer: its contract is late
struct park_windows {       // cast to the window store
  std::string api_key;
  key_windows windows;
};
struct claim_windows {  // call -> std::optional<key_windows>
  std::string api_key;
};
struct parked_count {};  // call -> std::size_t
struct sweep_tick {};    // the window store's own timer

/// The reasons key servers stop with ({shutdown, T}: clean, no report, and
/// a temporary child is not restarted).
inline ember::exit_reason idle_stop() { return ember::exit_reason::shutdown("idle"); }
inline ember::exit_reason lookup_failed() { return ember::exit_reason::shutdown("contract lookup timed out"); }

// ---- the config process ----

/// Answers contract lookups, each lookup_delay after it is asked (the
/// stand-in for a slow configuration service).  It never blocks: the delay
/// is a timer, so lookups for many keys overlap.
class config_service : public gs::behaviour<config_service> {
public:
  explicit config_service(std::shared_ptr<context> ctx) : ctx_(std::move(ctx)) {}

  void handle_cast(lookup_request r) {
    ctx_->lookups.fetch_add(1, std::memory_order_relaxed);
    std::optional<contract> found = ctx_->opts.contracts(r.api_key);
    ember::send_after(r.reply_to, ctx_->opts.lookup_delay, contract_answer{std::move(r.api_key), std::move(found)});
  }

private:
  std::shared_ptr<context> ctx_;
};

// ---- the window store ----

/// Keeps the windows of key servers that stopped for being idle, until the
/// key's next server claims them or they have emptied (swept every
/// store_sweep_interval).  Memory: one key_windows per idle key with
/// requests in its last day.
class window_store : public gs::behaviour<window_store> {
public:
  explicit window_store(std::shared_ptr<context> ctx) : ctx_(std::move(ctx)) {}

  void init() { ember::send_after(ember::self(), ctx_->opts.store_sweep_interval, sweep_tick{}); }

  void handle_cast(park_windows p) {
    const milliseconds now = ctx_->now();
    if (p.windows.empty_at(now) > now) parked_.insert_or_assign(std::move(p.api_key), std::move(p.windows));
  }

  std::optional<key_windows> handle_call(const claim_windows& c) {
    auto it = parked_.find(c.api_key);
    if (it == parked_.end()) return std::nullopt;
    std::optional<key_windows> w(std::move(it->second));
    parked_.erase(it);
    return w;
  }

  std::size_t handle_call(parked_count) const { return parked_.size(); }

  using info = gs::types<sweep_tick>;
  void handle_info(sweep_tick) {
    const milliseconds now = ctx_->now();
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second.empty_at(now) <= now) it = parked_.erase(it);
      else ++it;
    }
    ember::send_after(ember::self(), ctx_->opts.store_sweep_interval, sweep_tick{});
  }

private:
  std::shared_ptr<context> ctx_;
  std::unordered_map<std::string, key_windows> parked_;
};

// ---- the key server ----

/// One API key: its contract, its windows, and the requests waiting for the
/// contract.
class key_server : public gs::behaviour<key_server> {
public:
  key_server(std::shared_ptr<context> ctx, std::string api_key) : ctx_(std::move(ctx)), key_(std::move(api_key)) {}

  next init() {
    // The windows an idle predecessor parked, if any.  (A store that is
    // down makes this start fail; the request is then `unavailable`.)
    if (auto parked = gs::call(gs::server<window_store>(ctx_->store), claim_windows{key_})) {
      windows_ = std::move(*parked);
      ctx_->windows_restored.fetch_add(1, std::memory_order_relaxed);
    }
    // One lookup for this key, however many requests come meanwhile.
    gs::cast(gs::server<config_service>(ctx_->config), lookup_request{key_, ember::self()});
    deadline_ = ember::send_after(ember::self(), ctx_->opts.lookup_deadline, lookup_deadline{});
    ctx_->key_servers_started.fetch_add(1, std::memory_order_relaxed);
    return noreply();  // no idle timeout while looking up
  }

  call_reply<decision> handle_call(check_request, const gs::from& caller) {
    switch (phase_) {
      case phase::looking_up:
        waiting_.push_back(caller);  // answered when the contract comes (a deferred reply)
        return noreply();
      case phase::unknown_key: return reply_with(decision::unknown_key()).after(ctx_->opts.idle_timeout);
      case phase::serving: break;
    }
    return reply_with(decide()).after(ctx_->opts.idle_timeout);
  }

  using info = gs::types<contract_answer, lookup_deadline>;

  next handle_info(contract_answer a) {
    if (phase_ != phase::looking_up || a.api_key != key_) return idle();
    ember::cancel_timer(deadline_);
    contract_ = std::move(a.found);
    phase_ = contract_ ? phase::serving : phase::unknown_key;
    for (const gs::from& caller : waiting_) gs::reply(caller, contract_ ? decide() : decision::unknown_key());
    waiting_.clear();
    return idle();
  }

  next handle_info(lookup_deadline) {
    if (phase_ != phase::looking_up) return idle();  // the timer fired as the contract came
    for (const gs::from& caller : waiting_) gs::reply(caller, decision::unavailable());
    waiting_.clear();
    hand_over();  // windows it took back from the store go back there
    return stop_with(lookup_failed());
  }

  /// No request for idle_timeout: park the windows, give the key up, stop.
  next handle_info(gs::server_timeout) {
    hand_over();
    ctx_->idle_stops.fetch_add(1, std::memory_order_relaxed);
    return stop_with(idle_stop());
  }

private:
  enum class phase { looking_up, serving, unknown_key };

  /// Before stopping: park the windows, then give the key up, so that
  /// requests from now on start the key's next server.  The order matters:
  /// the next server claims from the store after it has the key, so its
  /// claim reaches the store after this park.  (The windows are moved out:
  /// the server stops next.)
  void hand_over() {
    gs::cast(gs::server<window_store>(ctx_->store), park_windows{key_, std::move(windows_)});
    ctx_->keys.unregister_name(key_);
  }

  next idle() const { return noreply().after(ctx_->opts.idle_timeout); }

  /// Admit or refuse one request now; log the start of a limit-hit episode.
  decision decide() {
    const milliseconds now = ctx_->now();
    decision d = windows_.admit(now, contract_->limits);
    if (d.result == outcome::refused && windows_.note_refusal(d.hit, now)) {
      ctx_->logger->warn("customer \"{}\" (key {}) hit the per-{} limit: {} requests in the last {}",
                         contract_->customer, key_, d.hit, d.count, d.hit);
    }
    return d;
  }

  std::shared_ptr<context> ctx_;
  std::string key_;
  phase phase_ = phase::looking_up;
  std::optional<contract> contract_;  // set in phase serving
  key_windows windows_;
  std::vector<gs::from> waiting_;  // calls that came before the contract, in arrival order
  ember::timer_ref deadline_;
};

/// How the dynamic supervisor starts the server for api_key: temporary (an
/// idle stop is its end; the next request starts a new one), and a start
/// that finds the key taken is `ignore`, not an error: a concurrent first
/// request started the key's server first, and the caller uses that one.
inline sup::child_spec key_server_spec(const std::shared_ptr<context>& ctx, const std::string& api_key) {
  sup::child_spec spec;
  spec.id = api_key;  // dynamic supervisors ignore ids; reports show it
  spec.restart = sup::temporary;
  spec.start = [ctx, api_key]() -> sup::started {
    gs::options o{.via = ember::via(ctx->keys, api_key)};
    o.spawn.mailbox = {ctx->opts.max_queued, ember::overflow::refuse};  // load shedding: see service::check
    auto r = gs::start_link<key_server>(std::move(o), ctx, api_key);
    if (r.already_started()) return sup::started::ignore();
    return r;
  };
  return spec;
}

/// The attempts check() makes before it answers `unavailable` (a key server
/// that stops for being idle as a request reaches it costs one).
inline constexpr int max_attempts = 4;

}  // namespace detail

/// A rate-limiting service: a handle on its context.  Start its tree with
/// child_spec() (under the application's supervisor) or start_link().
class service {
public:
  /// Throws std::invalid_argument when options.contracts is empty or a
  /// duration is not positive.
  explicit service(options o) {
    if (!o.contracts) throw std::invalid_argument("rate_limiter::options::contracts is empty");
    for (milliseconds d : {o.lookup_delay, o.lookup_deadline, o.idle_timeout, o.call_timeout, o.store_sweep_interval})
      if (d <= milliseconds(0) || d > ember::max_timer_delay)
        throw std::invalid_argument("rate_limiter::options: durations must be positive and at most ~49 days");
    if (o.max_queued == 0 || o.max_queued > ember::max_mailbox_capacity)
      throw std::invalid_argument("rate_limiter::options::max_queued must be between 1 and ember::max_mailbox_capacity");
    ctx_ = std::make_shared<detail::context>(std::move(o));
  }

  /// The service's tree as a child of the application's supervisor.
  [[nodiscard]] sup::child_spec child_spec(std::string id = "rate_limiter") const {
    return sup::supervisor_child(std::move(id), tree_flags(), children());
  }

  /// Start the service's tree linked to the calling process.  Process context.
  [[nodiscard]] sup::start_result start_link() const { return sup::start_link(tree_flags(), children()); }

  /// Admit or refuse one request for api_key (see the top of this file).
  /// Process context.
  [[nodiscard]] decision check(std::string_view api_key) const {
    const std::string key(api_key);
    for (int attempt = 0; attempt < detail::max_attempts; ++attempt) {
      ember::pid server = ctx_->keys.whereis(key).value_or(ember::pid{});
      try {
        if (server.is_null()) {
          const sup::child_result started =
              dyn::start_child(dyn::ref(ctx_->key_supervisor), detail::key_server_spec(ctx_, key));
          if (!started) return decision::unavailable();  // max_keys reached, or the start failed (reported)
          server = started.pid();
          if (server.is_null()) continue;  // `ignore`: another request started it; look it up
        }
        // Load shedding: key servers have a mailbox bounded at max_queued
        // (refuse), so a request to a server that has fallen behind fails
        // at once with call_refused instead of queueing: it is answered
        // overloaded and counted in no window.
        return gs::call<detail::key_server>(server, detail::check_request{}, ctx_->opts.call_timeout);
      } catch (const ember::call_refused&) {
        return decision::overloaded();
      } catch (const ember::call_noproc&) {
        // The server (or the key supervisor) was gone: try again.
      } catch (const ember::call_exited&) {
        // The server stopped with this call in its mailbox (idle, or its
        // lookup timed out): its successor answers.
      } catch (const ember::call_timeout&) {
        return decision::unavailable();
      }
    }
    return decision::unavailable();
  }

  /// The key server for api_key now (the null pid when none runs).
  [[nodiscard]] ember::pid key_server(std::string_view api_key) const {
    return ctx_->keys.whereis(api_key).value_or(ember::pid{});
  }
  /// Key servers running now.
  [[nodiscard]] std::size_t running_key_servers() const { return ctx_->keys.count(); }
  /// Keys whose windows wait in the store for their next server.  Process context.
  [[nodiscard]] std::size_t parked_windows() const {
    return gs::call(gs::server<detail::window_store>(ctx_->store), detail::parked_count{});
  }
  [[nodiscard]] stats counters() const {
    constexpr auto r = std::memory_order_relaxed;
    return {ctx_->key_servers_started.load(r), ctx_->lookups.load(r), ctx_->idle_stops.load(r),
            ctx_->windows_restored.load(r)};
  }
  [[nodiscard]] const options& settings() const noexcept { return ctx_->opts; }

private:
  static sup::flags tree_flags() { return {.strategy = sup::one_for_one, .intensity = 3}; }

  [[nodiscard]] std::vector<sup::child_spec> children() const {
    auto ctx = ctx_;
    std::vector<sup::child_spec> specs(3);
    specs[0].id = "window_store";
    specs[0].start = [ctx]() -> sup::started { return gs::start_link<detail::window_store>(ctx->store, ctx); };
    specs[1].id = "config";
    specs[1].start = [ctx]() -> sup::started { return gs::start_link<detail::config_service>(ctx->config, ctx); };
    specs[2].id = "keys";
    specs[2].type = sup::child_type::supervisor;
    specs[2].start = [ctx]() -> sup::started {
      return dyn::start_link(ctx->key_supervisor, {.max_children = ctx->opts.max_keys});
    };
    return specs;
  }

  std::shared_ptr<detail::context> ctx_;
};

}  // namespace rate_limiter
