// Jobs: every upstream mining.notify becomes one immutable Job with a
// gateway-wide id, serialized once for every session. The JobBook keeps the
// jobs still valid for each upstream connection.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "hashing/target.h"
#include "protocol/dedup_set.h"
#include "protocol/stratum_codec.h"

namespace hashgate {

struct Job {
  uint64_t seq = 0;          // gateway-wide id; miners see it in hex
  std::string id;            // hex of seq
  uint32_t link_id = 0;      // the upstream connection that issued it
  NotifyParams params;       // as the pool sent it (params.job_id is the pool's id)
  Bytes extranonce1;         // the connection's extranonce1 when the job came
  uint32_t extranonce2_size = 0;
  double pool_difficulty = 0;
  U256 pool_target;
  U256 network_target;
  // "mining.notify" lines with the gateway id: as the pool flagged it, and
  // with clean_jobs=true for sessions that join or move.
  std::shared_ptr<const std::string> notify_line;
  std::shared_ptr<const std::string> notify_line_clean;
};

using JobRef = std::shared_ptr<const Job>;

// A job still in the book: the job and the fingerprints of shares seen for it.
struct JobEntry {
  JobRef job;
  DedupSet seen;
};

class JobBook {
 public:
  // A job id sent to a miner is the job's seq, or the seq with a variant in
  // the top 16 bits: the same job sent again under an id the miner has not
  // seen (with a new difficulty, or as a new session's first job), because
  // firmware rebuilds its work, and applies a difficulty, only on a new id.
  static constexpr int kVariantShift = 48;
  static constexpr uint64_t kSeqMask = (uint64_t(1) << kVariantShift) - 1;
  // The miner's job id as a number (seq and variant); none when it is not one of ours.
  static std::optional<uint64_t> parse_id(std::string_view job_id);

  // Recent jobs kept valid per connection when the pool does not ask for a
  // clean start.
  static constexpr size_t kWindow = 8;

  explicit JobBook(Algorithm algo);

  // Turns a pool's notify into a Job. A clean job retires the connection's
  // older jobs; otherwise the oldest beyond kWindow is retired.
  JobRef add(uint32_t link_id, NotifyParams params, const Bytes& extranonce1, uint32_t extranonce2_size,
             double pool_difficulty);
  // Parses a miner's job id (any variant) and returns the live entry, or null (stale).
  JobEntry* find(std::string_view job_id);
  JobEntry* find(uint64_t seq);
  JobRef latest(uint32_t link_id) const;
  // Retires every job of a connection (it closed, or its extranonce changed).
  void retire_link(uint32_t link_id);
  size_t size() const { return entries_.size(); }
  Algorithm algorithm() const { return algo_; }

 private:
  Algorithm algo_;
  uint64_t next_seq_ = 1;
  std::unordered_map<uint64_t, JobEntry> entries_;
  std::unordered_map<uint32_t, std::deque<uint64_t>> by_link_;  // oldest first
};

}  // namespace hashgate
