#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

#include "proxy/admin.h"
#include "proxy/admin_format.h"
#include "proxy/economics_admin.h"

// GET /metrics: the Prometheus text exposition of one snapshot, family by
// family in a fixed order (grouped below by what they describe).
namespace hashgate {
namespace {

using namespace admin_format;

// Process and readiness.
void append_process_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_build_info", "hashgate version, algorithm and hashing path in use", MetricType::Gauge);
  add(f, 1, {{"version", s.version}, {"algorithm", s.algorithm}, {"hashing_path", s.hashing_path}});
  fams.push_back(std::move(f));
  f = family("hashgate_start_time_seconds", "Unix time the process started", MetricType::Gauge);
  add(f, s.started_unix);
  fams.push_back(std::move(f));
  f = family("hashgate_ready", "1 when listeners are up and a pool is usable", MetricType::Gauge);
  add(f, s.ready ? 1 : 0);
  fams.push_back(std::move(f));
}

// The edge: connections, PROXY headers, violations and bans.
void append_edge_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_connections", "Miner connections open now", MetricType::Gauge);
  add(f, double(s.connections_current));
  fams.push_back(std::move(f));
  f = family("hashgate_connections_accepted_total", "Miner connections accepted", MetricType::Counter);
  add(f, double(s.connections_accepted));
  fams.push_back(std::move(f));
  f = family("hashgate_connections_closed_total", "Miner connections closed, by reason", MetricType::Counter);
  // The reasons alerts watch are always present (at 0), so rate() and
  // increase() see their first drop.
  for (const auto& [reason, n] : s.connections_closed) add(f, double(n), {{"reason", reason}});
  for (const char* reason : {"slow_reader", "slow_client"})
    if (!s.connections_closed.count(reason)) add(f, 0, {{"reason", reason}});
  fams.push_back(std::move(f));
  f = family("hashgate_connections_rejected_total", "Miner connections refused at accept, by reason",
             MetricType::Counter);
  for (const char* reason : {"banned", "address_connection_limit", "address_connection_rate", "fd_limit"}) {
    auto it = s.connections_rejected.find(reason);
    add(f, it == s.connections_rejected.end() ? 0 : double(it->second), {{"reason", reason}});
  }
  fams.push_back(std::move(f));
  f = family("hashgate_proxy_protocol_total",
             "PROXY protocol headers on listeners, by result (v1, v2, own_address: accepted; else why refused)",
             MetricType::Counter);
  for (const auto& [result, n] : s.proxy_protocol) add(f, double(n), {{"result", result}});
  fams.push_back(std::move(f));
  f = family("hashgate_violations_total", "Misbehaviour counted against an address, by kind", MetricType::Counter);
  for (const auto& [kind, n] : s.violations) add(f, double(n), {{"kind", kind}});
  fams.push_back(std::move(f));
  f = family("hashgate_bans", "Addresses banned now", MetricType::Gauge);
  add(f, double(s.bans.size()));
  fams.push_back(std::move(f));
  f = family("hashgate_bans_total", "Bans since start", MetricType::Counter);
  add(f, double(s.bans_total));
  fams.push_back(std::move(f));
  f = family("hashgate_addresses_tracked", "Addresses with limit or ban state", MetricType::Gauge);
  add(f, double(s.addresses_tracked));
  fams.push_back(std::move(f));
}

// Sessions by pool and by firmware profile.
void append_session_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_sessions", "Miner sessions bound to a pool, by pool", MetricType::Gauge);
  for (const auto& [pool, n] : s.sessions_by_pool) add(f, double(n), {{"pool", pool}});
  fams.push_back(std::move(f));

  f = family("hashgate_profile_sessions", "Miner sessions by firmware compatibility profile", MetricType::Gauge);
  for (size_t i = 0; i < s.profile_names.size() && i < s.profile_sessions.size(); ++i)
    add(f, double(s.profile_sessions[i]), {{"profile", s.profile_names[i]}});
  fams.push_back(std::move(f));

  f = family("hashgate_profile_violations_total",
             "Workers whose miner contradicted its firmware profile (then handled by the safe rule), by profile and rule",
             MetricType::Counter);
  for (const auto& [key, n] : s.profile_violations) add(f, double(n), {{"profile", key.first}, {"rule", key.second}});
  fams.push_back(std::move(f));
}

