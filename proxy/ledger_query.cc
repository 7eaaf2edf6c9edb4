#include "proxy/ledger_query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

#include "protocol/json_writer.h"

namespace hashgate {
namespace {

constexpr size_t kMaxNameBytes = 256;
constexpr int64_t kMaxStep = 31 * 86400;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool parse_seconds(const std::string& v, int64_t& out) {
  if (v.empty() || v.size() > 15) return false;
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size() && out >= 0;
}

// "name: why" for a 400, the value quoted (at most 64 bytes of it, its
// control characters escaped by the JSON writer of the answer).
std::string refuse(const char* name, const std::string& value, const std::string& why) {
  return std::string(name) + ": " + why + ", got '" + value.substr(0, 64) + (value.size() > 64 ? "...'" : "'");
}

double ratio(double num, double den) { return den > 0 ? num / den : NAN; }

void field(std::string& o, const char* k) {
  o += ",\"";
  o += k;
  o += "\":";
}
void num(std::string& o, const char* k, uint64_t v) {
  field(o, k);
  json_append_uint(o, v);
}
void num(std::string& o, const char* k, double v) {
  field(o, k);
  if (std::isfinite(v)) json_append_double(o, v);
  else o += "null";
}

// CSV cells: plain numbers, and names quoted when they need it (RFC 4180).
void csv_cell(std::string& o, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    o += s;
    return;
  }
  o += '"';
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  o += '"';
}
void csv_num(std::string& o, double v) {
  o += ',';
  if (std::isfinite(v)) json_append_double(o, v);
}
void csv_num(std::string& o, uint64_t v) {
  o += ',';
  json_append_uint(o, v);
}

// The counters every point and row carries, in one order for JSON and CSV.
constexpr const char* kCountNames[] = {
    "accepted", "accepted_difficulty", "rejected", "rejected_stale", "rejected_duplicate",
    "rejected_low_difficulty", "rejected_other", "forwarded", "forwarded_difficulty", "pool_accepted",
    "pool_accepted_difficulty", "pool_rejected", "pool_rejected_difficulty", "blocks"};

template <typename Num>
void each_count(const LedgerCounts& c, Num&& f) {
  f(kCountNames[0], c.accepted);
  f(kCountNames[1], c.accepted_difficulty);
  f(kCountNames[2], c.rejected());
  f(kCountNames[3], c.rejected_stale);
  f(kCountNames[4], c.rejected_duplicate);
  f(kCountNames[5], c.rejected_low_difficulty);
  f(kCountNames[6], c.rejected_other);
  f(kCountNames[7], c.forwarded);
  f(kCountNames[8], c.forwarded_difficulty);
  f(kCountNames[9], c.pool_accepted);
  f(kCountNames[10], c.pool_accepted_difficulty);
  f(kCountNames[11], c.pool_rejected);
  f(kCountNames[12], c.pool_rejected_difficulty);
  f(kCountNames[13], c.blocks);
}

std::string csv_header(const char* first) {
  std::string h = first;
  for (const char* n : kCountNames) h += std::string(",") + n;
  return h;
}

void query_echo(std::string& o, const LedgerQuery& lq) {
  o += "{\"from\":";
  json_append_int(o, lq.q.from);
  o += ",\"to\":";
  json_append_int(o, lq.q.to);
  o += ",\"step\":";
  json_append_int(o, lq.q.step);
  for (auto [k, v] : {std::pair{"worker", &lq.q.worker}, std::pair{"pool", &lq.q.pool},
                      std::pair{"instance", &lq.q.instance}}) {
    field(o, k);
    if (v->empty()) o += "null";
    else json_append_string(o, *v);
  }
}

// The reconciliation's own figures: what the pool credited against what
// hashgate accepted (the work the miners did) and against what it forwarded.
void reconcile_json(std::string& o, const LedgerCounts& c) {
  num(o, "accepted_difficulty", c.accepted_difficulty);
  num(o, "forwarded_difficulty", c.forwarded_difficulty);
  num(o, "pool_accepted_difficulty", c.pool_accepted_difficulty);
  num(o, "pool_rejected_difficulty", c.pool_rejected_difficulty);
  num(o, "forwarded", c.forwarded);
  num(o, "pool_accepted", c.pool_accepted);
  num(o, "pool_rejected", c.pool_rejected);
  num(o, "ratio", ratio(c.pool_accepted_difficulty, c.accepted_difficulty));
  num(o, "credited_of_forwarded", ratio(c.pool_accepted_difficulty, c.forwarded_difficulty));
}

void reconcile_csv(std::string& o, const LedgerCounts& c) {
  csv_num(o, c.accepted_difficulty);
  csv_num(o, c.forwarded_difficulty);
  csv_num(o, c.pool_accepted_difficulty);
  csv_num(o, c.pool_rejected_difficulty);
  csv_num(o, c.forwarded);
  csv_num(o, c.pool_accepted);
  csv_num(o, c.pool_rejected);
  csv_num(o, ratio(c.pool_accepted_difficulty, c.accepted_difficulty));
  csv_num(o, ratio(c.pool_accepted_difficulty, c.forwarded_difficulty));
  o += "\r\n";
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += char(hi * 16 + lo);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return true;
}

bool parse_ledger_query(LedgerView view, std::string_view query, const std::string* accept, int64_t now,
                        LedgerQuery& out, std::string& error) {
  const bool history = view == LedgerView::kHistory;
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    std::string key, value;
    if (!percent_decode(kv.substr(0, eq), key)) {
      error = "query: malformed %-escape in a parameter name";
      return false;
    }
    if (!percent_decode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1), value)) {
      error = key + ": malformed %-escape";
      return false;
    }
    const bool known = key == "from" || key == "to" || key == "pool" || key == "instance" || key == "format" ||
                       (history && (key == "worker" || key == "step"));
    if (!known) {
      error = key + ": unknown parameter (" +
              (history ? "expected worker, pool, instance, from, to, step, format"
                       : "expected pool, instance, from, to, format; the view is per hour") +
              ")";
      return false;
    }
    if (params.count(key)) {
      error = key + ": given twice";
      return false;
    }
    params[key] = value;
  }
  HistoryQuery& q = out.q;
  q = HistoryQuery{};
  for (auto [key, dst] : {std::pair{"worker", &q.worker}, std::pair{"pool", &q.pool},
                          std::pair{"instance", &q.instance}}) {
    auto it = params.find(key);
    if (it == params.end()) continue;
    if (it->second.empty() || it->second.size() > kMaxNameBytes) {
      error = refuse(key, it->second, "must be 1.." + std::to_string(kMaxNameBytes) + " bytes");
      return false;
    }
    *dst = it->second;
  }
  q.step = history ? 60 : 3600;
  if (auto it = params.find("step"); it != params.end()) {
    if (!parse_seconds(it->second, q.step) || q.step < 60 || q.step % 60 != 0 || q.step > kMaxStep) {
      error = refuse("step", it->second, "must be seconds, a multiple of 60 from 60 to " + std::to_string(kMaxStep));
      return false;
    }
  }
  int64_t to = now, from = now - (history ? 3600 : 86400);
  if (auto it = params.find("to"); it != params.end() && !parse_seconds(it->second, to)) {
    error = refuse("to", it->second, "must be unix seconds");
    return false;
  }
  if (params.count("to") && !params.count("from")) from = to - (history ? 3600 : 86400);
  if (auto it = params.find("from"); it != params.end() && !parse_seconds(it->second, from)) {
    error = refuse("from", it->second, "must be unix seconds");
    return false;
  }
  from = std::max<int64_t>(from, 0);  // a default window before 1970 (to=18) starts at 0
  if (from >= to) {
    error = "from: must be before to (from " + std::to_string(from) + ", to " + std::to_string(to) + ")";
    return false;
  }
  // Whole steps: from down, to up, so the partial step at either end is in.
  q.from = from / q.step * q.step;
  q.to = (to + q.step - 1) / q.step * q.step;
  if ((q.to - q.from) / q.step > kMaxLedgerPoints) {
    error = refuse(history ? "step" : "from", std::to_string(history ? q.step : from),
                   std::to_string((q.to - q.from) / q.step) + " points from " + std::to_string(q.from) + " to " +
                       std::to_string(q.to) + ", at most " + std::to_string(kMaxLedgerPoints) +
                       (history ? " (take a larger step)" : " (take a shorter window)"));
    return false;
  }
  out.csv = false;
  if (auto it = params.find("format"); it != params.end()) {
    if (it->second != "csv" && it->second != "json") {
      error = refuse("format", it->second, "must be json or csv");
      return false;
    }
    out.csv = it->second == "csv";
  } else if (accept && accept->find("text/csv") != std::string::npos) {
    out.csv = true;
  }
  return true;
}

