// The gateway's side of the share ledger: what it counts and when it hands
// the counts over. Kept out of gateway.cc, which only calls in.
#include <chrono>

#include "hashing/bytes.h"
#include "hashing/header.h"
#include "hashing/sha256.h"
#include "proxy/gateway.h"
#include "proxy/log.h"

namespace hashgate {
namespace {
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

bool Gateway::open_ledger(std::string& error) {
  pool_failovers_.assign(pools_.size(), 0);
  pool_failovers_flushed_.assign(pools_.size(), 0);
  if (cfg_.ledger.backend == "off") return true;
  ledger_ = Ledger::open(cfg_.ledger, error);
  if (!ledger_) {
    error = "ledger (" + cfg_.ledger.backend + "): " + error;
    return false;
  }
  ledger_flushed_at_ = wall_now();
  ledger_workers_changed();
  log::info("ledger_open")
      .kv("backend", cfg_.ledger.backend)
      .kv("instance", ledger_->instance())
      .kv("path", cfg_.ledger.backend == "sqlite" ? cfg_.ledger.path : std::string("-"))
      .kv("flush_seconds", cfg_.ledger.flush_seconds);
  return true;
}

void Gateway::ledger_workers_changed() {
  if (ledger_) ledger_->buckets().reserve(worker_count_, active_workers_);
}

void Gateway::ledger_block(uint32_t worker, const ShareWork& work) {
  if (!ledger_) return;
  LedgerBlock b;
  b.time = wall_now();
  b.worker = worker_name(worker);
  b.pool = cfg_.pools[link_pool(work.job->link_id)].name;
  b.job = work.job->params.job_id;
  b.header = hex_encode(std::span<const uint8_t>(work.header.data(), work.header.size()));
  b.hash = hex_reversed(sha256d_header(work.header.data()));
  // forward_share() gives the share the next token: its answer names the row.
  ledger_block_tokens_[next_token_] = b.hash;
  ledger_extra_.blocks.push_back(std::move(b));
}

void Gateway::ledger_verdict(uint64_t token, bool accepted) {
  auto it = ledger_block_tokens_.find(token);
  if (it == ledger_block_tokens_.end()) return;
  ledger_extra_.verdicts.emplace_back(it->second, accepted ? "accepted" : "rejected");
  ledger_block_tokens_.erase(it);
}

void Gateway::flush_ledger() {
  if (!ledger_) return;
  const double t = wall_now();
  LedgerBatch b = std::move(ledger_extra_);
  ledger_extra_ = {};
  ledger_->buckets().take(ledger_rows_);
  b.workers.reserve(ledger_rows_.size());
  // A reload may have changed the pools since a row was counted: a pool
  // index past the list is counted under the last one's name at worst.
  for (const LedgerBuckets::Row& r : ledger_rows_)
    b.workers.push_back(LedgerBatch::WorkerRow{worker_name(r.worker),
                                               cfg_.pools[std::min<size_t>(r.pool, cfg_.pools.size() - 1)].name, r.c});
  pool_failovers_.resize(pools_.size(), 0);
  pool_failovers_flushed_.resize(pools_.size(), 0);
  const double span = std::max(0.0, t - ledger_flushed_at_);
  for (size_t p = 0; p < pools_.size(); ++p) {
    LedgerBatch::PoolRow row{cfg_.pools[p].name, ready_link(p, false) ? span : 0.0,
                             pool_failovers_[p] - pool_failovers_flushed_[p]};
    pool_failovers_flushed_[p] = pool_failovers_[p];
    if (row.connected_seconds > 0 || row.failovers > 0) b.pools.push_back(std::move(row));
  }
  ledger_flushed_at_ = t;
  ledger_->submit(std::move(b), t);
  ledger_workers_changed();
}

void Gateway::ledger_snapshot(Snapshot& s) const {
  if (!ledger_) return;
  const LedgerStats st = ledger_->stats();
  s.ledger = LedgerSnapshot{true,           cfg_.ledger.backend, ledger_->instance(), st.queue_rows,
                            st.queue_limit, st.written_rows,     st.dropped_rows,     st.write_errors,
                            st.healthy};
  s.ledger_reader = ledger_->reader();
}

}  // namespace hashgate