// Shares: verdicts, forwards, pool answers, and accepted difficulty per worker.
void append_share_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_shares_total", "Miner shares by verdict", MetricType::Counter);
  for (const char* k : {"accepted", "rejected_stale", "rejected_duplicate", "rejected_low_difficulty", "rejected_other"}) {
    auto it = s.shares.find(k);
    add(f, it == s.shares.end() ? 0 : double(it->second), {{"result", k}});
  }
  fams.push_back(std::move(f));
  auto share_count = [&](const char* k) {
    auto it = s.shares.find(k);
    return it == s.shares.end() ? 0.0 : double(it->second);
  };
  f = family("hashgate_shares_forwarded_total", "Shares submitted to a pool", MetricType::Counter);
  add(f, share_count("forwarded"));
  fams.push_back(std::move(f));
  f = family("hashgate_blocks_found_total", "Shares that met the network target", MetricType::Counter);
  add(f, share_count("blocks"));
  fams.push_back(std::move(f));
  f = family("hashgate_pool_shares_total", "Pool answers to forwarded shares, by pool and result",
             MetricType::Counter);
  for (const PoolSnapshot& p : s.pools) {
    add(f, double(p.accepted), {{"pool", p.name}, {"result", "accepted"}});
    add(f, double(p.rejected), {{"pool", p.name}, {"result", "rejected"}});
  }
  fams.push_back(std::move(f));
  // What a pool paid for beside what hashgate accepted for its jobs: a
  // session mining above the pool's difficulty makes the first smaller.
  f = family("hashgate_pool_difficulty_total",
             "Share difficulty per pool: credited by the pool (its difficulty per accepted share) and accepted by "
             "hashgate (session difficulty)",
             MetricType::Counter);
  for (const PoolSnapshot& p : s.pools) {
    add(f, p.accepted_difficulty, {{"pool", p.name}, {"counted_by", "pool_credited"}});
    add(f, p.hashgate_accepted_difficulty, {{"pool", p.name}, {"counted_by", "hashgate_accepted"}});
  }
  fams.push_back(std::move(f));
  f = family("hashgate_pool_jobs_coalesced_total",
             "Pool jobs never sent to miners: a newer job from the same connection replaced them within the notify "
             "throttle's interval (a notify flood)",
             MetricType::Counter);
  for (const PoolSnapshot& p : s.pools) add(f, double(p.jobs_coalesced), {{"pool", p.name}});
  fams.push_back(std::move(f));

  // Per worker, up to max_worker_labels workers (by accepted difficulty); the rest as "other".
  f = family("hashgate_worker_accepted_difficulty_total", "Accepted share difficulty per worker",
             MetricType::Counter);
  {
    // The top rows only are ordered (a partial sort over plain values, no
    // per-row copies): /metrics stays cheap with 100,000 rows.
    const WorkerTable& t = s.worker_table;
    std::vector<uint32_t> w;
    w.reserve(t.live);
    for (uint32_t i = 0; i < t.size; ++i)
      if (!t.name(i).empty()) w.push_back(i);
    const size_t top = std::min<size_t>(s.max_worker_labels, w.size());
    std::partial_sort(w.begin(), w.begin() + std::ptrdiff_t(top), w.end(), [&](uint32_t a, uint32_t b) {
      const double da = t.row(a).accepted_difficulty, db = t.row(b).accepted_difficulty;
      return da != db ? da > db : t.name(a) < t.name(b);
    });
    double other = 0;
    bool folded = false;
    for (size_t i = 0; i < w.size(); ++i) {
      if (i < top && t.name(w[i]) != "other") {
        add(f, t.row(w[i]).accepted_difficulty, {{"worker", label_safe(t.name(w[i]))}});
      } else {
        other += t.row(w[i]).accepted_difficulty;
        folded = true;
      }
    }
    if (folded) add(f, other, {{"worker", "other"}});
  }
  fams.push_back(std::move(f));
}

// hashgate_pool_tip_lag_seconds, hashgate_pool_integrity_events_total and the node's state.
void append_integrity_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto lag = family("hashgate_pool_tip_lag_seconds",
                    "How long the pool has been sending work on a block another source (pool or node) moved past",
                    MetricType::Gauge);
  auto height = family("hashgate_pool_height", "BIP34 height of the block the pool's jobs build", MetricType::Gauge);
  auto events = family("hashgate_pool_integrity_events_total", "Job integrity findings, by pool and check",
                       MetricType::Counter);
  for (const PoolSnapshot& p : s.pools) {
    add(lag, p.tip_lag_seconds, {{"pool", p.name}});
    if (p.height >= 0) add(height, double(p.height), {{"pool", p.name}});
    for (const auto& [check, n] : p.integrity_events) add(events, double(n), {{"pool", p.name}, {"check", check}});
  }
  fams.push_back(std::move(lag));
  fams.push_back(std::move(height));
  fams.push_back(std::move(events));
  if (s.node_state == "off" || s.node_state == "none") return;
  auto up = family("hashgate_node_up", "1 when integrity.node answers its JSON-RPC", MetricType::Gauge);
  add(up, s.node_state == "up" ? 1 : 0);
  fams.push_back(std::move(up));
  if (s.node_height < 0) return;
  auto nh = family("hashgate_node_height", "The node's block count (getblockcount)", MetricType::Gauge);
  add(nh, double(s.node_height));
  fams.push_back(std::move(nh));
}

