#include "proxy/admin_api.h"

#include <algorithm>
#include <map>
#include <vector>

#include "protocol/json_writer.h"
#include "proxy/admin_format.h"
#include "proxy/admin_ledger.h"
#include "proxy/economics_admin.h"

namespace hashgate::admin_api {
namespace {

using admin_format::append_int_or_null;
using admin_format::kv;

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

}  // namespace

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
    kv(o, "jobs_coalesced", p.jobs_coalesced);
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
    kv(o, "address", x.address ? x.address->to_string() : std::string());
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

}  // namespace hashgate::admin_api
