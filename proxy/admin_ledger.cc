#include "proxy/admin_ledger.h"

#include <atomic>
#include <cstdio>

#include "protocol/json_writer.h"
#include "proxy/clock.h"
#include "proxy/dashboard_ledger.h"
#include "proxy/ledger_query.h"
#include "proxy/log.h"

namespace hashgate {

bool ledger_totals(const Snapshot& s, std::map<std::string, LedgerCounts>& out) {
  if (!s.ledger_reader) return false;
  std::string error;
  if (s.ledger_reader->totals(out, error)) return true;
  log::warn("ledger_read_failed").kv("what", "worker totals").kv("error", error);
  return false;
}

void append_lifetime(std::string& o, const LedgerCounts& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ",\"lifetime\":{\"accepted\":%llu,\"accepted_difficulty\":%.17g,\"rejected\":%llu,"
                "\"rejected_stale\":%llu,\"rejected_duplicate\":%llu,\"rejected_low_difficulty\":%llu,"
                "\"rejected_other\":%llu,\"forwarded\":%llu,\"pool_accepted\":%llu,\"pool_rejected\":%llu,"
                "\"blocks\":%llu}",
                (unsigned long long)c.accepted, c.accepted_difficulty, (unsigned long long)c.rejected(),
                (unsigned long long)c.rejected_stale, (unsigned long long)c.rejected_duplicate,
                (unsigned long long)c.rejected_low_difficulty, (unsigned long long)c.rejected_other,
                (unsigned long long)c.forwarded, (unsigned long long)c.pool_accepted,
                (unsigned long long)c.pool_rejected, (unsigned long long)c.blocks);
  o += buf;
}

namespace {

HttpResponse json_error(int status, std::string_view message) {
  std::string o = "{\"error\":";
  json_append_string(o, message);
  o += "}";
  return HttpResponse{status, "application/json", std::move(o), ""};
}

// A database that fails every read would otherwise log once per request.
bool read_failure_log_due() {
  static std::atomic<int64_t> last{0};
  const auto t = int64_t(mono_now());
  int64_t prev = last.load();
  return t - prev >= 10 && last.compare_exchange_strong(prev, t);
}

}  // namespace

std::optional<HttpResponse> ledger_route(const HttpRequest& r, const Snapshot& s) {
  if (r.path == "/dashboard/ledger.js")
    return HttpResponse{200, "text/javascript; charset=utf-8", std::string(kDashboardLedgerJs), ""};
  const bool history = r.path == "/api/v1/history";
  if (!history && r.path != "/api/v1/reconciliation") return std::nullopt;
  if (!s.ledger_reader) return json_error(404, "the ledger is off (set ledger.backend to sqlite or postgres)");
  const auto now = int64_t(unix_now());
  LedgerQuery lq;
  std::string error;
  if (!parse_ledger_query(history ? LedgerView::kHistory : LedgerView::kReconciliation, r.query, r.header("Accept"),
                          now, lq, error))
    return json_error(400, error);
  std::vector<HistoryPoint> rows;
  const bool ok = history ? s.ledger_reader->history(lq.q, rows, error) : s.ledger_reader->by_pool_hour(lq.q, rows, error);
  if (!ok) {
    if (read_failure_log_due()) log::warn("ledger_read_failed").kv("what", r.path).kv("error", error);
    return json_error(503, "the ledger cannot be read now: " + error);
  }
  std::string body = history ? history_body(lq, rows, s.hashes_per_difficulty) : reconciliation_body(lq, rows);
  return HttpResponse{200, lq.csv ? "text/csv; charset=utf-8" : "application/json", std::move(body), ""};
}

}  // namespace hashgate
