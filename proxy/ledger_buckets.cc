#include "proxy/ledger_buckets.h"

#include <algorithm>

namespace hashgate {

void LedgerCounts::add(const LedgerCounts& o) {
  accepted += o.accepted;
  rejected_stale += o.rejected_stale;
  rejected_duplicate += o.rejected_duplicate;
  rejected_low_difficulty += o.rejected_low_difficulty;
  rejected_other += o.rejected_other;
  forwarded += o.forwarded;
  pool_accepted += o.pool_accepted;
  pool_rejected += o.pool_rejected;
  blocks += o.blocks;
  accepted_difficulty += o.accepted_difficulty;
  forwarded_difficulty += o.forwarded_difficulty;
  pool_accepted_difficulty += o.pool_accepted_difficulty;
  pool_rejected_difficulty += o.pool_rejected_difficulty;
}

LedgerCounts& LedgerBuckets::at(uint32_t worker, uint32_t pool) {
  // Worker ids come from the gateway's table, which calls reserve() when it
  // adds one; a larger id here would be a bug, but growing is still correct.
  if (worker >= head_.size()) head_.resize(size_t(worker) * 2 + 64, 0);
  uint32_t* link = &head_[worker];
  while (*link) {
    Row& r = rows_[*link - 1];
    if (r.pool == pool) return r.c;
    link = &r.next;
  }
  rows_.push_back(Row{worker, pool, 0, {}});
  *link = uint32_t(rows_.size());
  return rows_.back().c;
}

void LedgerBuckets::reserve(size_t workers, size_t active_workers) {
  if (head_.size() < workers) head_.resize(std::max(workers, head_.size() * 2), 0);
  const size_t want = rows_.size() + 2 * active_workers + 256;
  if (rows_.capacity() < want) rows_.reserve(want);
}

void LedgerBuckets::take(std::vector<Row>& out) {
  for (const Row& r : rows_) head_[r.worker] = 0;
  out.clear();
  out.swap(rows_);
  // `rows_` now holds the storage `out` had; keep the larger of the two here.
  if (rows_.capacity() < out.capacity()) rows_.reserve(out.capacity());
}

}  // namespace hashgate