// Pools: state, breaker, connections, hashrate, then job integrity.
void append_pool_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_pool_up", "1 when the pool has a subscribed connection with work", MetricType::Gauge);
  auto f_active = family("hashgate_pool_active", "1 for the pool miners are sent to", MetricType::Gauge);
  auto f_enabled = family("hashgate_pool_enabled", "0 when disabled through the admin API", MetricType::Gauge);
  auto f_breaker = family("hashgate_pool_breaker_state", "The pool's circuit breaker state (1 for the current one)",
                          MetricType::Gauge);
  auto f_conns = family("hashgate_pool_connections", "Open connections to the pool", MetricType::Gauge);
  auto f_rate = family("hashgate_pool_hashrate_hashes_per_second", "Estimated hashrate accepted by the pool",
                       MetricType::Gauge);
  for (const PoolSnapshot& p : s.pools) {
    add(f, p.state == "active" || p.state == "standby" ? 1 : 0, {{"pool", p.name}});
    add(f_active, p.state == "active" ? 1 : 0, {{"pool", p.name}});
    add(f_enabled, p.enabled ? 1 : 0, {{"pool", p.name}});
    for (const char* st : {"closed", "open", "half-open"})
      add(f_breaker, p.breaker == st ? 1 : 0, {{"pool", p.name}, {"state", st}});
    add(f_conns, double(p.connections), {{"pool", p.name}});
    add(f_rate, p.hashrate, {{"pool", p.name}});
  }
  fams.push_back(std::move(f));
  fams.push_back(std::move(f_active));
  fams.push_back(std::move(f_enabled));
  fams.push_back(std::move(f_breaker));
  fams.push_back(std::move(f_conns));
  fams.push_back(std::move(f_rate));
  append_integrity_metrics(s, fams);

  f = family("hashgate_hashrate_hashes_per_second", "Estimated hashrate of all miners (accepted shares)",
             MetricType::Gauge);
  add(f, s.hashrate);
  fams.push_back(std::move(f));
}

void append_latency_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_pool_submit_duration_seconds", "Round trip of a share submitted to a pool",
                  MetricType::Histogram);
  add_histogram(f, s.submit_rtt);
  fams.push_back(std::move(f));
  f = family("hashgate_job_fanout_duration_seconds", "Time to send one new job to every session of a connection",
             MetricType::Histogram);
  add_histogram(f, s.job_fanout);
  fams.push_back(std::move(f));
  f = family("hashgate_share_validation_duration_seconds", "From a share's arrival to its verdict (hashing included)",
             MetricType::Histogram);
  add_histogram(f, s.share_validation);
  fams.push_back(std::move(f));
}

// Local ASIC boards, by board and chip.
void append_board_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  if (s.boards.empty()) return;
  auto fb_up = family("hashgate_board_state", "Local ASIC board state (1 for the current one)", MetricType::Gauge);
  auto fb_nonces = family("hashgate_board_nonces_total", "Valid nonces from a board, by chip", MetricType::Counter);
  auto fb_hw = family("hashgate_board_hardware_errors_total",
                      "Nonces that missed the board's target (hardware errors), by chip", MetricType::Counter);
  auto fb_shares = family("hashgate_board_shares_total", "A board's shares by result", MetricType::Counter);
  auto fb_diff = family("hashgate_board_accepted_difficulty_total", "Accepted share difficulty of a board",
                        MetricType::Counter);
  auto fb_rate = family("hashgate_board_hashrate_hashes_per_second", "A board's hashrate from accepted difficulty",
                        MetricType::Gauge);
  auto fb_restarts = family("hashgate_board_restarts_total", "Re-initialisations (silent, too many errors)",
                            MetricType::Counter);
  auto fb_reopens = family("hashgate_board_reopens_total", "Serial port reopened after the device went away",
                           MetricType::Counter);
  auto fb_crc = family("hashgate_board_crc_errors_total", "Reply frames dropped for a bad checksum",
                       MetricType::Counter);
  auto fb_chips = family("hashgate_board_chips", "Chips that answered initialisation", MetricType::Gauge);
  auto fb_freq = family("hashgate_board_frequency_megahertz", "Configured chip frequency", MetricType::Gauge);
  for (const BoardSnapshot& b : s.boards) {
    for (const char* st : {"opening", "initialising", "waiting_for_work", "mining", "paused", "down", "disabled"})
      add(fb_up, b.state == st ? 1 : 0, {{"board", b.name}, {"state", st}});
    for (size_t c = 0; c < b.nonces_by_chip.size(); ++c) {
      add(fb_nonces, double(b.nonces_by_chip[c]), {{"board", b.name}, {"chip", std::to_string(c)}});
      add(fb_hw, double(c < b.hardware_errors_by_chip.size() ? b.hardware_errors_by_chip[c] : 0),
          {{"board", b.name}, {"chip", std::to_string(c)}});
    }
    add(fb_shares, double(b.accepted), {{"board", b.name}, {"result", "accepted"}});
    add(fb_shares, double(b.rejected), {{"board", b.name}, {"result", "rejected"}});
    add(fb_shares, double(b.below_share_target), {{"board", b.name}, {"result", "below_share_target"}});
    add(fb_diff, b.accepted_difficulty, {{"board", b.name}});
    add(fb_rate, b.hashrate, {{"board", b.name}});
    add(fb_restarts, double(b.restarts), {{"board", b.name}});
    add(fb_reopens, double(b.reopens), {{"board", b.name}});
    add(fb_crc, double(b.crc_errors), {{"board", b.name}});
    add(fb_chips, double(b.chips_found), {{"board", b.name}});
    add(fb_freq, b.frequency, {{"board", b.name}});
  }
  for (auto* fam : {&fb_up, &fb_nonces, &fb_hw, &fb_shares, &fb_diff, &fb_rate, &fb_restarts, &fb_reopens, &fb_crc,
                    &fb_chips, &fb_freq})
    fams.push_back(std::move(*fam));
}

