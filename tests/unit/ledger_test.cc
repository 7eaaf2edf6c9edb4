// The share ledger without the loop: buckets (what the loop counts and hands
// over) and the store's SQL on an in-memory SQLite database (merging,
// rollups, history steps, totals, retention, schema versions).
#include <doctest/doctest.h>

#include "proxy/ledger_buckets.h"
#include "proxy/ledger_store.h"

using namespace hashgate;

TEST_CASE("ledger buckets: one row per worker and pool, handed over and started afresh") {
  LedgerBuckets b;
  b.reserve(4, 4);
  ++b.at(1, 0).accepted;
  ++b.at(1, 0).accepted;
  b.at(1, 1).accepted_difficulty += 2.5;  // the same worker on another pool: its own row
  ++b.at(3, 0).rejected_stale;
  CHECK(b.rows() == 3);
  std::vector<LedgerBuckets::Row> out;
  b.take(out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].worker == 1);
  CHECK(out[0].pool == 0);
  CHECK(out[0].c.accepted == 2);
  CHECK(out[1].pool == 1);
  CHECK(out[1].c.accepted_difficulty == 2.5);
  CHECK(out[2].worker == 3);
  CHECK(out[2].c.rejected_stale == 1);
  // Empty again: the chains were cleared with the rows.
  CHECK(b.rows() == 0);
  ++b.at(1, 1).accepted;
  b.take(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].pool == 1);
  CHECK(out[0].c.accepted == 1);
  CHECK(out[0].c.accepted_difficulty == 0);
}

TEST_CASE("ledger buckets: ids past the reserve still count") {
  LedgerBuckets b;
  ++b.at(1000, 2).forwarded;
  std::vector<LedgerBuckets::Row> out;
  b.take(out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].worker == 1000);
  CHECK(out[0].c.forwarded == 1);
}

namespace {
LedgerStore memory_store() {
  std::string error;
  auto c = open_sqlite(":memory:", error);
  REQUIRE(c);
  return LedgerStore(std::move(c));
}

LedgerBatch batch(int64_t minute, const std::string& worker, const std::string& pool, uint64_t accepted, double diff) {
  LedgerBatch b;
  b.minute = minute;
  LedgerCounts c;
  c.accepted = accepted;
  c.accepted_difficulty = diff;
  c.forwarded = 1;
  c.pool_accepted = 1;
  c.pool_accepted_difficulty = 8;
  b.workers.push_back({worker, pool, c});
  b.pools.push_back({pool, 1.0, 0});
  return b;
}
}  // namespace

TEST_CASE("ledger store: merged upserts, hourly rollups, history and totals") {
  LedgerStore s = memory_store();
  std::string error;
  REQUIRE(s.migrate(error));
  REQUIRE(s.migrate(error));  // a second start finds the schema in place
  const int64_t h = 1800000000 / 3600 * 3600;
  // Two batches of the same minute in one write (as after an outage), and a later one.
  LedgerBatch a = batch(h, "rig1", "main", 3, 3.0), b = batch(h, "rig1", "main", 2, 2.0);
  LedgerBatch c = batch(h + 120, "rig1", "main", 5, 5.0), d = batch(h + 3600, "rig2", "backup", 7, 7.0);
  REQUIRE(s.write({&a, &b}, "gw-a", error));
  REQUIRE(s.write({&c, &d}, "gw-a", error));
  LedgerBatch other = batch(h, "rig1", "main", 100, 100.0);
  REQUIRE(s.write({&other}, "gw-b", error));

  std::map<std::string, LedgerCounts> totals;
  REQUIRE(s.totals("gw-a", totals, error));
  REQUIRE(totals.size() == 2);
  CHECK(totals["rig1"].accepted == 10);
  CHECK(totals["rig1"].accepted_difficulty == 10.0);
  CHECK(totals["rig1"].forwarded == 3);
  CHECK(totals["rig2"].accepted == 7);

  HistoryQuery q;
  q.instance = "gw-a";
  q.from = h;
  q.to = h + 7200;
  q.step = 60;
  std::vector<HistoryPoint> pts;
  REQUIRE(s.history(q, pts, error));
  REQUIRE(pts.size() == 3);
  CHECK(pts[0].ts == h);
  CHECK(pts[0].c.accepted == 5);
  CHECK(pts[1].ts == h + 120);
  CHECK(pts[1].c.accepted == 5);
  CHECK(pts[2].c.accepted == 7);

  q.step = 3600;  // from the hourly rollups
  pts.clear();
  REQUIRE(s.history(q, pts, error));
  REQUIRE(pts.size() == 2);
  CHECK(pts[0].c.accepted == 10);
  CHECK(pts[1].c.accepted == 7);

  q.instance.clear();  // the fleet
  q.worker = "rig1";
  pts.clear();
  REQUIRE(s.history(q, pts, error));
  REQUIRE(pts.size() == 1);
  CHECK(pts[0].c.accepted == 110);

  q = HistoryQuery{"gw-a", "", "", h, h + 7200, 3600};
  pts.clear();
  REQUIRE(s.by_pool_hour(q, pts, error));
  REQUIRE(pts.size() == 2);
  CHECK(pts[0].pool == "main");
  CHECK(pts[0].c.pool_accepted_difficulty == 24.0);
  CHECK(pts[1].pool == "backup");

  // Retention: minute rows before h+60 go, hourly rows stay.
  REQUIRE(s.prune(h + 60, h - 3600, error));
  q.step = 60;
  pts.clear();
  REQUIRE(s.history(q, pts, error));
  REQUIRE(pts.size() == 2);
  CHECK(pts[0].ts == h + 120);
  q.step = 3600;
  pts.clear();
  REQUIRE(s.history(q, pts, error));
  CHECK(pts.size() == 2);
}

TEST_CASE("ledger store: blocks on their own rows with the pool's verdict") {
  std::string error;
  auto conn = open_sqlite(":memory:", error);
  REQUIRE(conn);
  SqlConnection* raw = conn.get();
  LedgerStore s(std::move(conn));
  REQUIRE(s.migrate(error));
  LedgerBatch b;
  b.minute = 60;
  b.blocks.push_back(LedgerBlock{61.5, "rig1", "main", "job7", "00ff", "abcd", "pending"});
  REQUIRE(s.write({&b}, "gw-a", error));
  LedgerBatch v;
  v.minute = 120;
  v.verdicts.emplace_back("abcd", "accepted");
  REQUIRE(s.write({&v}, "gw-a", error));
  SqlRows rows;
  REQUIRE(raw->query("SELECT worker, pool, job, header, verdict FROM blocks WHERE instance = 'gw-a'", {}, rows, error));
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == std::vector<std::string>{"rig1", "main", "job7", "00ff", "accepted"});
}

TEST_CASE("ledger store: a newer schema is refused, not rewritten") {
  std::string error;
  auto conn = open_sqlite(":memory:", error);
  REQUIRE(conn);
  REQUIRE(conn->exec("CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", {}, error));
  REQUIRE(conn->exec("INSERT INTO ledger_meta VALUES ('schema_version', '99')", {}, error));
  LedgerStore s(std::move(conn));
  CHECK_FALSE(s.migrate(error));
  CHECK(error.find("version 99") != std::string::npos);
}
