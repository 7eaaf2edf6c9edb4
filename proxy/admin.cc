#include "proxy/admin.h"

#include <openssl/crypto.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include "protocol/json_writer.h"
#include "proxy/admin_ledger.h"
#include "proxy/dashboard.h"
#include "proxy/economics_admin.h"
#include "proxy/log.h"

namespace hashgate {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double mono_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A loop that has not published for this long is not responsive.
constexpr double kStallSeconds = 5;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(MetricFamily& f, const Histogram& h, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum;
  uint64_t cum = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    m.histogram.bucket.push_back({cum, h.bounds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(m));
}

HttpResponse reply(int status, const char* type, std::string body, const char* extra = "") {
  return HttpResponse{status, type, std::move(body), extra};
}

HttpResponse reply_json(int status, std::string body) { return reply(status, "application/json", std::move(body)); }

// A worker name as a label value: control characters (which a peer chooses)
// written as \xHH text, never raw bytes in the exposition.
std::string label_safe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string error_json(std::string_view message) {
  std::string o = "{\"error\":";
  json_append_string(o, message);
  o += "}";
  return o;
}

void kv(std::string& o, const char* k, double v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_double(o, std::isfinite(v) ? v : 0);
}

void kv(std::string& o, const char* k, uint64_t v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_uint(o, v);
}

void kv(std::string& o, const char* k, std::string_view v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += ":";
  json_append_string(o, v);
}

void kv(std::string& o, const char* k, bool v, bool comma = true) {
  if (comma) o += ",";
  json_append_string(o, k);
  o += v ? ":true" : ":false";
}

std::string status_json(const Snapshot& s) {
  std::string o = "{";
  kv(o, "version", s.version, false);
  kv(o, "algorithm", s.algorithm);
  kv(o, "hashing_path", s.hashing_path);
  kv(o, "started_unix", s.started_unix);
  kv(o, "published_unix", s.published_unix);
  kv(o, "ready", s.ready);
  kv(o, "not_ready_reason", s.not_ready_reason);
  kv(o, "draining", s.draining);
  kv(o, "connections", s.connections_current);
  kv(o, "workers", uint64_t(s.worker_count()));
  kv(o, "hashrate", s.hashrate);
  kv(o, "reloads_ok", s.reloads_ok);
  kv(o, "reloads_failed", s.reloads_failed);
  kv(o, "last_reload_error", s.last_reload_error);
  o += ",\"shares\":{";
  bool first = true;
  for (const auto& [k, v] : s.shares) {
    kv(o, k.c_str(), v, !first);
    first = false;
  }
  o += "},\"hashrate_history\":[";
  for (size_t i = 0; i < s.hashrate_history.size(); ++i) {
    if (i) o += ",";
    o += "[";
    json_append_double(o, s.hashrate_history[i].first);
    o += ",";
    json_append_double(o, s.hashrate_history[i].second);
    o += "]";
  }
  o += "]";
  append_status_economics(o, s);
  o += "}";
  return o;
}

std::string bans_json(const Snapshot& s) {
  std::string o = "{\"bans\":[";
  for (size_t i = 0; i < s.bans.size(); ++i) {
    const BanSnapshot& b = s.bans[i];
    if (i) o += ",";
    o += "{";
    kv(o, "address", b.address, false);
    kv(o, "until_unix", b.until_unix);
    kv(o, "remaining_seconds", std::max(0.0, b.until_unix - s.published_unix));
    kv(o, "bans", uint64_t(b.count));
    kv(o, "violation", b.violation);
    o += "}";
  }
  o += "]";
  kv(o, "bans_total", s.bans_total);
  o += "}";
  return o;
}

void append_int_or_null(std::string& o, const char* k, int64_t v) {
  o += ",";
  json_append_string(o, k);
  o += ":";
  if (v < 0) {
    o += "null";
  } else {
    json_append_uint(o, uint64_t(v));
  }
}

// Job integrity (issue 21): the pool's tip, how far behind, what is flagged.
void append_integrity(std::string& o, const PoolSnapshot& p) {
  kv(o, "chain", p.chain);
  o += ",\"tip\":";
  if (p.tip.empty()) {
    o += "null";
  } else {
    json_append_string(o, p.tip);
  }
  append_int_or_null(o, "height", p.height);
  kv(o, "tip_lag_seconds", p.tip_lag_seconds);
  append_int_or_null(o, "tip_lag_blocks", p.tip_lag_blocks);
  o += ",\"integrity_flags\":[";
  for (size_t i = 0; i < p.integrity_flags.size(); ++i) {
    if (i) o += ",";
    json_append_string(o, p.integrity_flags[i]);
  }
  o += "],\"integrity_events\":{";
  for (size_t i = 0; i < p.integrity_events.size(); ++i)
    kv(o, p.integrity_events[i].first.c_str(), p.integrity_events[i].second, i != 0);
  o += "}";
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

std::string pools_json(const Snapshot& s) {
  std::string o = "{\"pools\":[";
  for (size_t i = 0; i < s.pools.size(); ++i) {
    const PoolSnapshot& p = s.pools[i];
    if (i) o += ",";
    o += "{";
    kv(o, "name", p.name, false);
    kv(o, "url", p.url);
    kv(o, "priority", uint64_t(std::max(0, p.priority)));
    kv(o, "weight", p.weight);
    kv(o, "enabled", p.enabled);
    kv(o, "state", p.state);
    kv(o, "breaker", p.breaker);
    kv(o, "connections", p.connections);
    kv(o, "sessions", p.sessions);
    kv(o, "accepted", p.accepted);
    kv(o, "rejected", p.rejected);
    kv(o, "accepted_difficulty", p.accepted_difficulty);
    kv(o, "credited_difficulty", p.accepted_difficulty);
    kv(o, "hashgate_accepted_difficulty", p.hashgate_accepted_difficulty);
    kv(o, "hashrate", p.hashrate);
    append_pool_economics(o, s, p);
    append_integrity(o, p);
    o += "}";
  }
  o += "],\"node\":{";
  kv(o, "state", s.node_state, false);
  append_int_or_null(o, "height", s.node_height);
  kv(o, "best", s.node_best);
  kv(o, "error", s.node_error);
  o += "}}";
  return o;
}

std::string boards_json(const Snapshot& s) {
  std::string o = "{\"boards\":[";
  for (size_t i = 0; i < s.boards.size(); ++i) {
    const BoardSnapshot& b = s.boards[i];
    if (i) o += ",";
    o += "{";
    kv(o, "name", b.name, false);
    kv(o, "driver", b.driver);
    kv(o, "path", b.path);
    kv(o, "worker", b.worker);
    kv(o, "state", b.state);
    kv(o, "last_error", b.last_error);
    kv(o, "chips_expected", uint64_t(b.chips_expected));
    kv(o, "chips_found", uint64_t(b.chips_found));
    kv(o, "frequency_mhz", b.frequency);
    o += ",\"temperature_celsius\":null";  // no supported board reports one over its serial port
    kv(o, "nonces", b.nonces);
    kv(o, "hardware_errors", b.hardware_errors);
    kv(o, "below_share_target", b.below_share_target);
    kv(o, "submitted", b.submitted);
    kv(o, "accepted", b.accepted);
    kv(o, "rejected", b.rejected);
    kv(o, "rejected_stale", b.rejected_stale);
    kv(o, "crc_errors", b.crc_errors);
    kv(o, "junk_bytes", b.junk_bytes);
    kv(o, "restarts", b.restarts);
    kv(o, "reopens", b.reopens);
    kv(o, "works_sent", b.works_sent);
    kv(o, "accepted_difficulty", b.accepted_difficulty);
    kv(o, "hashrate", b.hashrate);
    kv(o, "last_nonce_unix", b.last_nonce_unix);
    o += ",\"chips\":[";
    for (size_t c = 0; c < b.nonces_by_chip.size(); ++c) {
      if (c) o += ",";
      o += "{";
      kv(o, "chip", uint64_t(c), false);
      kv(o, "nonces", b.nonces_by_chip[c]);
      kv(o, "hardware_errors", c < b.hardware_errors_by_chip.size() ? b.hardware_errors_by_chip[c] : 0);
      o += "}";
    }
    o += "]}";
  }
  o += "]}";
  return o;
}

// Trouble first: the highest reject ratio, then the longest silence. Only
// the `limit` first rows are ordered and built (issue 17.2: a table of
// 100,000 names must not be copied and sorted per request).
std::vector<WorkerSnapshot> by_trouble(const Snapshot& s, size_t limit) {
  const WorkerTable& t = s.worker_table;
  auto ratio = [&](uint32_t i) {
    const WorkerStats& st = t.row(i);
    return st.accepted + st.rejected ? double(st.rejected) / double(st.accepted + st.rejected) : 0.0;
  };
  auto silence = [&](uint32_t i) {
    const double last = t.row(i).last_share_unix;
    return last > 0 ? s.published_unix - last : s.published_unix - s.started_unix;
  };
  std::vector<uint32_t> ids;
  ids.reserve(t.live);
  for (uint32_t i = 0; i < t.size; ++i)
    if (!t.name(i).empty()) ids.push_back(i);
  const size_t n = std::min(limit, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), [&](uint32_t a, uint32_t b) {
    if (ratio(a) != ratio(b)) return ratio(a) > ratio(b);
    if (silence(a) != silence(b)) return silence(a) > silence(b);
    return t.name(a) < t.name(b);
  });
  std::vector<WorkerSnapshot> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(s.worker(ids[i]));
  return out;
}

std::string workers_json(const Snapshot& s, size_t limit) {
  std::string o = "{\"total\":";
  json_append_uint(o, s.worker_count());
  o += ",\"workers\":[";
  const std::vector<WorkerSnapshot> shown = by_trouble(s, limit);
  // Lifetime totals: what the ledger holds (as of its last flush), across restarts.
  std::map<std::string, LedgerCounts> lifetime;
  const bool with_lifetime = ledger_totals(s, lifetime);
  for (size_t i = 0; i < shown.size(); ++i) {
    const WorkerSnapshot& x = shown[i];
    if (i) o += ",";
    o += "{";
    kv(o, "name", x.name, false);
    kv(o, "sessions", x.sessions);
    kv(o, "agent", x.agent);
    kv(o, "profile", x.profile);
    kv(o, "hashrate", x.hashrate);
    kv(o, "accepted", x.accepted);
    kv(o, "rejected", x.rejected);
    kv(o, "rejected_stale", x.rejected_stale);
    kv(o, "rejected_duplicate", x.rejected_duplicate);
    kv(o, "rejected_low_difficulty", x.rejected_low_difficulty);
    kv(o, "rejected_other", x.rejected_other);
    kv(o, "reject_ratio", x.reject_ratio);
    kv(o, "forwarded", x.forwarded);
    kv(o, "pool_accepted", x.pool_accepted);
    kv(o, "pool_rejected", x.pool_rejected);
    kv(o, "blocks", x.blocks);
    kv(o, "accepted_difficulty", x.accepted_difficulty);
    kv(o, "last_share_unix", x.last_share_unix);
    kv(o, "last_share_age_seconds", x.last_share_unix > 0 ? s.published_unix - x.last_share_unix : -1.0);
    if (with_lifetime) {
      auto it = lifetime.find(x.name);
      append_lifetime(o, it == lifetime.end() ? LedgerCounts{} : it->second);
    }
    append_worker_economics(o, s, x);
    o += "}";
  }
  o += "]}";
  return o;
}

}  // namespace

std::string AdminServer::metrics_text(const Snapshot& s) {
  std::vector<MetricFamily> fams;
  auto f = family("hashgate_build_info", "hashgate version, algorithm and hashing path in use", MetricType::Gauge);
  add(f, 1, {{"version", s.version}, {"algorithm", s.algorithm}, {"hashing_path", s.hashing_path}});
  fams.push_back(std::move(f));
  f = family("hashgate_start_time_seconds", "Unix time the process started", MetricType::Gauge);
  add(f, s.started_unix);
  fams.push_back(std::move(f));
  f = family("hashgate_ready", "1 when listeners are up and a pool is usable", MetricType::Gauge);
  add(f, s.ready ? 1 : 0);
  fams.push_back(std::move(f));

  f = family("hashgate_connections", "Miner connections open now", MetricType::Gauge);
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
  for (const char* reason : {"banned", "address_connection_limit", "address_connection_rate"}) {
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

  f = family("hashgate_sessions", "Miner sessions bound to a pool, by pool", MetricType::Gauge);
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

  f = family("hashgate_shares_total", "Miner shares by verdict", MetricType::Counter);
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

  f = family("hashgate_pool_up", "1 when the pool has a subscribed connection with work", MetricType::Gauge);
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

  f = family("hashgate_pool_submit_duration_seconds", "Round trip of a share submitted to a pool",
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

  if (!s.boards.empty()) {
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

  f = family("hashgate_worker_rows", "Worker rows in use (one per distinct worker name seen lately)",
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

  append_economics_metrics(fams, s);
  f = family("hashgate_config_reloads_total", "SIGHUP reloads by result", MetricType::Counter);
  add(f, double(s.reloads_ok), {{"result", "ok"}});
  add(f, double(s.reloads_failed), {{"result", "failed"}});
  fams.push_back(std::move(f));

  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, fams);
  return out.str();
}

AdminServer::AdminServer(const SnapshotBox& box, conf::Admin cfg, std::function<void(AdminCommand)> submit)
    : box_(box), cfg_(std::move(cfg)), submit_(std::move(submit)), token_(cfg_.token) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::set_token(const std::string& token) {
  std::lock_guard<std::mutex> g(token_mu_);
  token_ = token;
}

bool AdminServer::start(std::string& error) {
  HttpServerOptions o;
  o.host = cfg_.bind->host;
  o.port = cfg_.bind->port;
  // Health is answered on the server's I/O thread, never behind a worker
  // busy with /metrics or a client that does not finish its request.
  server_ = std::make_unique<HttpServer>(
      o, [this](const HttpRequest& r) { return fast(r); }, [this](const HttpRequest& r) { return handle(r); });
  if (!server_->start(error)) {
    server_.reset();
    return false;
  }
  port_ = server_->port();
  return true;
}

void AdminServer::stop() {
  if (server_) {
    server_->stop();
    server_.reset();
  }
}

std::optional<HttpResponse> AdminServer::fast(const HttpRequest& r) {
  if (r.method != "GET" && r.method != "HEAD") return std::nullopt;
  if (r.path != "/healthz" && r.path != "/readyz") return std::nullopt;
  return handle(r);
}

bool AdminServer::token_ok(const std::string& peer, const std::string* auth, const std::string& token) {
  const double t = mono_seconds();
  std::lock_guard<std::mutex> g(guess_mu_);
  if (guesses_.size() > kMaxGuessers) {
    for (auto it = guesses_.begin(); it != guesses_.end();)
      it = t - it->second.first > kGuessWindowSeconds ? guesses_.erase(it) : std::next(it);
  }
  auto& [since, count] = guesses_[peer];
  if (t - since > kGuessWindowSeconds) since = t, count = 0;
  if (count >= kMaxGuesses) return false;  // throttled: not even compared
  const std::string want = "Bearer " + token;
  // Constant time: how much of a guess is right must not show in the timing.
  const bool ok = auth && auth->size() == want.size() && CRYPTO_memcmp(auth->data(), want.data(), want.size()) == 0;
  if (!ok) ++count;
  return ok;
}

HttpResponse AdminServer::handle(const HttpRequest& ri) {
  const std::string& method = ri.method;
  const std::string& uri = ri.path;
  auto snap = box_.load();
  if (!snap) return reply(503, "text/plain", "starting\n");
  const Snapshot& s = *snap;
  if (method == "GET" || method == "HEAD") {
    if (uri == "/metrics") return reply(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(s));
    if (uri == "/healthz") {
      double age = mono_seconds() - s.published_mono;
      if (age > kStallSeconds)
        return reply(503, "text/plain", "event loop stalled: no snapshot for " + std::to_string(int(age)) + " s\n");
      return reply(200, "text/plain", "ok\n");
    }
    if (uri == "/readyz") {
      if (!s.ready) return reply(503, "text/plain", "not ready: " + s.not_ready_reason + "\n");
      return reply(200, "text/plain", "ready\n");
    }
    if (uri == "/api/v1/status") return reply_json(200, status_json(s));
    if (uri == "/api/v1/pools") return reply_json(200, pools_json(s));
    if (uri == "/api/v1/bans") return reply_json(200, bans_json(s));
    if (uri == "/api/v1/boards") return reply_json(200, boards_json(s));
    if (uri == "/api/v1/economics") return reply_json(200, economics_json(s));
    if (uri == "/api/v1/workers") {
      size_t limit = 1000;
      if (auto v = ri.query_value("limit"); v && !v->empty()) limit = size_t(std::max(0L, std::strtol(v->c_str(), nullptr, 10)));
      return reply_json(200, workers_json(s, limit));
    }
    if (uri == "/" || uri == "/index.html") return reply(200, "text/html; charset=utf-8", std::string(kDashboardHtml));
    return reply_json(404, error_json("no such endpoint: " + uri));
  }
  if (method == "POST" || method == "DELETE") {
    // POST /api/v1/pools/<name>/enable|disable and DELETE /api/v1/bans/<address>, with the bearer token.
    const std::string prefix = "/api/v1/pools/";
    std::string token;
    {
      std::lock_guard<std::mutex> g(token_mu_);
      token = token_;
    }
    if (token.empty()) return reply_json(403, error_json("changes are disabled: set admin.token in the config"));
    if (!token_ok(ri.peer, ri.header("Authorization"), token)) {
      log::warn("admin_unauthorized").kv("uri", uri).kv("peer", ri.peer);
      return reply(401, "application/json", error_json("missing or wrong bearer token (at most " +
                                                        std::to_string(kMaxGuesses) + " wrong ones a minute)"),
                   "WWW-Authenticate: Bearer\r\n");
    }
    const std::string bans_prefix = "/api/v1/bans/";
    if (method == "DELETE" && uri.rfind(bans_prefix, 0) == 0) {
      std::string addr = uri.substr(bans_prefix.size());
      bool known = std::any_of(s.bans.begin(), s.bans.end(), [&](const BanSnapshot& b) { return b.address == addr; });
      if (!known) return reply_json(404, error_json("'" + addr + "' is not banned"));
      submit_(AdminCommand{AdminCommand::Kind::kUnban, addr});
      log::info("admin_command").kv("action", "unban").kv("address", addr).kv("peer", ri.peer);
      std::string body = "{\"queued\":true";
      kv(body, "unban", addr);
      body += "}";
      return reply_json(202, body);
    }
    if (method == "POST" && uri.rfind(prefix, 0) == 0) {
      std::string rest = uri.substr(prefix.size());
      auto slash = rest.rfind('/');
      std::string name = slash == std::string::npos ? "" : rest.substr(0, slash);
      std::string action = slash == std::string::npos ? rest : rest.substr(slash + 1);
      bool known = std::any_of(s.pools.begin(), s.pools.end(), [&](const PoolSnapshot& p) { return p.name == name; });
      if (!known) return reply_json(404, error_json("no pool named '" + name + "'"));
      if (action != "enable" && action != "disable")
        return reply_json(400, error_json("unknown action '" + action + "' (expected enable or disable)"));
      submit_(AdminCommand{action == "enable" ? AdminCommand::Kind::kPoolEnable : AdminCommand::Kind::kPoolDisable,
                           name});
      log::info("admin_command").kv("action", "pool_" + action).kv("pool", name).kv("peer", ri.peer);
      std::string body = "{\"queued\":true";
      kv(body, "pool", name);
      kv(body, "action", action);
      body += "}";
      return reply_json(202, body);
    }
    return reply_json(404, error_json("no such endpoint: " + uri));
  }
  return reply_json(405, error_json("method " + method + " not allowed"));
}

}  // namespace hashgate
