#include "proxy/share_pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "hashing/sha256.h"
#include "proxy/log.h"

namespace hashgate {
namespace {

struct ShareBatch : HashBatch {
  std::vector<ShareWork> works;
  std::vector<uint32_t> workers;  // worker ids
  std::vector<uint64_t> received_ns;
};

}  // namespace

SharePipeline::SharePipeline(uv_loop_t* loop, Algorithm algo, Judge judge, std::function<void()> batch_done)
    : loop_(loop),
      algo_(algo),
      judge_(std::move(judge)),
      batch_done_(std::move(batch_done)),
      validation_({1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {
  uv_check_init(loop_, &flush_check_);
  flush_check_.data = this;
}

bool SharePipeline::start(const conf::Hashing& cfg, std::string& error) {
  std::optional<HashPath> requested;
  if (cfg.path != "auto") requested = parse_hash_path(cfg.path);
  auto path = select_hash_path(requested);
  if (!path) {
    error = "hashing path '" + std::string(std::getenv("HASHGATE_HASH_PATH") ? std::getenv("HASHGATE_HASH_PATH")
                                                                              : cfg.path) +
            "' is not supported by this CPU (best: " + hash_path_name(best_hash_path()) + ")";
    return false;
  }
  path_ = *path;
  inline_small_batches_ = cfg.inline_small_batches;
  unsigned threads = cfg.threads >= 0 ? unsigned(cfg.threads)
                     : algo_ == Algorithm::kScrypt ? std::max(1u, std::thread::hardware_concurrency())
                                                   : 0;
  const bool forced = requested || (std::getenv("HASHGATE_HASH_PATH") && *std::getenv("HASHGATE_HASH_PATH"));
  hash_pool_ = std::make_unique<HashPool>(loop_, path_, !forced, algo_, threads,
                                          [this](std::unique_ptr<HashBatch> b) { finish_batch(std::move(b)); });
  log::info("hashing")
      .kv("algorithm", algorithm_name(algo_))
      .kv("path", hash_path_name(path_))
      .kv("lanes", uint64_t(hash_path_lanes(path_)))
      .kv("threads", threads)
      .kv("sha", sha256_uses_shani() ? "sha-ni" : "portable");
  return true;
}

void SharePipeline::add(ShareWork&& work, uint32_t worker) {
  pending_.push_back(PendingShare{std::move(work), worker, uv_hrtime()});
  if (pending_.size() == 1)
    uv_check_start(&flush_check_, [](uv_check_t* c) { static_cast<SharePipeline*>(c->data)->flush(); });
}

void SharePipeline::flush() {
  uv_check_stop(&flush_check_);
  if (pending_.empty() || !hash_pool_) return;
  // Split across the threads, each chunk a whole number of lane groups.
  const size_t n = pending_.size();
  const size_t lanes = hash_path_lanes(path_);
  const size_t threads = std::max<size_t>(1, hash_pool_->threads());
  // Small batches stay whole (one thread, the leftover on a narrow path).
  size_t chunk = (n + threads - 1) / threads;
  chunk = std::max(lanes, (chunk + lanes - 1) / lanes * lanes);
  for (size_t i = 0; i < n; i += chunk) {
    // Batches are reused with their vectors' storage (finish_batch).
    std::unique_ptr<HashBatch> b;
    if (!spare_batches_.empty()) {
      b = std::move(spare_batches_.back());
      spare_batches_.pop_back();
    } else {
      b = std::make_unique<ShareBatch>();
    }
    auto* sb = static_cast<ShareBatch*>(b.get());
    size_t end = std::min(n, i + chunk);
    for (size_t j = i; j < end; ++j) {
      sb->headers.push_back(pending_[j].work.header);
      sb->works.push_back(std::move(pending_[j].work));
      sb->workers.push_back(pending_[j].worker);
      sb->received_ns.push_back(pending_[j].received_ns);
    }
    hash_pool_->submit(std::move(b), inline_small_batches_);
  }
  pending_.clear();
}

void SharePipeline::finish_batch(std::unique_ptr<HashBatch> batch) {
  auto* b = static_cast<ShareBatch*>(batch.get());
  // Block candidates first: they are worth more than the rest together.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < b->works.size(); ++i) {
      bool block = meets(b->hashes[i], b->works[i].job->network_target);
      if ((pass == 0) == block) judge_(b->works[i], b->workers[i], b->hashes[i]);
    }
  }
  const uint64_t t = uv_hrtime();
  for (uint64_t r : b->received_ns) validation_.observe(double(t - r) / 1e9);
  if (spare_batches_.size() < kMaxSpareBatches) {
    b->headers.clear();
    b->hashes.clear();
    b->works.clear();
    b->workers.clear();
    b->received_ns.clear();
    b->done.store(false, std::memory_order_relaxed);
    spare_batches_.push_back(std::move(batch));
  }
  batch_done_();
}

void SharePipeline::close() {
  if (hash_pool_) hash_pool_->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), nullptr);
}

}  // namespace hashgate