std::string history_body(const LedgerQuery& lq, const std::vector<HistoryPoint>& points,
                         double hashes_per_difficulty) {
  std::string o;
  if (lq.csv) o = csv_header("ts") + ",hashrate,reject_ratio\r\n";
  else query_echo(o, lq), o += ",\"points\":[";
  size_t next = 0;
  const LedgerCounts zero;
  for (int64_t t = lq.q.from; t < lq.q.to; t += lq.q.step) {
    while (next < points.size() && points[next].ts < t) ++next;
    const LedgerCounts& c = next < points.size() && points[next].ts == t ? points[next].c : zero;
    const double rate = c.accepted_difficulty * hashes_per_difficulty / double(lq.q.step);
    const double rej = ratio(double(c.rejected()), double(c.accepted + c.rejected()));
    if (lq.csv) {
      json_append_int(o, t);
      each_count(c, [&](const char*, auto v) { csv_num(o, v); });
      csv_num(o, rate);
      csv_num(o, std::isfinite(rej) ? rej : 0.0);
      o += "\r\n";
      continue;
    }
    o += t == lq.q.from ? "{\"ts\":" : ",{\"ts\":";
    json_append_int(o, t);
    each_count(c, [&](const char* k, auto v) { num(o, k, v); });
    num(o, "hashrate", rate);
    num(o, "reject_ratio", std::isfinite(rej) ? rej : 0.0);
    o += "}";
  }
  if (!lq.csv) o += "]}";
  return o;
}

