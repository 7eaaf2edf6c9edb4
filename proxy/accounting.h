// Accounting: who mined what. The worker table (a row per worker name, ids
// reused after rows age out, a shared row past limits.max_workers), the user
// agents seen, the farm's hashrate, and the share ledger's buckets and
// writer. Owned by the gateway and used on the loop only; it knows nothing
// of sockets, sessions or pools beyond a pool's index and name, and asks the
// routing side one question through `pool_up` (is that pool connected, for
// the ledger's connected seconds).
//
// Rows come and go (issue 17.2): aggregate mode accepts any name, so a row
// per distinct name kept forever would let one peer grow memory without
// bound. A row whose last session left limits.worker_idle_seconds ago is
// freed and its id reused (its totals are the ledger's to keep).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "protocol/downstream_session.h"
#include "proxy/ledger.h"
#include "proxy/snapshot.h"

namespace hashgate {

class Accounting {
 public:
  // `cfg` is the gateway's live config (read at each use: a reload changes
  // the limits and the pool names); `pool_up(i)`: pool i has a usable connection.
  Accounting(const conf::Config& cfg, std::function<bool(size_t)> pool_up);
  Accounting(const Accounting&) = delete;
  Accounting& operator=(const Accounting&) = delete;

  // ---- the worker table
  // The row of `name`, made if new (or the shared over-limit row).
  uint32_t worker_id(const std::string& name, double now);
  std::optional<uint32_t> find(std::string_view name) const;
  // A row to count into: marks its chunk for the next snapshot.
  WorkerStats& stats(uint32_t id) {
    chunk_changed_[id / WorkerTable::kChunk] = true;
    return (*chunks_[id / WorkerTable::kChunk])[id % WorkerTable::kChunk];
  }
  const WorkerStats& row(uint32_t id) const {  // reads: marks nothing
    return (*chunks_[id / WorkerTable::kChunk])[id % WorkerTable::kChunk];
  }
  const std::string& name(uint32_t id) const {
    return (*name_chunks_[id / WorkerTable::kChunk])[id % WorkerTable::kChunk];
  }
  // A session authorized worker `id` with user agent `agent`; its row.
  WorkerStats& join(uint32_t id, const std::string& agent);
  // A session of worker `id` closed; `settled`: where its vardiff settled.
  void leave(uint32_t id, std::optional<double> settled, double now);
  // Frees the rows idle past limits.worker_idle_seconds (each ten seconds).
  void age(double now, double unix_now);

  // ---- shares
  // A share its session refused (stale, duplicate, malformed, ...), with the
  // ledger row it counts into (null: ledger off).
  void rejected(uint32_t worker, LedgerCounts* lc, ErrorCode code);
  // An accepted share of `difficulty` for `worker`; counts into the farm's rate too.
  void accepted(WorkerStats& st, double difficulty, bool block, double now, double unix_now);

  // ---- the share ledger (null rows and no-ops while it is off)
  bool open_ledger(std::string& error, double unix_now);
  bool ledger_on() const { return ledger_ != nullptr; }
  LedgerCounts* ledger_row(uint32_t worker, size_t pool) {
    return ledger_ ? &ledger_->buckets().at(worker, uint32_t(pool)) : nullptr;
  }
  // A block candidate: a ledger row now, its verdict when the pool answers
  // the forward with `token`.
  void ledger_block(uint32_t worker, size_t pool, const ShareWork& work, uint64_t token, double unix_now);
  void ledger_verdict(uint64_t token, bool accepted);
  void count_failover(size_t pool) {
    if (pool < pool_failovers_.size()) ++pool_failovers_[pool];
  }
  bool ledger_due(double unix_now) const { return ledger_ && ledger_->due(unix_now); }
  void flush_ledger(double unix_now);
  // Stop: the last counts out, and the writer's queue written (at most `seconds`).
  void close_ledger(double seconds, double unix_now);

  // Fills the snapshot's worker table, share totals, agents, hashrate and ledger state.
  void fill(Snapshot& s, double now);
  // A worker_stats line per worker (with its lifetime totals when the ledger is on).
  void log_summary();

 private:
  uint32_t new_row(const std::string& name, double now);
  // The names chunk of `chunk`, copied first when a snapshot shares it (the
  // index's keys are moved to the copy).
  WorkerTable::Names& writable_names(size_t chunk);
  uint16_t agent_id(const std::string& agent);
  void reserve_ledger_rows();

  const conf::Config& cfg_;
  std::function<bool(size_t)> pool_up_;

  // Workers by id, in the order first seen: counters in chunks, each marked
  // when a row of it changes so that the snapshot copies only those
  // (WorkerTable); names stored once, in chunks that snapshots share and
  // that never move (the index's keys point into them).
  std::unordered_map<std::string_view, uint32_t> ids_;
  std::vector<std::unique_ptr<WorkerTable::Chunk>> chunks_;
  std::vector<bool> chunk_changed_;
  std::vector<std::shared_ptr<WorkerTable::Names>> name_chunks_;
  uint32_t count_ = 0;
  WorkerTable published_;
  std::vector<uint32_t> free_ids_;
  std::vector<double> idle_since_;  // by id: when its last session left
  uint32_t live_ = 0;
  uint32_t overflow_ = UINT32_MAX;  // the shared row past the cap
  uint64_t aged_out_ = 0, over_limit_ = 0;
  double over_limit_logged_ = -1e9;
  uint64_t active_ = 0;  // workers with a session: the ledger reserves rows for them

  std::unordered_map<std::string, uint16_t> agent_ids_;  // user agents seen, interned
  std::shared_ptr<const std::vector<std::string>> published_agents_;
  RateEstimator total_rate_;

  std::unique_ptr<Ledger> ledger_;
  std::vector<LedgerBuckets::Row> ledger_rows_;  // reused each flush
  LedgerBatch ledger_extra_;                     // block rows and verdicts since the last flush
  std::map<uint64_t, std::string> block_tokens_;  // forwarded blocks: token -> hash
  std::vector<uint64_t> pool_failovers_, pool_failovers_flushed_;  // miners moved off each pool
  double ledger_flushed_at_ = 0;
};

}  // namespace hashgate
