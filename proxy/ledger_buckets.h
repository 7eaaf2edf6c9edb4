// The loop's side of the share ledger: counts per worker and pool for the
// current flush interval, in storage reserved ahead (no I/O, no lock, no
// allocation on the share path). Pure code: tests/unit/ledger_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "proxy/ledger_store.h"

namespace hashgate {

// Counts per (worker id, pool index) since the last take(), on the loop.
// at() finds a row through the worker's chain (one row per pool it used in
// the interval) and appends one when missing: storage for that is reserved
// ahead by reserve(), outside the share path.
class LedgerBuckets {
 public:
  struct Row {
    uint32_t worker;
    uint32_t pool;
    uint32_t next;  // the worker's next row + 1; 0: none
    LedgerCounts c;
  };
  LedgerCounts& at(uint32_t worker, uint32_t pool);
  // Room for `active_workers` workers with a session (each may use two pools
  // in one interval, as in a failover) and for worker ids below `workers`.
  void reserve(size_t workers, size_t active_workers);
  // Moves the rows counted so far into `out` (its old storage is kept for the
  // next interval) and starts an empty interval.
  void take(std::vector<Row>& out);
  size_t rows() const { return rows_.size(); }

 private:
  std::vector<uint32_t> head_;  // by worker id: first row + 1; 0: none
  std::vector<Row> rows_;
};

}  // namespace hashgate