// The worker table's size and limits, and the share ledger's writer.
void append_table_metrics(const Snapshot& s, std::vector<MetricFamily>& fams) {
  auto f = family("hashgate_worker_rows", "Worker rows in use (one per distinct worker name seen lately)",
                  MetricType::Gauge);
  add(f, double(s.worker_count()));
  fams.push_back(std::move(f));
  f = family("hashgate_worker_rows_limit", "limits.max_workers", MetricType::Gauge);
  add(f, double(s.worker_rows_limit));
  fams.push_back(std::move(f));
  f = family("hashgate_workers_aged_out_total", "Worker rows freed after limits.worker_idle_seconds without a session",
             MetricType::Counter);
  add(f, double(s.workers_aged_out));
  fams.push_back(std::move(f));
  f = family("hashgate_workers_over_limit_total", "New worker names counted under the shared row at the limit",
             MetricType::Counter);
  add(f, double(s.workers_over_limit));
  fams.push_back(std::move(f));
  if (s.ledger.on) {
    f = family("hashgate_ledger_queue_rows", "Ledger rows waiting for the database", MetricType::Gauge);
    add(f, double(s.ledger.queue_rows));
    fams.push_back(std::move(f));
    f = family("hashgate_ledger_queue_limit_rows", "ledger.queue_rows: rows past this are dropped", MetricType::Gauge);
    add(f, double(s.ledger.queue_limit));
    fams.push_back(std::move(f));
    f = family("hashgate_ledger_rows_total", "Ledger rows by outcome", MetricType::Counter);
    add(f, double(s.ledger.written_rows), {{"result", "written"}});
    add(f, double(s.ledger.dropped_rows), {{"result", "dropped"}});
    fams.push_back(std::move(f));
    f = family("hashgate_ledger_write_errors_total", "Failed ledger transactions (retried)", MetricType::Counter);
    add(f, double(s.ledger.write_errors));
    fams.push_back(std::move(f));
    f = family("hashgate_ledger_up", "1 when the last ledger write worked", MetricType::Gauge);
    add(f, s.ledger.healthy ? 1.0 : 0.0, {{"backend", s.ledger.backend}});
    fams.push_back(std::move(f));
  }
}

}  // namespace

std::string AdminServer::metrics_text(const Snapshot& s) {
  std::vector<MetricFamily> fams;
  append_process_metrics(s, fams);
  append_edge_metrics(s, fams);
  append_session_metrics(s, fams);
  append_share_metrics(s, fams);
  append_pool_metrics(s, fams);
  append_latency_metrics(s, fams);
  append_board_metrics(s, fams);
  append_table_metrics(s, fams);
  append_economics_metrics(fams, s);
  auto f = family("hashgate_config_reloads_total", "SIGHUP reloads by result", MetricType::Counter);
  add(f, double(s.reloads_ok), {{"result", "ok"}});
  add(f, double(s.reloads_failed), {{"result", "failed"}});
  fams.push_back(std::move(f));

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, fams);
  return out.str();
}

}  // namespace hashgate