std::string reconciliation_body(const LedgerQuery& lq, const std::vector<HistoryPoint>& rows) {
  std::map<std::string, LedgerCounts> per_pool;
  for (const HistoryPoint& r : rows) per_pool[r.pool].add(r.c);
  std::string o;
  if (lq.csv) {
    o = "hour,pool,accepted_difficulty,forwarded_difficulty,pool_accepted_difficulty,pool_rejected_difficulty,"
        "forwarded,pool_accepted,pool_rejected,ratio,credited_of_forwarded\r\n";
    for (const HistoryPoint& r : rows) {
      json_append_int(o, r.ts);
      o += ',';
      csv_cell(o, r.pool);
      reconcile_csv(o, r.c);
    }
    return o;
  }
  query_echo(o, lq);
  o += ",\"rows\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    o += i ? ",{\"hour\":" : "{\"hour\":";
    json_append_int(o, rows[i].ts);
    o += ",\"pool\":";
    json_append_string(o, rows[i].pool);
    reconcile_json(o, rows[i].c);
    o += "}";
  }
  o += "],\"pools\":[";
  bool first = true;
  for (const auto& [pool, c] : per_pool) {
    o += first ? "{\"pool\":" : ",{\"pool\":";
    first = false;
    json_append_string(o, pool);
    reconcile_json(o, c);
    o += "}";
  }
  o += "]}";
  return o;
}

}  // namespace hashgate
