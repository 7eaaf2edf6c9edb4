#include "proxy/ledger.h"

#include <unistd.h>

#include <chrono>
#include <cmath>

#include "proxy/clock.h"
#include "proxy/log.h"

namespace hashgate {

bool LedgerReader::totals(std::map<std::string, LedgerCounts>& out, std::string& error) {
  std::lock_guard<std::mutex> g(mu_);
  return store_->totals(instance_, out, error);
}

bool LedgerReader::history(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error) {
  std::lock_guard<std::mutex> g(mu_);
  return store_->history(q, out, error);
}

bool LedgerReader::by_pool_hour(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error) {
  std::lock_guard<std::mutex> g(mu_);
  return store_->by_pool_hour(q, out, error);
}

namespace {

std::unique_ptr<LedgerStore> open_store(const conf::Ledger& cfg, std::string& error) {
  std::unique_ptr<SqlConnection> c;
  if (cfg.backend == "sqlite") c = open_sqlite(cfg.path, error);
  else if (cfg.backend == "postgres") c = open_postgres(cfg.url, error);
  else error = "ledger backend is off";
  return c ? std::make_unique<LedgerStore>(std::move(c)) : nullptr;
}

}  // namespace

std::unique_ptr<Ledger> Ledger::open(const conf::Ledger& cfg, std::string& error) {
  std::string instance = cfg.instance;
  if (instance.empty()) {
    char host[256] = {};
    instance = gethostname(host, sizeof(host) - 1) == 0 && host[0] ? host : "hashgate";
  }
  std::unique_ptr<LedgerStore> writer = open_store(cfg, error);
  if (!writer) return nullptr;
  if (!writer->migrate(error)) return nullptr;
  std::unique_ptr<LedgerStore> reading = open_store(cfg, error);
  if (!reading) return nullptr;
  auto reader = std::make_shared<LedgerReader>(std::move(reading), instance);
  return std::unique_ptr<Ledger>(new Ledger(cfg, instance, std::move(writer), std::move(reader)));
}

Ledger::Ledger(conf::Ledger cfg, std::string instance, std::unique_ptr<LedgerStore> writer,
               std::shared_ptr<LedgerReader> reader)
    : cfg_(std::move(cfg)), instance_(std::move(instance)), store_(std::move(writer)), reader_(std::move(reader)) {
  thread_ = std::thread([this] { run(); });
}

Ledger::~Ledger() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (queue_rows_ > 0)
    log::warn("ledger_rows_lost").kv("rows", uint64_t(queue_rows_)).kv("reason", "stopped with the database unavailable");
}

bool Ledger::due(double unix_now) const {
  return unix_now - last_submit_ >= cfg_.flush_seconds || int64_t(unix_now / 60) * 60 != open_minute_;
}

void Ledger::submit(LedgerBatch batch, double unix_now) {
  // The rows were counted since the last submit: they belong to the minute
  // that was open then (a flush at each turn of the minute keeps them apart).
  batch.minute = open_minute_ ? open_minute_ : int64_t(unix_now / 60) * 60;
  last_submit_ = unix_now;
  open_minute_ = int64_t(unix_now / 60) * 60;
  const size_t rows = batch.rows();
  if (rows == 0) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (queue_rows_ + rows > cfg_.queue_rows) {
      dropped_rows_ += rows;
      if (unix_now - last_drop_log_ >= 10) {
        last_drop_log_ = unix_now;
        log::error("ledger_rows_dropped")
            .kv("rows", uint64_t(rows))
            .kv("dropped_total", uint64_t(dropped_rows_))
            .kv("queue_rows", uint64_t(queue_rows_))
            .kv("limit", cfg_.queue_rows)
            .kv("reason", "the database is behind; raise ledger.queue_rows or fix the database");
      }
      return;
    }
    queue_rows_ += rows;
    queue_.push_back(std::move(batch));
  }
  cv_.notify_one();
}

void Ledger::drain(double seconds) {
  std::unique_lock<std::mutex> g(mu_);
  idle_cv_.wait_for(g, std::chrono::duration<double>(seconds), [&] { return queue_.empty() && !writing_; });
}

LedgerStats Ledger::stats() const {
  LedgerStats s;
  s.queue_rows = queue_rows_;
  s.queue_limit = cfg_.queue_rows;
  s.written_rows = written_rows_;
  s.dropped_rows = dropped_rows_;
  s.write_errors = write_errors_;
  s.healthy = healthy_;
  return s;
}

void Ledger::run() {
  double last_prune = 0, last_error_log = 0;
  int tries_after_stop = 0;
  const auto kRetry = std::chrono::milliseconds(500);
  std::unique_lock<std::mutex> g(mu_);
  for (;;) {
    cv_.wait_for(g, std::chrono::seconds(30), [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) break;
    // Everything queued goes in one transaction; batches stay queued (and
    // counted) until it commits, so an outage only delays them.
    std::vector<const LedgerBatch*> batches;
    size_t rows = 0;
    for (const LedgerBatch& b : queue_) {
      batches.push_back(&b);
      rows += b.rows();
    }
    writing_ = !batches.empty();
    g.unlock();
    std::string error;
    bool ok = batches.empty() || store_->write(batches, instance_, error);
    const double t = unix_now();
    if (ok && t - last_prune >= 60) {
      last_prune = t;
      std::string perr;
      const auto minute_cut = int64_t(t - cfg_.retention.minute_days * 86400);
      const auto hour_cut = int64_t(t - cfg_.retention.hour_days * 86400);
      if (!store_->prune(minute_cut, hour_cut, perr)) log::warn("ledger_prune_failed").kv("error", perr);
    }
    g.lock();
    writing_ = false;
    if (ok) {
      queue_.erase(queue_.begin(), queue_.begin() + std::ptrdiff_t(batches.size()));
      queue_rows_ -= rows;
      written_rows_ += rows;
      if (!healthy_) log::info("ledger_recovered").kv("rows", uint64_t(rows));
      healthy_ = true;
      idle_cv_.notify_all();
      continue;
    }
    ++write_errors_;
    healthy_ = false;
    if (t - last_error_log >= 10) {
      last_error_log = t;
      log::warn("ledger_write_failed").kv("error", error).kv("queue_rows", uint64_t(queue_rows_)).kv("retry", "0.5 s");
    }
    if (stop_) {
      // Stopping with the database away: a few more tries, then what is
      // left is reported by the destructor.
      if (++tries_after_stop > 6) break;
    }
    cv_.wait_for(g, kRetry, [&] { return false; });
  }
  idle_cv_.notify_all();
}

}  // namespace hashgate
