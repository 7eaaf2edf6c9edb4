// The ledger's rows and the database side: LedgerStore holds the schema and
// every statement, written once in SQL that SQLite and PostgreSQL both read
// ($N parameters, ON CONFLICT upserts); SqlConnection is all a backend
// supplies (ledger_sqlite.cc, ledger_pg.cc).
#pragma once

#include <cstdint>
#include <map>
#include <tuple>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hashgate {

// What a worker did on a pool in some span of time.
struct LedgerCounts {
  uint64_t accepted = 0;
  uint64_t rejected_stale = 0;
  uint64_t rejected_duplicate = 0;
  uint64_t rejected_low_difficulty = 0;
  uint64_t rejected_other = 0;
  uint64_t forwarded = 0;
  uint64_t pool_accepted = 0;
  uint64_t pool_rejected = 0;
  uint64_t blocks = 0;
  double accepted_difficulty = 0;
  double forwarded_difficulty = 0;  // the pool's difficulty of each forwarded share
  double pool_accepted_difficulty = 0;
  double pool_rejected_difficulty = 0;
  void add(const LedgerCounts& o);
  uint64_t rejected() const { return rejected_stale + rejected_duplicate + rejected_low_difficulty + rejected_other; }
};

// A block candidate, on its own row.
struct LedgerBlock {
  double time = 0;
  std::string worker, pool, job, header, hash;  // header and hash in hex
  std::string verdict = "pending";               // pending | accepted | rejected | not_forwarded
};

// One flush interval's rows, as the writer stores them.
struct LedgerBatch {
  int64_t minute = 0;  // unix seconds at the start of the minute the rows belong to
  struct WorkerRow {
    std::string worker, pool;
    LedgerCounts c;
  };
  struct PoolRow {
    std::string pool;
    double connected_seconds = 0;
    uint64_t failovers = 0;  // times miners were moved off this pool
  };
  std::vector<WorkerRow> workers;
  std::vector<PoolRow> pools;
  std::vector<LedgerBlock> blocks;
  std::vector<std::pair<std::string, std::string>> verdicts;  // (block hash, verdict)
  size_t rows() const { return workers.size() + pools.size() + blocks.size() + verdicts.size(); }
};

// History queries (GET /api/v1/history and the reconciliation view).
struct HistoryQuery {
  std::string instance;  // empty: the whole fleet
  std::string worker, pool;  // empty: all
  int64_t from = 0, to = 0;  // unix seconds, [from, to)
  int64_t step = 60;         // seconds per point: a multiple of 60
};
struct HistoryPoint {
  int64_t ts = 0;
  std::string pool;  // set by the reconciliation view only
  LedgerCounts c;
};

// A statement parameter, bound with its type.
struct SqlValue {
  enum Kind { kText, kInt, kReal } kind = kText;
  std::string text;
  int64_t i = 0;
  double d = 0;
  static SqlValue str(std::string s) { return SqlValue{kText, std::move(s), 0, 0}; }
  static SqlValue integer(int64_t v) { return SqlValue{kInt, {}, v, 0}; }
  static SqlValue real(double v) { return SqlValue{kReal, {}, 0, v}; }
};
using SqlRows = std::vector<std::vector<std::string>>;  // cells as text; NULL as ""

// One database connection, used by one thread at a time.
class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual bool exec(const std::string& sql, const std::vector<SqlValue>& params, std::string& error) = 0;
  virtual bool query(const std::string& sql, const std::vector<SqlValue>& params, SqlRows& rows,
                     std::string& error) = 0;
  // Schema text that differs between the two: the type of a float column.
  virtual const char* real_type() const = 0;
};

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path, std::string& error);
std::unique_ptr<SqlConnection> open_postgres(const std::string& url, std::string& error);

class LedgerStore {
 public:
  static constexpr int kSchemaVersion = 1;
  explicit LedgerStore(std::unique_ptr<SqlConnection> c) : c_(std::move(c)) {}
  // Creates or upgrades the schema; refuses one newer than this build's.
  bool migrate(std::string& error);
  // One transaction for all of `batches` (merged first: a key appears once per
  // statement); false leaves the database as it was.
  bool write(const std::vector<const LedgerBatch*>& batches, const std::string& instance, std::string& error);
  bool prune(int64_t minutes_before, int64_t hours_before, std::string& error);
  // Lifetime totals per worker of `instance`.
  bool totals(const std::string& instance, std::map<std::string, LedgerCounts>& out, std::string& error);
  // Points of `step` seconds in [from, to), summed over what the query leaves
  // open; from the hourly rollups when step is a multiple of an hour.
  bool history(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error);
  // Per pool and hour (the reconciliation view).
  bool by_pool_hour(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error);

 private:
  bool upsert_counts(const char* table, const std::string& instance,
                     const std::map<std::tuple<int64_t, std::string, std::string>, LedgerCounts>& rows,
                     std::string& error);
  std::unique_ptr<SqlConnection> c_;
};

}  // namespace hashgate
