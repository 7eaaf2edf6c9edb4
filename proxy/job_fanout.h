// A job's fan-out to the sessions of a pool connection: each session's bytes
// are staged into one batch and written together by the FanoutWriter's
// threads (with the loop), each result settled as MinerWriter::flush would
// (the rest queued, an error closing the miner). TLS miners and miners with
// bytes already queued are flushed one by one after the batch. Owns the
// batch's storage and the fan-out time histogram.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <vector>

#include "proxy/fanout_writer.h"
#include "proxy/miner_conn.h"
#include "proxy/snapshot.h"

namespace hashgate {

class JobFanout {
 public:
  explicit JobFanout(MinerWriter& writer);
  JobFanout(const JobFanout&) = delete;
  JobFanout& operator=(const JobFanout&) = delete;

  // Starts the helper threads (`threads` < 0: cores - 1, at most 3).
  void start(int threads);

  // One job: begin(), add() each session that took it (nothing may close a
  // session until finish(): a close would erase from the set being walked),
  // then finish() writes them all and times the whole.
  void begin();
  void add(Miner* m);
  void finish();

  const Histogram& times() const { return times_; }

 private:
  // Takes a session's bytes into the batch; false: flush it on its own
  // (TLS, or bytes already queued).
  bool stage(Miner* m);
  void write_staged();

  MinerWriter& writer_;
  std::unique_ptr<FanoutWriter> fanout_;
  struct Staged {
    Miner* m;
    uint32_t first_chunk, end_chunk;  // in chunks_
  };
  std::vector<Staged> staged_;
  std::vector<OutChunk> chunks_;
  std::vector<FanoutWriter::Item> items_;  // parallel to staged_
  std::vector<iovec> iovs_;
  std::vector<Miner*> unstaged_;  // TLS or already queued: flushed one by one after the batch
  uint64_t started_ns_ = 0;
  Histogram times_;
};

}  // namespace hashgate
