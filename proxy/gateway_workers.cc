// Worker rows come and go (issue 17.2): aggregate mode accepts any name, so
// a row per distinct name kept forever would let one peer grow memory
// without bound. A row whose last session left limits.worker_idle_seconds
// ago is freed and its id reused (its totals are the ledger's to keep);
// past limits.max_workers, new names are counted under one shared row.
#include <algorithm>

#include "proxy/gateway.h"
#include "proxy/log.h"

namespace hashgate {

namespace {
constexpr const char* kOverflowName = "~over-limit";
}  // namespace

WorkerTable::Names& Gateway::writable_names(size_t chunk) {
  std::shared_ptr<WorkerTable::Names>& names = worker_name_chunks_[chunk];
  if (names.use_count() > 1) {
    // A snapshot reads this chunk: write into a copy, and point the index's
    // keys (views into the names) at the copy's strings.
    auto copy = std::make_shared<WorkerTable::Names>(*names);
    for (size_t i = 0; i < WorkerTable::kChunk; ++i) {
      if ((*names)[i].empty()) continue;
      auto node = worker_ids_.extract(std::string_view((*names)[i]));
      if (node.empty()) continue;
      node.key() = std::string_view((*copy)[i]);
      worker_ids_.insert(std::move(node));
    }
    names = std::move(copy);
  }
  return *names;
}

uint32_t Gateway::new_worker_row(const std::string& name) {
  if (live_workers_ >= cfg_.limits.max_workers && name != kOverflowName) {
    ++workers_over_limit_;
    if (now() - over_limit_logged_ >= 10) {
      over_limit_logged_ = now();
      log::warn("worker_rows_full")
          .kv("limit", uint64_t(cfg_.limits.max_workers))
          .kv("worker", name)
          .kv("counted_as", kOverflowName)
          .kv("over_limit_total", workers_over_limit_)
          .kv("hint", "rows free as workers stay away limits.worker_idle_seconds; raise limits.max_workers");
    }
    if (overflow_worker_ == UINT32_MAX) overflow_worker_ = worker_id(kOverflowName);
    return overflow_worker_;
  }
  uint32_t id;
  if (!free_worker_ids_.empty()) {
    id = free_worker_ids_.back();
    free_worker_ids_.pop_back();
  } else {
    id = worker_count_++;
    if (id % WorkerTable::kChunk == 0) {
      worker_chunks_.push_back(std::make_unique<WorkerTable::Chunk>());
      worker_chunk_changed_.push_back(true);
      worker_name_chunks_.push_back(std::make_shared<WorkerTable::Names>());
    }
    worker_idle_since_.resize(worker_count_, 0);
  }
  std::string& slot = writable_names(id / WorkerTable::kChunk)[id % WorkerTable::kChunk];
  slot = name;
  worker_ids_.emplace(std::string_view(slot), id);
  worker_idle_since_[id] = now();
  ++live_workers_;
  if (name == kOverflowName) overflow_worker_ = id;
  return id;
}

void Gateway::worker_left(uint32_t id) {
  --active_workers_;
  worker_idle_since_[id] = now();
}

void Gateway::age_workers() {
  // Nothing may still name a freed id: a forwarded share is answered or its
  // connection failed within submit_timeout_seconds, so rows wait longer.
  const double idle = std::max(cfg_.limits.worker_idle_seconds, cfg_.failover.submit_timeout_seconds + 5);
  const double t = now();
  std::vector<uint32_t> old;
  for (uint32_t id = 0; id < worker_count_; ++id)
    if (row(id).sessions == 0 && t - worker_idle_since_[id] >= idle && !worker_name(id).empty()) old.push_back(id);
  if (old.empty()) return;
  // What the ledger counted for them goes out under their names first.
  if (ledger_) flush_ledger();
  for (uint32_t id : old) {
    std::string& slot = writable_names(id / WorkerTable::kChunk)[id % WorkerTable::kChunk];
    worker_ids_.erase(std::string_view(slot));
    slot.clear();
    slot.shrink_to_fit();
    stats(id) = WorkerStats{};
    free_worker_ids_.push_back(id);
    if (id == overflow_worker_) overflow_worker_ = UINT32_MAX;
  }
  live_workers_ -= uint32_t(old.size());
  workers_aged_out_ += old.size();
  // Lowest ids first next time: reused rows stay packed at the front.
  std::sort(free_worker_ids_.begin(), free_worker_ids_.end(), std::greater<>());
  log::info("workers_aged_out")
      .kv("rows", uint64_t(old.size()))
      .kv("live", uint64_t(live_workers_))
      .kv("idle_seconds", idle)
      .kv("totals", ledger_ ? "kept by the ledger" : "dropped (ledger off)");
}

}  // namespace hashgate
