// libFuzzer: the query strings of GET /api/v1/history and
// /api/v1/reconciliation (proxy/ledger_query.h), which any admin client
// sends. The first byte picks the view, the Accept header and the clock; the
// rest is the query string. Checks what the store and the renderer rely on:
// an accepted query is a whole number of steps, a multiple of 60 s, at most
// kMaxLedgerPoints of them, with names of at most 256 bytes; a refusal names
// its parameter ("name: why"); the body has one point per step.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/ledger_query.h"

using namespace hashgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);
  const LedgerView view = (mode & 1) ? LedgerView::kReconciliation : LedgerView::kHistory;
  const std::string accept = "text/csv";
  const int64_t now = 1800000000 + int64_t(mode) * 37;
  LedgerQuery lq;
  std::string error;
  if (!parse_ledger_query(view, query, (mode & 2) ? &accept : nullptr, now, lq, error)) {
    if (error.empty() || error.find(": ") == std::string::npos) std::abort();
    return 0;
  }
  const HistoryQuery& q = lq.q;
  if (q.step < 60 || q.step % 60 != 0 || q.from >= q.to || q.from < 0 || (q.to - q.from) % q.step != 0 ||
      (q.to - q.from) / q.step > kMaxLedgerPoints || q.worker.size() > 256 || q.pool.size() > 256 ||
      q.instance.size() > 256)
    std::abort();
  if (view == LedgerView::kReconciliation && q.step != 3600) std::abort();
  // A point at the first step and one past the window (the store never
  // returns it; the renderer must not count it either).
  std::vector<HistoryPoint> pts(2);
  pts[0].ts = q.from;
  pts[0].c.accepted = 3;
  pts[1].ts = q.to;
  pts[1].c.accepted = 5;
  const std::string body = history_body(lq, pts, 4294967296.0);
  size_t lines = 0;
  for (size_t at = 0; (at = body.find(lq.csv ? "\r\n" : "{\"ts\":", at)) != std::string::npos; ++at) ++lines;
  if (lines != size_t((q.to - q.from) / q.step) + (lq.csv ? 1 : 0)) std::abort();
  pts[0].pool = q.pool;
  reconciliation_body(lq, pts);
  return 0;
}
