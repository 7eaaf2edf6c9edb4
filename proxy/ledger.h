// The share ledger: what each worker did on each pool, per minute and per
// hour, kept in a database so that a restart forgets nothing. The loop
// counts into LedgerBuckets (plain values in storage reserved ahead: no
// allocation, lock or syscall on the share path); once per flush interval it
// turns them into a LedgerBatch and hands it to the writer thread through a
// bounded queue. Only the writer and the admin threads touch the database.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "conf/config.h"
#include "proxy/ledger_buckets.h"
#include "proxy/ledger_store.h"

namespace hashgate {

// What /metrics shows of the ledger.
struct LedgerStats {
  uint64_t queue_rows = 0, queue_limit = 0;
  uint64_t written_rows = 0, dropped_rows = 0, write_errors = 0;
  bool healthy = true;  // the last write worked
};

// The admin threads' door to the database: its own connection, one request
// at a time.
class LedgerReader {
 public:
  LedgerReader(std::unique_ptr<LedgerStore> store, std::string instance)
      : store_(std::move(store)), instance_(std::move(instance)) {}
  const std::string& instance() const { return instance_; }
  bool totals(std::map<std::string, LedgerCounts>& out, std::string& error);
  bool history(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error);
  bool by_pool_hour(const HistoryQuery& q, std::vector<HistoryPoint>& out, std::string& error);

 private:
  std::mutex mu_;
  std::unique_ptr<LedgerStore> store_;
  std::string instance_;
};

class Ledger {
 public:
  // Opens the backend, migrates the schema and starts the writer; null with
  // `error` when the database cannot be used.
  static std::unique_ptr<Ledger> open(const conf::Ledger& cfg, std::string& error);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Loop side.
  LedgerBuckets& buckets() { return buckets_; }
  bool due(double unix_now) const;  // a flush interval has passed, or the minute turned
  // Hands a batch to the writer (or drops it, counted and logged, when the
  // queue is full). `batch.minute` is set here.
  void submit(LedgerBatch batch, double unix_now);
  // Stop: waits (at most `seconds`) for the queue to be written.
  void drain(double seconds);

  LedgerStats stats() const;
  std::shared_ptr<LedgerReader> reader() const { return reader_; }
  const std::string& instance() const { return instance_; }
  double flush_seconds() const { return cfg_.flush_seconds; }

 private:
  Ledger(conf::Ledger cfg, std::string instance, std::unique_ptr<LedgerStore> writer,
         std::shared_ptr<LedgerReader> reader);
  void run();

  conf::Ledger cfg_;
  std::string instance_;
  LedgerBuckets buckets_;
  double last_submit_ = 0;
  int64_t open_minute_ = 0;

  std::unique_ptr<LedgerStore> store_;  // the writer thread's
  std::shared_ptr<LedgerReader> reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<LedgerBatch> queue_;
  bool stop_ = false;
  bool writing_ = false;
  std::atomic<uint64_t> queue_rows_{0}, written_rows_{0}, dropped_rows_{0}, write_errors_{0};
  std::atomic<bool> healthy_{true};
  double last_drop_log_ = 0;
  std::thread thread_;
};

}  // namespace hashgate
