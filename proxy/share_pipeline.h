// The share pipeline: shares checked by their sessions wait here for the
// end of the loop iteration, go to the hashing threads as batches (reused
// with their storage), and come back one by one to `judge`, block candidates
// of a batch first. It owns the hashing path, the threads and the
// validation-time histogram; what a hashed share means (a verdict for the
// miner, counters, a forward to the pool) is the judge's business.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "hashing/engine.h"
#include "protocol/downstream_session.h"
#include "proxy/hash_pool.h"
#include "proxy/snapshot.h"

namespace hashgate {

class SharePipeline {
 public:
  // A hashed share and the worker id it was queued under.
  using Judge = std::function<void(ShareWork& work, uint32_t worker, const Hash256& hash)>;
  // `batch_done` runs after each batch was judged (the stop waits on batches).
  SharePipeline(uv_loop_t* loop, Algorithm algo, Judge judge, std::function<void()> batch_done);
  SharePipeline(const SharePipeline&) = delete;
  SharePipeline& operator=(const SharePipeline&) = delete;

  // Chooses the hashing path (hashing.path, or HASHGATE_HASH_PATH) and starts
  // the threads; false with `error` when the CPU cannot run that path.
  bool start(const conf::Hashing& cfg, std::string& error);
  // Queues a share for this loop iteration's batch.
  void add(ShareWork&& work, uint32_t worker);
  // Hands what is queued to the threads now (the stop does not wait for the
  // end of the iteration).
  void flush();
  // Shares being hashed (queued ones not counted).
  size_t in_flight() const { return hash_pool_ ? hash_pool_->in_flight() : 0; }
  // Stops the threads and releases the loop handle.
  void close();

  HashPath path() const { return path_; }
  const Histogram& validation_times() const { return validation_; }

 private:
  void finish_batch(std::unique_ptr<HashBatch> batch);

  uv_loop_t* loop_;
  Algorithm algo_;
  Judge judge_;
  std::function<void()> batch_done_;
  std::unique_ptr<HashPool> hash_pool_;
  HashPath path_ = HashPath::kPortable;
  bool inline_small_batches_ = true;
  uv_check_t flush_check_;  // flush() at the end of the iteration that queued the first share

  struct PendingShare {
    ShareWork work;
    uint32_t worker;  // a worker id
    uint64_t received_ns;
  };
  std::vector<PendingShare> pending_;
  // Finished batches kept with their storage for the next ones.
  static constexpr size_t kMaxSpareBatches = 16;
  std::vector<std::unique_ptr<HashBatch>> spare_batches_;
  Histogram validation_;  // from a share's arrival to its verdict (hashing included)
};

}  // namespace hashgate
