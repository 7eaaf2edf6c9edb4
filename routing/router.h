// The routing core: which pool serves, the connections kept to each pool,
// which miner session sits on which connection (and in which slice of its
// extranonce space), how sessions move when a connection changes or goes,
// and where a pool's answer to a forwarded share belongs. Sans-I/O: bytes
// and `now` come in, Commands go out (routing/command.h); it never reads a
// clock, owns no socket and calls no one back.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "protocol/circuit_breaker.h"
#include "protocol/downstream_session.h"
#include "protocol/extranonce_allocator.h"
#include "protocol/job.h"
#include "protocol/notify_throttle.h"
#include "protocol/upstream_session.h"
#include "routing/command.h"
#include "routing/placement.h"
#include "routing/router_config.h"

namespace hashgate::routing {

// Whether a pool's job (or new extranonce) may reach miners: the shell's job
// integrity checks. A synchronous answer, nothing more; none: all may.
class JobVetting {
 public:
  virtual ~JobVetting() = default;
  // Every connection of the pool was failed: its integrity state starts over.
  virtual void pool_down(size_t pool) {}
  virtual bool job(size_t pool, const NotifyParams& notify, const SubscribeResult& sub, uint32_t version_mask,
                   double now, std::string& why) = 0;
  virtual bool set_extranonce(size_t pool, const SubscribeResult& sub, std::string& why) = 0;
};

// What the shell knows of how a session's firmware is moved (its profile,
// and what its workers were caught ignoring before). None: the profile alone.
class SessionRules {
 public:
  virtual ~SessionRules() = default;
  // Moved by mining.set_extranonce: subscribed to it, and not known to ignore it.
  virtual bool can_move_in_place(const DownstreamSession& s) const = 0;
  // One of its workers did not follow a client.reconnect before: moved by a close.
  virtual bool ignores_reconnect(const DownstreamSession& s) const = 0;
};

class Router {
 public:
  // `jobs` is the book the miner sessions read (shared with them).
  Router(RouterConfig cfg, JobBook& jobs, JobVetting* vetting = nullptr, const SessionRules* rules = nullptr);
  ~Router();

  // Opens the connections the strategy keeps standing (aggregation).
  void start(double now);
  // Stops placing and moving sessions; connections stay for the answers due.
  void stop() { stopping_ = true; }
  // Closes every connection (the end of a stop).
  void close_all(double now);

  // ---- miner sessions (by id; the session object outlives its id here
  // until session_closed) ----
  // Its subscribe (or configure) wants a slice of a pool connection.
  // `preferred`: the pool its HTTP CONNECT named.
  void need_upstream(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred, double now);
  // A mining.authorize. False: the strategy leaves it to the gateway
  // (aggregation: every worker is hashgate's). True: the pool answers
  // (kAuthorizeResult), now or once the session has a connection.
  bool authorize(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred, const RpcId& id,
                 const AuthorizeParams& auth, double now);
  void session_closed(uint64_t sid);
  // The session ignored its last mining.set_extranonce: it leaves its slice
  // and moves again (by client.reconnect from now on).
  void move_again(uint64_t sid, double now);
  uint32_t session_link(uint64_t sid) const;
  // hashgate owes the session an answer only a pool can give.
  bool owes_answer(uint64_t sid) const;

  // ---- pool connections ----
  void link_connected(uint32_t link, double now);
  void link_data(uint32_t link, std::string_view bytes, double now);
  // The pool's side ended the connection (its session is offered for resume).
  void link_dropped(uint32_t link, const std::string& reason, double now);

  // ---- shares ----
  // A share of a job of `link` is being hashed / was judged: a passthrough
  // connection whose miner left waits for these.
  void share_hashing(uint32_t link);
  void share_judged(uint32_t link, double now);
  // Sends a share to its job's connection; false (logged) when it cannot go.
  // `stamp` comes back with its kVerdict.
  bool forward_share(uint64_t sid, uint32_t worker, const std::string& worker_name, const ShareWork& work, bool block,
                     uint64_t stamp, double now);
  size_t forwards_pending() const { return forwards_.size(); }
  // The token the next forwarded share gets.
  uint64_t next_token() const { return next_token_; }

  // ---- time ----
  // The next moment on_timeout has something to do (connects due, health
  // deadlines, breaker retries, drained connections); infinity when none.
  double next_timeout() const;
  // Health checks and the connections wanted (due work only).
  void on_timeout(double now);
  // Once a second: failback, rebalancing by weight (every 10th), sessions
  // waiting for a usable pool.
  void on_tick(double now);

  // ---- pools ----
  void set_pool_enabled(size_t pool, bool enabled, double now);
  // Every connection of the pool is lost as unusable; its miners move.
  void fail_pool(size_t pool, const std::string& reason, double now);
  // For each current pool, the index of the same pool in `next` (-1: none):
  // the same name, url, credentials and identity keep state and connections.
  std::vector<long> match_pools(const std::vector<PoolConfig>& next) const;
  // New pools and policy (the strategy and prefix bytes stay until a
  // restart). Returns match_pools(next.pools). `disabled`: new pools (by
  // their index in `next`) that stay disabled (their TLS setup failed).
  std::vector<long> reload(RouterConfig next, const std::vector<size_t>& disabled, double now);
  // Fails back to a better pool if one may serve, and opens the connections wanted.
  void refresh(double now);

