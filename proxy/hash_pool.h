// Proof-of-work hashing off the loop. The loop hands batches of headers to a
// few hashing threads through single-producer/single-consumer lock-free
// rings; a finished batch wakes the loop with uv_async. Batches complete in
// the order they were submitted, so each session's verdicts keep their order.
// With zero threads the same batches are hashed on the loop.
#pragma once

#include <uv.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <semaphore>
#include <thread>
#include <vector>

#include "hashing/engine.h"

namespace hashgate {

struct HashBatch {
  virtual ~HashBatch() = default;  // callers extend it with their own context
  std::vector<Header> headers;
  std::vector<Hash256> hashes;
  std::atomic<bool> done{false};
  uint64_t user = 0;  // the caller's tag
};

class HashPool {
 public:
  // `on_done` runs on the loop for each finished batch, in submission order.
  // `adaptive`: leftover shares use a narrower path (pow_batch_adaptive);
  // off when an operator or a test forced `path`.
  HashPool(uv_loop_t* loop, HashPath path, bool adaptive, Algorithm algo, unsigned threads,
           std::function<void(std::unique_ptr<HashBatch>)> on_done);
  ~HashPool();

  // Hands the batch to a thread; with `inline_ok`, a batch of at most one
  // lane group is hashed right here when nothing is in flight (waking a
  // thread costs more than the hash on a busy machine: bench/README.md).
  void submit(std::unique_ptr<HashBatch> batch, bool inline_ok = false);
  size_t in_flight() const { return inflight_.size(); }
  unsigned threads() const { return unsigned(workers_.size()); }
  // Stops the threads and releases the uv_async handle.
  void close();

 private:
  class Ring {
   public:
    static constexpr size_t kCapacity = 1024;
    bool push(HashBatch* b);
    HashBatch* pop();

   private:
    alignas(64) std::atomic<size_t> head_{0};  // written by the consumer
    alignas(64) std::atomic<size_t> tail_{0};  // written by the producer
    HashBatch* slots_[kCapacity] = {};
  };

  struct Worker {
    Ring ring;
    std::counting_semaphore<1 << 20> wake{0};
    std::thread thread;
  };

  void run(Worker* w);
  void drain();
  void hash(HashBatch* b);

  uv_loop_t* loop_;
  HashPath path_;
  bool adaptive_;
  Algorithm algo_;
  std::function<void(std::unique_ptr<HashBatch>)> on_done_;
  uv_async_t* async_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::deque<std::unique_ptr<HashBatch>> inflight_;
  size_t next_worker_ = 0;
  std::atomic<bool> stop_{false};
};

}  // namespace hashgate
