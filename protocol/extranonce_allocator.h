// Hands out per-session extranonce prefixes on one upstream connection. A
// released prefix waits in quarantine until the next clean job, so two
// sessions never search the same space for the same job.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace hashgate {

class PrefixAllocator {
 public:
  // `prefix_bytes` from 0 to 4; capacity is capped at 256^prefix_bytes.
  PrefixAllocator(uint32_t prefix_bytes, uint64_t max_sessions);

  std::optional<uint32_t> allocate();
  // Claims one given prefix (a resumed pool session puts each miner back on
  // its own); false when it is taken or out of range.
  bool take(uint32_t prefix);
  void release(uint32_t prefix);
  // A clean job retires every old job: quarantined prefixes are free again.
  void on_clean_job();

  uint32_t prefix_bytes() const { return prefix_bytes_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t in_use() const { return in_use_; }
  bool full() const { return free_.empty() && next_ >= capacity_; }

 private:
  uint32_t prefix_bytes_;
  uint64_t capacity_;
  uint64_t next_ = 0;  // prefixes below this have been handed out at least once
  uint64_t in_use_ = 0;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> quarantine_;
};

// Chooses how many of the pool's extranonce2 bytes hashgate keeps as the
// per-session prefix. `configured` < 0 means auto: the fewest bytes that
// cover `sessions_per_upstream`, as long as miners keep `min_miner_bytes`.
uint32_t choose_prefix_bytes(int configured, uint32_t pool_extranonce2_size, uint32_t min_miner_bytes,
                             uint64_t sessions_per_upstream);

}  // namespace hashgate