  // ---- what the shell reads ----
  bool take_commands(std::vector<Command>& out);
  size_t pool_count() const { return pools_.size(); }
  size_t active_pool() const { return active_pool_; }
  const PoolConfig& pool_config(size_t pool) const { return pools_[pool]->cfg; }
  bool pool_enabled(size_t pool) const { return pools_[pool]->enabled; }
  bool pool_ready(size_t pool) const { return ready_link(pool, false) != nullptr; }
  const CircuitBreaker& breaker(size_t pool) const { return pools_[pool]->breaker; }
  uint64_t pool_failovers(size_t pool) const { return pools_[pool]->failovers; }
  uint64_t jobs_coalesced(size_t pool) const { return pools_[pool]->jobs_coalesced; }
  bool link_exists(uint32_t link) const { return find_link(link) != nullptr; }
  // The link's pool, or the serving one when the link is gone.
  size_t link_pool(uint32_t link) const;
  struct LinkInfo {
    uint32_t id;
    size_t pool;
    size_t sessions;
    bool ready;
  };
  std::vector<LinkInfo> links() const;
  const RouterConfig& config() const { return cfg_; }

 private:
  friend class AggregatePlacement;
  friend class PassthroughPlacement;

  struct Resumable {
    std::string session_id;
    Bytes extranonce1;
    uint32_t extranonce2_size = 0;
    double until = 0;
  };
  struct PoolState {
    explicit PoolState(const BreakerConfig& b) : breaker(b) {}
    PoolConfig cfg;
    Endpoint endpoint;        // where to connect: the configured one, or where the pool sent us
    double window_accepted = 0;  // pool-accepted difficulty since the last rebalance
    double not_before = 0;    // a pool's client.reconnect asked us to wait
    CircuitBreaker breaker;
    std::vector<Resumable> resumable;  // subscriptions of lost connections, offered back once each
    bool enabled = true;
    uint64_t failovers = 0;   // times the serving pool moved off this one
    uint64_t jobs_coalesced = 0;  // never sent: a newer job replaced them (notify flood)
  };
  struct Link {
    uint32_t id = 0;
    size_t pool = 0;
    std::unique_ptr<UpstreamSession> session;
    std::optional<PrefixAllocator> prefixes;
    std::vector<uint64_t> waiting;          // sessions waiting for the subscription
    std::vector<uint64_t> movers;           // subscribed sessions moving here once it has a job
    double retire_at = 0;                   // a drained connection (planned move) closes then
    std::unordered_set<uint64_t> sessions;  // bound sessions
    uint64_t owner_session = 0;             // passthrough: the one miner
    std::optional<Resumable> resuming;      // the subscription this connection asked back
    bool owner_left = false;                // passthrough: kept only for the answers still due
    unsigned hashing = 0;                   // shares on this link's jobs being hashed
    std::vector<std::pair<RpcId, AuthorizeParams>> pending_auth;  // passthrough
    std::vector<RpcId> auth_ids;            // passthrough: ids waiting for the pool's answer
    double connect_at = -1;                 // >= 0: the transport is to be opened then
    double opened_at = 0;
    double last_job_at = 0;                 // the last job (or new extranonce)
    bool has_job = false;                   // a job came since it connected
    unsigned malformed = 0;                 // malformed messages since the last good one
    unsigned malformed_notifies = 0;        // malformed notifies since the last valid job
    NotifyThrottle throttle;                // a notify flood reaches miners thinned
    bool redirected = false;                // connected where a client.reconnect sent the pool
    uint64_t answers = 0;                   // pool answers to forwarded shares, the last 50 as bits
    uint64_t reject_bits = 0;
    bool subscribed = false;
    bool dead = false;
  };
  struct SessionRec {
    uint64_t id = 0;
    const DownstreamSession* s = nullptr;
    std::optional<size_t> preferred_pool;
    uint32_t link_id = 0;  // 0: none (bound or waiting)
    uint32_t prefix = 0;
    bool has_prefix = false;
    // Waiting for its lost connection's subscription to be resumed.
    double held_until = 0;
    Bytes held_extranonce1;
    uint32_t held_pool = 0;
    uint32_t held_prefix = 0;
  };
  // A forwarded share waiting for the pool's answer: the one record of it
  // (the connection's UpstreamSession knows only its request id).
  struct Forward {
    uint64_t session_id;
    uint32_t worker;
    uint32_t link_id;
    bool block;
    double difficulty;
    uint64_t stamp;
  };
  enum class Loss {
    kJudged,    // hashgate gave up on it (timeout, garbage)
    kDropped,   // the pool's side ended it: its session is offered for resume
    kUnusable,  // it works but cannot be used (rejects our shares): the breaker opens at once
  };

