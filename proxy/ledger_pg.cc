// The fleet backend: PostgreSQL through libpq. A lost connection is opened
// again on the next statement; until then the writer keeps its rows queued.
#include <libpq-fe.h>

#include <cstdio>

#include "proxy/ledger_store.h"

namespace hashgate {
namespace {

class PgConnection : public SqlConnection {
 public:
  explicit PgConnection(std::string url) : url_(std::move(url)) {}
  ~PgConnection() override {
    if (conn_) PQfinish(conn_);
  }

  bool connect(std::string& error) {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return true;
    if (conn_) PQfinish(conn_);
    // A bound on the connect (the URL's own connect_timeout, if it has one,
    // comes later and wins): an unreachable host must not hold the writer or
    // an admin thread for the kernel's TCP timeout.
    const char* keys[] = {"connect_timeout", "dbname", nullptr};
    const char* values[] = {"10", url_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keys, values, 1);
    if (PQstatus(conn_) != CONNECTION_OK) {
      error = std::string("postgres: ") + PQerrorMessage(conn_);
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      PQfinish(conn_);
      conn_ = nullptr;
      return false;
    }
    PQclear(PQexec(conn_, "SET client_min_messages = warning"));
    return true;
  }

  bool exec(const std::string& sql, const std::vector<SqlValue>& params, std::string& error) override {
    return run(sql, params, nullptr, error);
  }
  bool query(const std::string& sql, const std::vector<SqlValue>& params, SqlRows& rows, std::string& error) override {
    return run(sql, params, &rows, error);
  }
  const char* real_type() const override { return "DOUBLE PRECISION"; }

 private:
  bool run(const std::string& sql, const std::vector<SqlValue>& params, SqlRows* rows, std::string& error) {
    // A statement after a broken connection connects again, except inside a
    // transaction (the ROLLBACK that follows ends it anyway).
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      in_transaction_ = false;
      if (sql == "ROLLBACK") return true;
      if (!connect(error)) return false;
    }
    // libpq learns that the server went away (a restart, a failover) only
    // from the next statement: outside a transaction that statement is tried
    // once more on a new connection, so the first read after an outage works.
    if (run_once(sql, params, rows, error)) return true;
    if (in_transaction_ || PQstatus(conn_) == CONNECTION_OK) return false;
    std::string again;
    if (!connect(again)) return false;
    return run_once(sql, params, rows, error);
  }

  bool run_once(const std::string& sql, const std::vector<SqlValue>& params, SqlRows* rows, std::string& error) {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (v.kind == SqlValue::kInt) {
        text[i] = std::to_string(v.i);
      } else if (v.kind == SqlValue::kReal) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.17g", v.d);
        text[i] = buf;
      } else {
        text[i] = v.text;
      }
      values[i] = text[i].c_str();
    }
    PGresult* r = PQexecParams(conn_, sql.c_str(), int(params.size()), nullptr, values.data(), nullptr, nullptr, 0);
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      error = std::string("postgres: ") + (r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      PQclear(r);
      if (PQstatus(conn_) != CONNECTION_OK) in_transaction_ = false;
      return false;
    }
    if (sql == "BEGIN") in_transaction_ = true;
    else if (sql == "COMMIT" || sql == "ROLLBACK") in_transaction_ = false;
    if (rows)
      for (int i = 0; i < PQntuples(r); ++i) {
        std::vector<std::string> row;
        for (int c = 0; c < PQnfields(r); ++c) row.emplace_back(PQgetvalue(r, i, c));
        rows->push_back(std::move(row));
      }
    PQclear(r);
    return true;
  }

  std::string url_;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
};

}  // namespace

std::unique_ptr<SqlConnection> open_postgres(const std::string& url, std::string& error) {
  auto c = std::make_unique<PgConnection>(url);
  if (!c->connect(error)) return nullptr;
  return c;
}

}  // namespace hashgate
