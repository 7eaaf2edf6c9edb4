// The gateway: one libuv loop that owns the miner listeners, every miner
// connection and every upstream connection, and moves bytes and decisions
// between them and the sans-I/O sessions in protocol/.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conf/config.h"
#include "protocol/circuit_breaker.h"
#include "protocol/downstream_session.h"
#include "protocol/extranonce_allocator.h"
#include "protocol/job.h"
#include "protocol/test_pool.h"
#include "protocol/upstream_session.h"
#include "proxy/accounting.h"
#include "proxy/admin.h"
#include "proxy/boards.h"
#include "proxy/edge.h"
#include "proxy/job_fanout.h"
#include "proxy/listener.h"
#include "proxy/miner_conn.h"
#include "proxy/miner_reader.h"
#include "proxy/share_pipeline.h"
#include "proxy/farm_economics.h"
#include "proxy/fanout_writer.h"
#include "proxy/firmware_tracker.h"
#include "proxy/guard.h"
#include "proxy/hash_pool.h"
#include "proxy/job_integrity.h"
#include "proxy/lifecycle.h"
#include "proxy/ledger.h"
#include "proxy/profiles.h"
#include "proxy/snapshot.h"
#include "proxy/tls.h"
#include "proxy/transport.h"

namespace hashgate {

class Gateway final : private MinerHost {
 public:
  Gateway(uv_loop_t* loop, conf::Config cfg);
  ~Gateway();

  // Binds the listeners, starts the hashing threads and connects to the pool. Returns 0, or a negative
  // libuv error with `error` saying which listener failed.
  int start(std::string& error);
  // Graceful stop: stop accepting, close miners after their pending output,
  // wait for the pool's answers to forwarded shares (up to a deadline), then
  // release every handle so the loop ends.
  void stop(const char* why);

  // What the admin server reads (published every second on the loop).
  const SnapshotBox& snapshots() const { return snapshots_; }
  // Thread-safe: queues an admin change for the loop.
  void post_command(AdminCommand c);
  // SIGHUP with a valid config: applies what can change live (pools,
  // failover, vardiff and limits for new sessions, log level); what needs a
  // restart (algorithm, listeners, hashing, aggregation mode) is kept and
  // named in `notes`.
  void reload(conf::Config next, std::vector<std::string>& notes);
  void reload_failed(const std::string& why);

 private:
  struct Link;
  struct PoolState;
  struct Forward {
    uint64_t session_id;
    uint32_t worker;  // a worker id
    uint32_t link_id;
    bool block;
    double difficulty;  // the pool's difficulty for the job: what an accept is worth
    uint64_t sent_ns;   // uv_hrtime() at submit, for the round trip
  };

  double now() const { return double(uv_now(loop_)) / 1000.0; }
  std::unique_ptr<PoolState> make_pool_state(const conf::Pool& p);
  // A stratum+ssl pool's TLS context; false with `error` naming the pool.
  bool setup_pool_tls(PoolState& ps, std::string& error);

  // miners (sockets and writes: proxy/miner_conn.h; the edge: proxy/edge.h)
  // An accepted connection gets its session and joins miners_.
  void on_miner(Miner* m);
  // Bytes from a miner's socket: through the edge (sniffing, HTTP CONNECT),
  // then TLS if any, then the session.
  void miner_bytes(Miner* m, std::string_view bytes) override;
  // A share its session refused: counted, punished unless stale.
  void share_refused(Miner* m, const SessionEvent& ev);
  void drain_session_events(Miner* m) { reader_.drain_events(m); }
  // Adds to the address's violation score; a ban closes all its connections (logged once).
  void punish(const Address& a, Violation v) override;
  // Answers a mining.authorize and counts a worker the session adds.
  void authorize_miner(Miner* m, const RpcId& id, const std::string& user, bool ok, std::string_view message);
  // A checked share goes to the pipeline; finish_share takes it back hashed.
  void handle_share(Miner* m, ShareWork& work);
  void finish_share(ShareWork& work, uint32_t worker, const Hash256& hash);
  void judge_share(ShareWork& work, uint32_t worker, const Hash256& hash);
  void handle_authorize(Miner* m, const RpcId& id, const AuthorizeParams& auth);
  void flush(Miner* m) { writer_.flush(m); }
  // `reason_class` is the metrics label: miner_closed, protocol_error, ...
  void close_miner(Miner* m, const std::string& reason, const char* reason_class) override;
  void release_binding(Miner* m);

