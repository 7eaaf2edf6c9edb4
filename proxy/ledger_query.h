// GET /api/v1/history and GET /api/v1/reconciliation without the server:
// the query string checked into a HistoryQuery (every refusal names its
// parameter), and the rows the store returns written as JSON or CSV. Pure
// code (no clock, no database): tests/unit/ledger_query_test.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/ledger_store.h"

namespace hashgate {

enum class LedgerView { kHistory, kReconciliation };

struct LedgerQuery {
  HistoryQuery q;      // [from, to) aligned to the step; instance empty: the fleet
  bool csv = false;    // format=csv, or Accept: text/csv
};

// At most this many points per answer (7 days of minutes).
inline constexpr int64_t kMaxLedgerPoints = 7 * 24 * 60;

// `query` is the raw query string; `accept` the Accept header (or null);
// `now` unix seconds. False with `error` ("<parameter>: <why>") for a 400.
bool parse_ledger_query(LedgerView view, std::string_view query, const std::string* accept, int64_t now,
                        LedgerQuery& out, std::string& error);

// %XX and '+' decoded; false for a malformed escape.
bool percent_decode(std::string_view in, std::string& out);

// Every step of [from, to), the missing ones as zeros; `points` from
// LedgerStore::history (sorted by ts). `hashes_per_difficulty` turns
// accepted difficulty into H/s (2^32 for sha256d, 2^16 for scrypt).
std::string history_body(const LedgerQuery& lq, const std::vector<HistoryPoint>& points,
                         double hashes_per_difficulty);
// Per pool and hour, from LedgerStore::by_pool_hour, and per pool over the window.
std::string reconciliation_body(const LedgerQuery& lq, const std::vector<HistoryPoint>& rows);

}  // namespace hashgate
