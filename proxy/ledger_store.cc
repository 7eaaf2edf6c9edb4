#include "proxy/ledger_store.h"

#include <chrono>
#include <cstdlib>
#include <thread>

namespace hashgate {
namespace {

// The counters of LedgerCounts as columns, in one order for every statement.
struct IntColumn {
  const char* name;
  uint64_t LedgerCounts::*member;
};
struct RealColumn {
  const char* name;
  double LedgerCounts::*member;
};
constexpr IntColumn kInts[] = {
    {"accepted", &LedgerCounts::accepted},
    {"rejected_stale", &LedgerCounts::rejected_stale},
    {"rejected_duplicate", &LedgerCounts::rejected_duplicate},
    {"rejected_low_difficulty", &LedgerCounts::rejected_low_difficulty},
    {"rejected_other", &LedgerCounts::rejected_other},
    {"forwarded", &LedgerCounts::forwarded},
    {"pool_accepted", &LedgerCounts::pool_accepted},
    {"pool_rejected", &LedgerCounts::pool_rejected},
    {"blocks", &LedgerCounts::blocks},
};
constexpr RealColumn kReals[] = {
    {"accepted_difficulty", &LedgerCounts::accepted_difficulty},
    {"forwarded_difficulty", &LedgerCounts::forwarded_difficulty},
    {"pool_accepted_difficulty", &LedgerCounts::pool_accepted_difficulty},
    {"pool_rejected_difficulty", &LedgerCounts::pool_rejected_difficulty},
};
constexpr size_t kColumns = std::size(kInts) + std::size(kReals);
constexpr size_t kRowsPerStatement = 200;

std::string count_columns_ddl(const char* real) {
  std::string s;
  for (const auto& c : kInts) s += std::string(", ") + c.name + " BIGINT NOT NULL DEFAULT 0";
  for (const auto& c : kReals) s += std::string(", ") + c.name + " " + real + " NOT NULL DEFAULT 0";
  return s;
}

std::string sums() {
  std::string s;
  for (const auto& c : kInts) s += std::string(", SUM(") + c.name + ")";
  for (const auto& c : kReals) s += std::string(", SUM(") + c.name + ")";
  return s;
}

// Reads the kColumns cells from `row` starting at `first`.
LedgerCounts counts_from(const std::vector<std::string>& row, size_t first) {
  LedgerCounts c;
  size_t i = first;
  for (const auto& col : kInts) c.*col.member = std::strtoull(row[i++].c_str(), nullptr, 10);
  for (const auto& col : kReals) c.*col.member = std::strtod(row[i++].c_str(), nullptr);
  return c;
}

void push_counts(std::vector<SqlValue>& p, const LedgerCounts& c) {
  for (const auto& col : kInts) p.push_back(SqlValue::integer(int64_t(c.*col.member)));
  for (const auto& col : kReals) p.push_back(SqlValue::real(c.*col.member));
}

std::string placeholders(size_t first, size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += (i ? ",$" : "$") + std::to_string(first + i);
  return s + ")";
}

using CountKey = std::tuple<int64_t, std::string, std::string>;  // (ts, worker, pool)

}  // namespace

bool LedgerStore::migrate(std::string& error) {
  // Two replicas starting at once may race to create the tables (PostgreSQL
  // then refuses one): the loser tries again and finds them.
  for (int attempt = 0;; ++attempt) {
    SqlRows rows;
    bool ok = c_->exec("CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)", {}, error) &&
              c_->query("SELECT value FROM ledger_meta WHERE key = 'schema_version'", {}, rows, error);
    if (ok) {
      const int version = rows.empty() ? 0 : std::atoi(rows[0][0].c_str());
      if (version > kSchemaVersion) {
        error = "the ledger's schema is version " + std::to_string(version) + ", newer than this hashgate's (" +
                std::to_string(kSchemaVersion) + "): use a newer hashgate or another database";
        return false;
      }
      if (version == kSchemaVersion) return true;
      const std::string counts = count_columns_ddl(c_->real_type());
      const std::string real = c_->real_type();
      // Version 0 -> 1: the first schema. Later versions add steps here.
      const std::string ddl[] = {
          "CREATE TABLE IF NOT EXISTS worker_minutes (instance TEXT NOT NULL, ts BIGINT NOT NULL, worker TEXT NOT "
          "NULL, pool TEXT NOT NULL" + counts + ", PRIMARY KEY (instance, ts, worker, pool))",
          "CREATE TABLE IF NOT EXISTS worker_hours (instance TEXT NOT NULL, ts BIGINT NOT NULL, worker TEXT NOT "
          "NULL, pool TEXT NOT NULL" + counts + ", PRIMARY KEY (instance, ts, worker, pool))",
          "CREATE TABLE IF NOT EXISTS worker_totals (instance TEXT NOT NULL, worker TEXT NOT NULL" + counts +
              ", PRIMARY KEY (instance, worker))",
          "CREATE TABLE IF NOT EXISTS pool_minutes (instance TEXT NOT NULL, ts BIGINT NOT NULL, pool TEXT NOT NULL, "
          "connected_seconds " + real + " NOT NULL DEFAULT 0, failovers BIGINT NOT NULL DEFAULT 0, PRIMARY KEY "
          "(instance, ts, pool))",
          "CREATE TABLE IF NOT EXISTS pool_hours (instance TEXT NOT NULL, ts BIGINT NOT NULL, pool TEXT NOT NULL, "
          "connected_seconds " + real + " NOT NULL DEFAULT 0, failovers BIGINT NOT NULL DEFAULT 0, PRIMARY KEY "
          "(instance, ts, pool))",
          "CREATE TABLE IF NOT EXISTS blocks (instance TEXT NOT NULL, hash TEXT NOT NULL, time " + real +
              " NOT NULL, worker TEXT NOT NULL, pool TEXT NOT NULL, job TEXT NOT NULL, header TEXT NOT NULL, "
              "verdict TEXT NOT NULL, PRIMARY KEY (instance, hash))",
          "CREATE INDEX IF NOT EXISTS worker_minutes_ts ON worker_minutes (ts)",
          "CREATE INDEX IF NOT EXISTS worker_hours_ts ON worker_hours (ts)",
      };
      ok = c_->exec("BEGIN", {}, error);
      for (const std::string& s : ddl) ok = ok && c_->exec(s, {}, error);
      ok = ok && c_->exec("INSERT INTO ledger_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO "
                          "UPDATE SET value = excluded.value",
                          {SqlValue::str(std::to_string(kSchemaVersion))}, error);
      ok = ok && c_->exec("COMMIT", {}, error);
      if (ok) return true;
      std::string ignored;
      c_->exec("ROLLBACK", {}, ignored);
    }
    if (attempt >= 3) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

bool LedgerStore::upsert_counts(const char* table, const std::string& instance,
                                const std::map<CountKey, LedgerCounts>& rows, std::string& error) {
  const bool totals = std::string(table) == "worker_totals";
  const std::string keys = totals ? "instance, worker" : "instance, ts, worker, pool";
  const size_t nkeys = totals ? 2 : 4;
  std::string cols = keys, update;
  for (const auto& c : kInts) {
    cols += std::string(", ") + c.name;
    update += std::string(update.empty() ? "" : ", ") + c.name + " = " + table + "." + c.name + " + excluded." + c.name;
  }
  for (const auto& c : kReals) {
    cols += std::string(", ") + c.name;
    update += std::string(", ") + c.name + " = " + table + "." + c.name + " + excluded." + c.name;
  }
  auto it = rows.begin();
  while (it != rows.end()) {
    std::string sql = std::string("INSERT INTO ") + table + " (" + cols + ") VALUES ";
    std::vector<SqlValue> p;
    for (size_t n = 0; n < kRowsPerStatement && it != rows.end(); ++n, ++it) {
      sql += (n ? "," : "") + placeholders(p.size() + 1, nkeys + kColumns);
      const auto& [ts, worker, pool] = it->first;
      p.push_back(SqlValue::str(instance));
      if (!totals) p.push_back(SqlValue::integer(ts));
      p.push_back(SqlValue::str(worker));
      if (!totals) p.push_back(SqlValue::str(pool));
      push_counts(p, it->second);
    }
    sql += " ON CONFLICT (" + keys + ") DO UPDATE SET " + update;
    if (!c_->exec(sql, p, error)) return false;
  }
  return true;
}

bool LedgerStore::write(const std::vector<const LedgerBatch*>& batches, const std::string& instance,
                        std::string& error) {
  // Merged first: after an outage several batches of the same minute are
  // queued, and one statement may not update a row twice.
  std::map<CountKey, LedgerCounts> minutes, hours, totals;
  std::map<std::pair<int64_t, std::string>, std::pair<double, uint64_t>> pool_minutes, pool_hours;
  for (const LedgerBatch* b : batches) {
    const int64_t hour = b->minute / 3600 * 3600;
    for (const auto& r : b->workers) {
      minutes[{b->minute, r.worker, r.pool}].add(r.c);
      hours[{hour, r.worker, r.pool}].add(r.c);
      totals[{0, r.worker, {}}].add(r.c);
    }
    for (const auto& r : b->pools)
      for (auto* m : {&pool_minutes[{b->minute, r.pool}], &pool_hours[{hour, r.pool}]}) {
        m->first += r.connected_seconds;
        m->second += r.failovers;
      }
  }
  bool ok = c_->exec("BEGIN", {}, error) && upsert_counts("worker_minutes", instance, minutes, error) &&
            upsert_counts("worker_hours", instance, hours, error) &&
            upsert_counts("worker_totals", instance, totals, error);
  for (auto [table, rows] : {std::pair{"pool_minutes", &pool_minutes}, std::pair{"pool_hours", &pool_hours}})
    for (const auto& [key, v] : *rows) {
      if (!ok) break;
      ok = c_->exec(std::string("INSERT INTO ") + table +
                        " (instance, ts, pool, connected_seconds, failovers) VALUES ($1, $2, $3, $4, $5) ON CONFLICT "
                        "(instance, ts, pool) DO UPDATE SET connected_seconds = " + table +
                        ".connected_seconds + excluded.connected_seconds, failovers = " + table +
                        ".failovers + excluded.failovers",
                    {SqlValue::str(instance), SqlValue::integer(key.first), SqlValue::str(key.second),
                     SqlValue::real(v.first), SqlValue::integer(int64_t(v.second))},
                    error);
    }
  for (const LedgerBatch* b : batches) {
    for (const LedgerBlock& k : b->blocks) {
      if (!ok) break;
      ok = c_->exec("INSERT INTO blocks (instance, hash, time, worker, pool, job, header, verdict) VALUES ($1, $2, $3, "
                    "$4, $5, $6, $7, $8) ON CONFLICT (instance, hash) DO NOTHING",
                    {SqlValue::str(instance), SqlValue::str(k.hash), SqlValue::real(k.time), SqlValue::str(k.worker),
                     SqlValue::str(k.pool), SqlValue::str(k.job), SqlValue::str(k.header), SqlValue::str(k.verdict)},
                    error);
    }
    for (const auto& [hash, verdict] : b->verdicts) {
      if (!ok) break;
      ok = c_->exec("UPDATE blocks SET verdict = $1 WHERE instance = $2 AND hash = $3",
                    {SqlValue::str(verdict), SqlValue::str(instance), SqlValue::str(hash)}, error);
    }
  }
  ok = ok && c_->exec("COMMIT", {}, error);
  if (!ok) {
    std::string ignored;
    c_->exec("ROLLBACK", {}, ignored);
  }
  return ok;
}

bool LedgerStore::prune(int64_t minutes_before, int64_t hours_before, std::string& error) {
  return c_->exec("DELETE FROM worker_minutes WHERE ts < $1", {SqlValue::integer(minutes_before)}, error) &&
         c_->exec("DELETE FROM pool_minutes WHERE ts < $1", {SqlValue::integer(minutes_before)}, error) &&
         c_->exec("DELETE FROM worker_hours WHERE ts < $1", {SqlValue::integer(hours_before)}, error) &&
         c_->exec("DELETE FROM pool_hours WHERE ts < $1", {SqlValue::integer(hours_before)}, error);
}

bool LedgerStore::totals(const std::string& instance, std::map<std::string, LedgerCounts>& out, std::string& error) {
  SqlRows rows;
  if (!c_->query("SELECT worker" + sums() + " FROM worker_totals WHERE instance = $1 GROUP BY worker",
                 {SqlValue::str(instance)}, rows, error))
    return false;
  for (const auto& r : rows) out[r[0]] = counts_from(r, 1);
  return true;
}

namespace {
// The WHERE clause of a history query and its parameters.
std::string where(const HistoryQuery& q, std::vector<SqlValue>& p) {
  std::string w = " WHERE ts >= " + std::to_string(q.from) + " AND ts < " + std::to_string(q.to);
  for (auto [col, v] : {std::pair{"instance", &q.instance}, std::pair{"worker", &q.worker}, std::pair{"pool", &q.pool}})
    if (!v->empty()) {
      p.push_back(SqlValue::str(*v));
      w += std::string(" AND ") + col + " = $" + std::to_string(p.size());
    }
  return w;
}
}  // namespace

bool LedgerStore::history(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error) {
  std::vector<SqlValue> p;
  const std::string step = std::to_string(q.step);
  const char* table = q.step % 3600 == 0 ? "worker_hours" : "worker_minutes";
  SqlRows rows;
  if (!c_->query("SELECT (ts / " + step + ") * " + step + " AS t" + sums() + " FROM " + table + where(q, p) +
                     " GROUP BY t ORDER BY t",
                 p, rows, error))
    return false;
  for (const auto& r : rows) out.push_back(HistoryPoint{std::strtoll(r[0].c_str(), nullptr, 10), {}, counts_from(r, 1)});
  return true;
}

bool LedgerStore::by_pool_hour(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error) {
  std::vector<SqlValue> p;
  SqlRows rows;
  if (!c_->query("SELECT ts, pool" + sums() + " FROM worker_hours" + where(q, p) + " GROUP BY ts, pool ORDER BY ts, pool",
                 p, rows, error))
    return false;
  for (const auto& r : rows) out.push_back(HistoryPoint{std::strtoll(r[0].c_str(), nullptr, 10), r[1], counts_from(r, 2)});
  return true;
}

}  // namespace hashgate