  // upstream
  void assign_upstream(Miner* m);
  // Pools: which one serves miners now, and the links kept to the others.
  bool link_ready(const Link* l) const;
  Link* ready_link(size_t pool, bool need_room) const;
  std::optional<size_t> serving_pool();
  // The pool of `serving`'s priority tier that is most under its weight
  // (by session difficulty), counting a miner of `difficulty` placed there.
  size_t weighted_pick(size_t serving, double difficulty);
  void count_pool_loads();
  std::vector<double> pool_loads_;  // by pool index, as of pool_loads_at_ plus placements since
  double pool_loads_at_ = 0;
  std::vector<size_t> pick_candidates_;
  void rebalance_weights();
  void maintain_links();
  void check_link_timeouts();
  // Puts a miner whose pool connection went away onto the serving pool:
  // in place (set_extranonce) when it subscribed to extranonce changes,
  // otherwise by client.reconnect; without a usable pool it waits.
  void move_session(Miner* m);
  // A moving session that found no room on the pool's ready connections
  // waits for one being set up (opened if none has room): take_movers
  // places it when that connection has its first job.
  void await_link(size_t pool, Miner* m);
  // client.reconnect to an address that brings `m` to `pool` (reconnect_target.h),
  // and a close if it is still here after `wait` and the grace.
  void send_move(Miner* m, size_t pool, uint32_t wait);
  void take_movers(Link* l);
  // Moved by mining.set_extranonce: subscribed to it, and not known to ignore it.
  bool can_move_in_place(const Miner* m) const { return firmware_.can_move_in_place(*m->session); }
  // hashgate owes the miner an answer it cannot give yet (no usable pool):
  // its subscribe, or (passthrough) an authorize. Such a miner is never
  // timed out as a slow client.
  bool owes_answer(const Miner* m) const;
  // The firmware profile for `m` (proxy/firmware_tracker.h), given to its session.
  void apply_profile(Miner* m);
  void note_share_after_move(Miner* m, bool good);
  // The pool changed the connection's extranonce: re-split every session.
  void resplit_link(Link* l);
  // The pool asked for a reconnect: leave this connection without counting
  // a failure, and connect again (same host, maybe another port) after `wait`.
  void follow_reconnect(Link* l, const ReconnectParams& r);
  // A redirect by client.reconnect is bounded: a failure there (or a reload)
  // takes the pool back to its configured endpoint.
  void end_redirect(PoolState& ps, const std::string& why);
  Binding make_binding(Link* l, uint32_t prefix, const Miner* m) const;
  void unbind_miner(Miner* m);
  // Sessions of a connection that is gone: moved, or closed.
  void rehome(const std::vector<uint64_t>& sessions, bool close_instead);
  Link* open_link(size_t pool_index, uint64_t owner_session);
  void link_connected(Link* l);
  void link_data(Link* l, std::string_view bytes);
  enum class Loss {
    kJudged,     // hashgate gave up on it (timeout, garbage)
    kDropped,    // the pool's side ended it: its session is offered for resume
    kUnusable,   // it works but cannot be used (rejects our shares): the breaker opens at once
  };
  void link_lost(Link* l, const std::string& reason, Loss kind = Loss::kJudged);
  void dispose_link(Link* l);
  // A passthrough connection whose miner left goes once nothing is owed on it.
  void retire_if_done(Link* l);
  void handle_link_event(Link* l, struct UpstreamEvent& ev);
  void fan_out_job(Link* l, const JobRef& job, bool force_clean);
  void hold_job(Link* l);  // arms job_release_ for the link's held job
  void release_held_jobs();
  void link_subscribed(Link* l);
  // The pool gave back a lost connection's subscription: its held miners
  // return to their own prefixes without being told anything.
  void resume_sessions(Link* l);
  // The resume cannot happen: the held miners move now.
  void release_held(size_t pool);
  void bind_session(Link* l, Miner* m);
  // Gives `m` the slice `prefix` of `l`: answering its subscribe (bind), or
  // in place on its connection (set_extranonce) when it moves.
  void place_session(Link* l, Miner* m, uint32_t prefix, bool in_place);
  void reset_prefixes(Link* l);
  // Counts a pool's answer to a forwarded share; true when the pool's reject
  // ratio failed the connection (it is gone then).
  bool note_pool_answer(Link* l, bool accepted);
  void flush(Link* l);
  void forward_share(uint64_t session_id, uint32_t worker, const ShareWork& work, bool block);