  // Every public entry: dead links of the previous call are freed.
  void enter(double now);
  // A log line being built; it becomes a command when the statement that
  // built it ends (log(...).kv(...).kv(...);).
  class LogLine {
   public:
    LogLine(Router& r, LogLevel level, const char* name) : r_(r) {
      ev_.level = level;
      ev_.name = name;
    }
    LogLine(const LogLine&) = delete;
    LogLine& operator=(const LogLine&) = delete;
    ~LogLine() { r_.emit({.kind = Command::Kind::kLog, .log = std::move(ev_)}); }
    template <class T>
    LogLine& kv(std::string key, T v) {
      ev_.kv(std::move(key), v);
      return *this;
    }
    LogLine& peer(uint64_t session) {
      ev_.peer(session);
      return *this;
    }

   private:
    Router& r_;
    LogEvent ev_;
  };
  LogLine log(LogLevel level, const char* name) { return LogLine(*this, level, name); }
  // Commands are whole values when they are emitted: nothing outside
  // commands_ refers into it, however many commands building one may add.
  void emit(Command c) { commands_.push_back(std::move(c)); }
  double unit_random() { return double(rng_() % 1000000) / 1e6; }
  SessionRec* rec(uint64_t sid);
  SessionRec& track(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred);
  Link* find_link(uint32_t id) const;
  void sort_pools();

  // placement (router.cc)
  void assign_upstream(SessionRec& m);
  bool link_ready(const Link* l) const;
  Link* ready_link(size_t pool, bool need_room) const;
  Binding make_binding(Link* l, uint32_t prefix, const SessionRec& m);
  void bind_session(Link* l, SessionRec& m);
  // Gives `m` the slice `prefix` of `l`: answering its subscribe (bind), or
  // in place on its connection (set_extranonce) when it moves.
  void place_session(Link* l, SessionRec& m, uint32_t prefix, bool in_place);
  void unbind_session(SessionRec& m);
  void reset_prefixes(Link* l);
  // A passthrough connection whose miner left goes once nothing is owed on it.
  void retire_if_done(Link* l);

  // policy (pool_policy.cc)
  std::optional<size_t> serving_pool();
  size_t weighted_pick(size_t serving, double difficulty);
  void count_pool_loads();
  void rebalance_weights();
  void maintain_links();
  void check_link_timeouts();
  bool note_pool_answer(Link* l, bool accepted);
  void vacate_pool(size_t pool, const char* why, bool drain = false);
  void end_redirect(PoolState& ps, const std::string& why);

  // moves (moves.cc)
  bool can_move_in_place(const SessionRec& m) const;
  void move_session(SessionRec& m);
  void await_link(size_t pool, SessionRec& m);
  void send_move(SessionRec& m, size_t pool, uint32_t wait);
  void take_movers(Link* l);
  void resplit_link(Link* l);
  void follow_reconnect(Link* l, const ReconnectParams& r);
  void rehome(const std::vector<uint64_t>& sessions, bool close_instead);
  void resume_sessions(Link* l);
  void release_held(size_t pool);
  void retry_orphans();

  // connections (links.cc)
  Link* open_link(size_t pool, uint64_t owner_session);
  void flush(Link* l);
  void handle_link_event(Link* l, UpstreamEvent& ev);
  void link_subscribed(Link* l);
  void on_job(Link* l, UpstreamEvent& ev);
  void fan_out(Link* l, const JobRef& job, bool force_clean);  // the kJob command
  void release_held_jobs();
  void on_submit_result(Link* l, UpstreamEvent& ev);
  void link_lost(Link* l, const std::string& reason, Loss kind = Loss::kJudged);
  void dispose_link(Link* l);

  RouterConfig cfg_;
  std::unique_ptr<Placement> placement_;
  JobBook& jobs_;
  JobVetting* vetting_;
  const SessionRules* rules_;
  StratumParser pool_parser_;
  BreakerConfig breaker_cfg_;
  std::mt19937_64 rng_;
  double now_ = 0;
  std::vector<std::unique_ptr<PoolState>> pools_;
  std::vector<size_t> pool_order_;  // pool indexes by priority
  size_t active_pool_ = 0;
  std::map<uint32_t, std::unique_ptr<Link>> links_;
  std::vector<std::unique_ptr<Link>> graveyard_;  // disposed during this call
  std::unordered_map<uint64_t, SessionRec> sessions_;
  std::unordered_map<uint64_t, Forward> forwards_;
  std::unordered_set<uint64_t> orphans_;  // sessions waiting for a usable pool
  // Passthrough: authorizes of sessions that have no pool connection now.
  std::unordered_map<uint64_t, std::vector<std::pair<RpcId, AuthorizeParams>>> parked_auth_;
  std::vector<double> pool_loads_;  // by pool index, as of pool_loads_at_ plus placements since
  double pool_loads_at_ = 0;
  std::vector<size_t> pick_candidates_;
  std::vector<Command> commands_;
  uint64_t ticks_ = 0;
  uint32_t next_link_id_ = 1;
  uint64_t next_token_ = 1;
  bool stopping_ = false;
};

}  // namespace hashgate::routing
