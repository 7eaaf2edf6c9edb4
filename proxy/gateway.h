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
#include "proxy/upstream_links.h"
#include "routing/router.h"

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
  double now() const { return double(uv_now(loop_)) / 1000.0; }

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

  // upstream: the routing core (routing/router.h) decides; its commands are
  // executed by UpstreamLinks (pool connections) and run_routing (miners,
  // proxy/gateway_routing.cc).
  void assign_upstream(Miner* m);
  void run_routing();
  void apply_routing(const routing::Command& c);
  void log_routing(const routing::LogEvent& e);
  void fan_out(const routing::Command& c);  // a job to its sessions
  void pool_verdict(const routing::Command& c);
  // hashgate owes the miner an answer it cannot give yet (no usable pool):
  // its subscribe, or (passthrough) an authorize. Such a miner is never
  // timed out as a slow client.
  bool owes_answer(const Miner* m) const;
  void apply_profile(Miner* m);
  void note_share_after_move(Miner* m, bool good);
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
  JobBook jobs_;
  SessionContext ctx_;
  SessionSpares spares_;  // buffers lent to the busy session (ctx_.spares)
  std::unordered_map<uint64_t, Miner*> miners_;
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

  IntegrityVetting vetting_{integrity_};
  FirmwareRules rules_{firmware_};
  std::unique_ptr<UpstreamLinks> upstream_;  // the pools, their connections, the routing core
  std::vector<routing::Command> routing_cmds_;  // reused by run_routing
  bool routing_busy_ = false;

  uv_timer_t tick_;
  uv_timer_t stop_timer_;
  uint64_t ticks_ = 0;
  uint64_t next_session_id_ = 1;
  // Starting, serving, draining, finishing, stopped: the one place they change.
  Lifecycle life_;
};

}  // namespace hashgate
