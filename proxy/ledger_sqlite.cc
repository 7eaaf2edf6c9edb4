// The embedded backend: one SQLite file in WAL mode, so that the admin
// threads' reads never wait for the writer and a crash loses at most the
// transaction being written.
#include <sqlite3.h>

#include <unordered_map>

#include "proxy/ledger_store.h"

namespace hashgate {
namespace {

class SqliteConnection : public SqlConnection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    sqlite3_close(db_);
  }

  bool exec(const std::string& sql, const std::vector<SqlValue>& params, std::string& error) override {
    SqlRows ignored;
    return run(sql, params, nullptr, error);
  }
  bool query(const std::string& sql, const std::vector<SqlValue>& params, SqlRows& rows, std::string& error) override {
    return run(sql, params, &rows, error);
  }
  const char* real_type() const override { return "DOUBLE PRECISION"; }

 private:
  // Statements are kept prepared by their text: the writer runs the same few
  // every second.
  sqlite3_stmt* prepare(const std::string& sql, std::string& error) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), int(sql.size()), &st, nullptr) != SQLITE_OK) {
      error = std::string("sqlite: ") + sqlite3_errmsg(db_);
      return nullptr;
    }
    if (statements_.size() > 64) {  // history queries vary: keep the cache small
      for (auto& [s, old] : statements_) sqlite3_finalize(old);
      statements_.clear();
    }
    statements_.emplace(sql, st);
    return st;
  }

  bool run(const std::string& sql, const std::vector<SqlValue>& params, SqlRows* rows, std::string& error) {
    sqlite3_stmt* st = prepare(sql, error);
    if (!st) return false;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      const int at = int(i) + 1;
      if (v.kind == SqlValue::kInt) sqlite3_bind_int64(st, at, v.i);
      else if (v.kind == SqlValue::kReal) sqlite3_bind_double(st, at, v.d);
      else sqlite3_bind_text(st, at, v.text.data(), int(v.text.size()), SQLITE_TRANSIENT);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (!rows) continue;
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const unsigned char* t = sqlite3_column_text(st, c);
        row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
      }
      rows->push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
      error = std::string("sqlite: ") + sqlite3_errmsg(db_);
      sqlite3_reset(st);
      return false;
    }
    sqlite3_reset(st);
    return true;
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

std::unique_ptr<SqlConnection> open_sqlite(const std::string& path, std::string& error) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    error = "cannot open the ledger file '" + path + "': " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  auto c = std::make_unique<SqliteConnection>(db);
  // WAL: readers do not block the writer. synchronous=NORMAL: a commit
  // survives a crash of hashgate (only a power loss can take the last one).
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"}) {
    char* msg = nullptr;
    if (sqlite3_exec(db, pragma, nullptr, nullptr, &msg) != SQLITE_OK) {
      error = "ledger file '" + path + "': " + (msg ? msg : "cannot set " + std::string(pragma));
      sqlite3_free(msg);
      return nullptr;
    }
  }
  return c;
}

}  // namespace hashgate