  // Accounting (proxy/accounting.h): the worker table and the share ledger.
  // These name what the share and pool code counts into.
  size_t link_pool(uint32_t link_id) const;  // the link's pool, or the serving one
  LedgerCounts* ledger_row(uint32_t worker, uint32_t link_id) {
    return accounts_.ledger_on() ? accounts_.ledger_row(worker, link_pool(link_id)) : nullptr;
  }
  void ledger_verdict(uint64_t token, bool accepted) { accounts_.ledger_verdict(token, accepted); }
  WorkerStats& stats(uint32_t id) { return accounts_.stats(id); }
  const WorkerStats& row(uint32_t id) const { return accounts_.row(id); }
  const std::string& worker_name(uint32_t id) const { return accounts_.name(id); }

  void on_tick();
  void publish_snapshot();
  void run_commands();
  void set_pool_enabled(size_t pool, bool enabled);
  // Job integrity failed the pool (a refused job, a stale tip past the
  // move threshold): every connection is lost as unusable, its miners move.
  void fail_pool(size_t pool, const std::string& reason);
  // Moves every session off the pool's connections and closes them (no breaker charge).
  // `drain`: a planned move (admin disable): the connections stay a few
  // seconds for the shares of the jobs the miners leave.
  void vacate_pool(size_t pool, const char* why, bool drain = false);
  // The stop (its phases and their order: proxy/lifecycle.h). end_drain
  // ends the drain (a second signal, miners gone, time up); finish_shares
  // stops reading and hashes what was received; maybe_finish_stop closes
  // the miners, then releases every handle, as the lifecycle allows.
  void end_drain();
  void finish_shares();
  void maybe_finish_stop();
  void log_summary();

  uv_loop_t* loop_;
  conf::Config cfg_;
  Algorithm algo_;
  StratumParser miner_parser_;
  StratumParser pool_parser_;
  JobBook jobs_;
  SessionContext ctx_;
  SessionSpares spares_;  // buffers lent to the busy session (ctx_.spares)
  std::unordered_map<uint64_t, Miner*> miners_;
  std::map<uint32_t, Link*> links_;
  std::vector<std::unique_ptr<PoolState>> pools_;
  std::unordered_map<uint64_t, Forward> forwards_;
  // Observability: plain counters on the loop, copied into snapshots.
  SnapshotBox snapshots_;
  double started_unix_ = 0;
  // The objects that own the proxy's state (each reads the live cfg_, so
  // they are declared after it).
  Accounting accounts_;
  MinerWriter writer_;  // every byte to a miner
  Edge edge_;           // admission, PROXY/CONNECT/TLS sniffing, bans
  Listeners listeners_;
  JobFanout fanout_;
  SharePipeline shares_;
  FirmwareTracker firmware_;  // profiles, and what workers were caught doing against them
  MinerReader reader_;        // bytes in: rate, session, events; the per-second sweep
  Histogram submit_rtt_;
  std::vector<std::pair<double, double>> hashrate_history_;
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  std::string last_reload_error_;
  std::mutex commands_mu_;
  std::vector<AdminCommand> commands_;
  uv_async_t commands_async_;
  std::unique_ptr<BoardManager> boards_;
  std::unique_ptr<FarmEconomics> economics_;  // economics: in the config
  std::unique_ptr<JobIntegrity> integrity_;  // rebuilt at reload

  BreakerConfig breaker_cfg_;
  std::vector<size_t> pool_order_;  // pool indexes by priority
  size_t active_pool_ = 0;
  std::unordered_set<uint64_t> orphans_;  // sessions waiting for a usable pool
  // Passthrough: authorizes of sessions that have no pool connection now.
  std::unordered_map<uint64_t, std::vector<std::pair<RpcId, AuthorizeParams>>> parked_auth_;

  uv_timer_t tick_;
  uv_timer_t link_check_;  // pool health, four times a second
  uv_timer_t job_release_;  // jobs a notify flood held back
  uv_timer_t stop_timer_;
  uint64_t ticks_ = 0;
  uint64_t next_session_id_ = 1;
  uint32_t next_link_id_ = 1;
  uint64_t next_token_ = 1;
  // Starting, serving, draining, finishing, stopped: the one place they change.
  Lifecycle life_;
};

}  // namespace hashgate
