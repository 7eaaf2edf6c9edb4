#include "proxy/hash_pool.h"

namespace hashgate {

bool HashPool::Ring::push(HashBatch* b) {
  size_t t = tail_.load(std::memory_order_relaxed);
  if (t - head_.load(std::memory_order_acquire) == kCapacity) return false;
  slots_[t % kCapacity] = b;
  tail_.store(t + 1, std::memory_order_release);
  return true;
}

HashBatch* HashPool::Ring::pop() {
  size_t h = head_.load(std::memory_order_relaxed);
  if (h == tail_.load(std::memory_order_acquire)) return nullptr;
  HashBatch* b = slots_[h % kCapacity];
  head_.store(h + 1, std::memory_order_release);
  return b;
}

HashPool::HashPool(uv_loop_t* loop, HashPath path, bool adaptive, Algorithm algo, unsigned threads,
                   std::function<void(std::unique_ptr<HashBatch>)> on_done)
    : loop_(loop), path_(path), adaptive_(adaptive), algo_(algo), on_done_(std::move(on_done)) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, [](uv_async_t* a) { static_cast<HashPool*>(a->data)->drain(); });
  async_->data = this;
  for (unsigned i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    Worker* raw = w.get();
    w->thread = std::thread([this, raw] { run(raw); });
    workers_.push_back(std::move(w));
  }
}

HashPool::~HashPool() { close(); }

void HashPool::close() {
  if (stop_.exchange(true)) return;
  for (auto& w : workers_) w->wake.release();
  for (auto& w : workers_) w->thread.join();
  if (async_) uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
}

void HashPool::submit(std::unique_ptr<HashBatch> batch, bool inline_ok) {
  batch->hashes.resize(batch->headers.size());
  HashBatch* raw = batch.get();
  const bool small = raw->headers.size() <= hash_path_lanes(path_) && inflight_.empty();
  inflight_.push_back(std::move(batch));
  if (!workers_.empty() && !(inline_ok && small)) {
    for (size_t tries = 0; tries < workers_.size(); ++tries) {
      Worker& w = *workers_[next_worker_];
      next_worker_ = (next_worker_ + 1) % workers_.size();
      if (w.ring.push(raw)) {
        w.wake.release();
        return;
      }
    }
  }
  // No threads, a small batch with nothing ahead of it, or every ring full:
  // hash here, still in order.
  hash(raw);
  drain();
}

void HashPool::hash(HashBatch* b) {
  if (adaptive_) {
    pow_batch_adaptive(path_, algo_, b->headers.data(), b->hashes.data(), b->headers.size());
  } else {
    pow_batch(path_, algo_, b->headers.data(), b->hashes.data(), b->headers.size());
  }
  b->done.store(true, std::memory_order_release);
}

void HashPool::run(Worker* w) {
  for (;;) {
    w->wake.acquire();
    if (stop_.load(std::memory_order_acquire)) {
      // Finish what was queued: a share handed over is never dropped.
      while (HashBatch* b = w->ring.pop()) hash(b);
      return;
    }
    HashBatch* b = w->ring.pop();
    if (!b) continue;
    hash(b);
    uv_async_send(async_);
  }
}

void HashPool::drain() {
  while (!inflight_.empty() && inflight_.front()->done.load(std::memory_order_acquire)) {
    std::unique_ptr<HashBatch> b = std::move(inflight_.front());
    inflight_.pop_front();
    on_done_(std::move(b));
  }
}

}  // namespace hashgate
