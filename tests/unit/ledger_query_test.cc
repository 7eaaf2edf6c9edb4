// GET /api/v1/history and /api/v1/reconciliation without the server: the
// parameters (each refusal names its parameter) and the JSON and CSV bodies
// over an in-memory SQLite ledger.
#include <doctest/doctest.h>

#include "proxy/ledger_query.h"
#include "proxy/ledger_store.h"

using namespace hashgate;

namespace {
constexpr int64_t kNow = 1800000000 + 90;  // 90 s into a minute (1800000000 is a whole hour)

std::string refusal(LedgerView v, std::string_view q, const std::string* accept = nullptr) {
  LedgerQuery lq;
  std::string error;
  if (parse_ledger_query(v, q, accept, kNow, lq, error)) return "(accepted)";
  return error;
}

bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

TEST_CASE("ledger query: defaults, alignment and decoding") {
  LedgerQuery lq;
  std::string error;
  REQUIRE(parse_ledger_query(LedgerView::kHistory, "", nullptr, kNow, lq, error));
  CHECK(lq.q.step == 60);
  CHECK(lq.q.to == 1800000000 + 120);  // the minute in progress is in
  CHECK(lq.q.from == 1800000000 + 120 - 3600 - 60);
  CHECK_FALSE(lq.csv);
  CHECK(lq.q.worker.empty());
  CHECK(lq.q.instance.empty());

  REQUIRE(parse_ledger_query(LedgerView::kHistory, "worker=rig%2E1+a&pool=main&instance=gw-a&from=1799996400&to="
                             "1800000000&step=3600&format=csv",
                             nullptr, kNow, lq, error));
  CHECK(lq.q.worker == "rig.1 a");
  CHECK(lq.q.pool == "main");
  CHECK(lq.q.instance == "gw-a");
  CHECK(lq.q.from == 1799996400);
  CHECK(lq.q.to == 1800000000);
  CHECK(lq.q.step == 3600);
  CHECK(lq.csv);

  const std::string accept = "text/csv, */*;q=0.1";
  REQUIRE(parse_ledger_query(LedgerView::kHistory, "", &accept, kNow, lq, error));
  CHECK(lq.csv);
  REQUIRE(parse_ledger_query(LedgerView::kHistory, "format=json", &accept, kNow, lq, error));
  CHECK_FALSE(lq.csv);  // the parameter wins over the header

  REQUIRE(parse_ledger_query(LedgerView::kReconciliation, "", nullptr, kNow, lq, error));
  CHECK(lq.q.step == 3600);
  CHECK(lq.q.to == 1800003600);
  CHECK(lq.q.from == 1800000000 - 86400);
}

TEST_CASE("ledger query: each bad parameter refused by name") {
  CHECK(starts(refusal(LedgerView::kHistory, "step=45"), "step: "));
  CHECK(starts(refusal(LedgerView::kHistory, "step=0"), "step: "));
  CHECK(starts(refusal(LedgerView::kHistory, "step=abc"), "step: "));
  CHECK(starts(refusal(LedgerView::kHistory, "step=-60"), "step: "));
  CHECK(starts(refusal(LedgerView::kHistory, "from=yesterday"), "from: "));
  CHECK(starts(refusal(LedgerView::kHistory, "to=1e9"), "to: "));
  CHECK(starts(refusal(LedgerView::kHistory, "from=1800000000&to=1700000000"), "from: must be before to"));
  CHECK(starts(refusal(LedgerView::kHistory, "from=0&to=1800000000&step=60"), "step: "));  // too many points
  CHECK(starts(refusal(LedgerView::kHistory, "format=xml"), "format: "));
  CHECK(starts(refusal(LedgerView::kHistory, "worker="), "worker: "));
  CHECK(starts(refusal(LedgerView::kHistory, "worker=" + std::string(300, 'w')), "worker: "));
  CHECK(starts(refusal(LedgerView::kHistory, "worker=a%2"), "worker: malformed"));
  CHECK(starts(refusal(LedgerView::kHistory, "pool=%zz"), "pool: malformed"));
  CHECK(starts(refusal(LedgerView::kHistory, "colour=red"), "colour: unknown parameter"));
  CHECK(starts(refusal(LedgerView::kHistory, "pool=a&pool=b"), "pool: given twice"));
  CHECK(starts(refusal(LedgerView::kReconciliation, "step=60"), "step: unknown parameter"));
  CHECK(starts(refusal(LedgerView::kReconciliation, "worker=rig1"), "worker: unknown parameter"));
  CHECK(starts(refusal(LedgerView::kReconciliation, "from=0&to=1800000000"), "from: "));
  CHECK(refusal(LedgerView::kHistory, "from=1799990000&step=86400") == "(accepted)");
  // A default window reaching before 1970 starts at 0 (found by fuzz_ledger_query).
  LedgerQuery lq;
  std::string error;
  REQUIRE(parse_ledger_query(LedgerView::kHistory, "to=18", nullptr, kNow, lq, error));
  CHECK(lq.q.from == 0);
  CHECK(lq.q.to == 60);
}

namespace {
LedgerBatch one(int64_t minute, const std::string& worker, const std::string& pool, uint64_t accepted,
                uint64_t stale, double forwarded_diff, double credited_diff) {
  LedgerBatch b;
  b.minute = minute;
  LedgerCounts c;
  c.accepted = accepted;
  c.accepted_difficulty = double(accepted) * 0.5;
  c.rejected_stale = stale;
  c.forwarded = 1;
  c.forwarded_difficulty = forwarded_diff;
  c.pool_accepted = credited_diff > 0 ? 1 : 0;
  c.pool_accepted_difficulty = credited_diff;
  b.workers.push_back({worker, pool, c});
  return b;
}
}  // namespace

TEST_CASE("ledger query: history and reconciliation bodies from the store, JSON and CSV") {
  std::string error;
  auto conn = open_sqlite(":memory:", error);
  REQUIRE(conn);
  LedgerStore s(std::move(conn));
  REQUIRE(s.migrate(error));
  const int64_t h = 1800000000 - 3600;
  LedgerBatch a = one(h, "rig1", "main", 4, 1, 2.0, 2.0), b = one(h + 120, "rig1", "main", 6, 0, 2.0, 0.0),
              c = one(h + 60, "rig,2", "backup", 2, 0, 4.0, 4.0);
  REQUIRE(s.write({&a, &b, &c}, "gw-a", error));

  LedgerQuery lq;
  REQUIRE(parse_ledger_query(LedgerView::kHistory, "from=" + std::to_string(h) + "&to=" + std::to_string(h + 180) +
                                                      "&worker=rig1",
                             nullptr, kNow, lq, error));
  std::vector<HistoryPoint> pts;
  REQUIRE(s.history(lq.q, pts, error));
  const std::string json = history_body(lq, pts, 4294967296.0);
  // Three minutes, the empty one (h+60: rig1 did nothing) as zeros.
  CHECK(json.find("\"points\":[{\"ts\":" + std::to_string(h) + ",\"accepted\":4,\"accepted_difficulty\":2,"
                  "\"rejected\":1,\"rejected_stale\":1,") != std::string::npos);
  CHECK(json.find("{\"ts\":" + std::to_string(h + 60) + ",\"accepted\":0,") != std::string::npos);
  CHECK(json.find("{\"ts\":" + std::to_string(h + 120) + ",\"accepted\":6,\"accepted_difficulty\":3,") !=
        std::string::npos);
  // Hashrate: 2 difficulty * 2^32 hashes over 60 s; reject ratio 1 of 5.
  CHECK(json.find("\"hashrate\":143165576.53333333,\"reject_ratio\":0.2}") != std::string::npos);
  CHECK(json.find("\"worker\":\"rig1\",\"pool\":null,\"instance\":null") != std::string::npos);

  lq.csv = true;
  const std::string csv = history_body(lq, pts, 4294967296.0);
  CHECK(starts(csv, "ts,accepted,accepted_difficulty,rejected,rejected_stale,"));
  CHECK(csv.find("\r\n" + std::to_string(h) + ",4,2,1,1,0,0,0,1,2,1,2,0,0,0,143165576.53333333,0.2\r\n") !=
        std::string::npos);
  CHECK(csv.find("\r\n" + std::to_string(h + 60) + ",0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\r\n") != std::string::npos);
  size_t lines = 0;
  for (char ch : csv) lines += ch == '\n';
  CHECK(lines == 4);  // header and three minutes

  REQUIRE(parse_ledger_query(LedgerView::kReconciliation, "from=" + std::to_string(h), nullptr, kNow, lq, error));
  std::vector<HistoryPoint> rows;
  REQUIRE(s.by_pool_hour(lq.q, rows, error));
  const std::string rec = reconciliation_body(lq, rows);
  // main: accepted 5 difficulty, forwarded 4, credited 2 -> ratio 0.4, 0.5 of forwarded.
  CHECK(rec.find("{\"hour\":" + std::to_string(h) + ",\"pool\":\"main\",\"accepted_difficulty\":5,"
                 "\"forwarded_difficulty\":4,\"pool_accepted_difficulty\":2,\"pool_rejected_difficulty\":0,"
                 "\"forwarded\":2,\"pool_accepted\":1,\"pool_rejected\":0,\"ratio\":0.4,"
                 "\"credited_of_forwarded\":0.5}") != std::string::npos);
  CHECK(rec.find("\"pools\":[{\"pool\":\"backup\",\"accepted_difficulty\":1,") != std::string::npos);
  lq.csv = true;
  const std::string rcsv = reconciliation_body(lq, rows);
  CHECK(rcsv.find("\r\n" + std::to_string(h) + ",main,5,4,2,0,2,1,0,0.4,0.5\r\n") != std::string::npos);
  // A pool name with a comma is quoted in CSV.
  LedgerBatch d = one(h, "rig1", "a,b", 2, 0, 0.0, 0.0);
  REQUIRE(s.write({&d}, "gw-a", error));
  rows.clear();
  REQUIRE(s.by_pool_hour(lq.q, rows, error));
  CHECK(reconciliation_body(lq, rows).find(",\"a,b\",1,0,0,0,1,0,0,0,\r\n") != std::string::npos);
}
