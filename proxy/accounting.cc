#include "proxy/accounting.h"

#include <algorithm>

#include "hashing/bytes.h"
#include "hashing/header.h"
#include "hashing/sha256.h"
#include "proxy/log.h"

namespace hashgate {
namespace {
constexpr const char* kOverflowName = "~over-limit";
// Distinct user agents shown per worker; later ones show as none.
constexpr size_t kMaxAgents = 1024;
}  // namespace

Accounting::Accounting(const conf::Config& cfg, std::function<bool(size_t)> pool_up)
    : cfg_(cfg), pool_up_(std::move(pool_up)) {}

// ---------------------------------------------------------------- worker rows

uint32_t Accounting::worker_id(const std::string& name, double now) {
  if (auto it = ids_.find(std::string_view(name)); it != ids_.end()) return it->second;
  return new_row(name, now);
}

std::optional<uint32_t> Accounting::find(std::string_view name) const {
  auto it = ids_.find(name);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

WorkerTable::Names& Accounting::writable_names(size_t chunk) {
  std::shared_ptr<WorkerTable::Names>& names = name_chunks_[chunk];
  if (names.use_count() > 1) {
    // A snapshot reads this chunk: write into a copy, and point the index's
    // keys (views into the names) at the copy's strings.
    auto copy = std::make_shared<WorkerTable::Names>(*names);
    for (size_t i = 0; i < WorkerTable::kChunk; ++i) {
      if ((*names)[i].empty()) continue;
      auto node = ids_.extract(std::string_view((*names)[i]));
      if (node.empty()) continue;
      node.key() = std::string_view((*copy)[i]);
      ids_.insert(std::move(node));
    }
    names = std::move(copy);
  }
  return *names;
}

uint32_t Accounting::new_row(const std::string& name, double now) {
  if (live_ >= cfg_.limits.max_workers && name != kOverflowName) {
    ++over_limit_;
    if (now - over_limit_logged_ >= 10) {
      over_limit_logged_ = now;
      log::warn("worker_rows_full")
          .kv("limit", uint64_t(cfg_.limits.max_workers))
          .kv("worker", name)
          .kv("counted_as", kOverflowName)
          .kv("over_limit_total", over_limit_)
          .kv("hint", "rows free as workers stay away limits.worker_idle_seconds; raise limits.max_workers");
    }
    if (overflow_ == UINT32_MAX) overflow_ = worker_id(kOverflowName, now);
    return overflow_;
  }
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = count_++;
    if (id % WorkerTable::kChunk == 0) {
      chunks_.push_back(std::make_unique<WorkerTable::Chunk>());
      chunk_changed_.push_back(true);
      name_chunks_.push_back(std::make_shared<WorkerTable::Names>());
    }
    idle_since_.resize(count_, 0);
  }
  std::string& slot = writable_names(id / WorkerTable::kChunk)[id % WorkerTable::kChunk];
  slot = name;
  ids_.emplace(std::string_view(slot), id);
  idle_since_[id] = now;
  ++live_;
  if (name == kOverflowName) overflow_ = id;
  return id;
}

uint16_t Accounting::agent_id(const std::string& agent) {
  if (auto it = agent_ids_.find(agent); it != agent_ids_.end()) return it->second;
  // Bounded: a peer inventing user agents gets no more rows than this.
  if (agent_ids_.size() >= kMaxAgents) return WorkerStats::kNone;
  auto next = std::make_shared<std::vector<std::string>>(published_agents_ ? *published_agents_
                                                                           : std::vector<std::string>{});
  next->push_back(agent);
  const uint16_t id = uint16_t(next->size() - 1);
  agent_ids_.emplace(agent, id);
  published_agents_ = std::move(next);  // a new list: snapshots keep the one they read
  return id;
}

WorkerStats& Accounting::join(uint32_t id, const std::string& agent) {
  // Sessions per worker are counted as workers join and leave, so that the
  // once-a-second snapshot does not walk every session.
  WorkerStats& st = stats(id);
  if (st.sessions++ == 0) ++active_;
  st.agent = agent_id(agent);
  reserve_ledger_rows();
  return st;
}

void Accounting::leave(uint32_t id, std::optional<double> settled, double now) {
  if (row(id).sessions && --stats(id).sessions == 0) {
    --active_;
    idle_since_[id] = now;
  }
  if (settled) stats(id).settled_difficulty = *settled;
}

void Accounting::age(double now, double unix_now) {
  // Nothing may still name a freed id: a forwarded share is answered or its
  // connection failed within submit_timeout_seconds, so rows wait longer.
  const double idle = std::max(cfg_.limits.worker_idle_seconds, cfg_.failover.submit_timeout_seconds + 5);
  std::vector<uint32_t> old;
  for (uint32_t id = 0; id < count_; ++id)
    if (row(id).sessions == 0 && now - idle_since_[id] >= idle && !name(id).empty()) old.push_back(id);
  if (old.empty()) return;
  // What the ledger counted for them goes out under their names first.
  if (ledger_) flush_ledger(unix_now);
  for (uint32_t id : old) {
    std::string& slot = writable_names(id / WorkerTable::kChunk)[id % WorkerTable::kChunk];
    ids_.erase(std::string_view(slot));
    slot.clear();
    slot.shrink_to_fit();
    stats(id) = WorkerStats{};
    free_ids_.push_back(id);
    if (id == overflow_) overflow_ = UINT32_MAX;
  }
  live_ -= uint32_t(old.size());
  aged_out_ += old.size();
  // Lowest ids first next time: reused rows stay packed at the front.
  std::sort(free_ids_.begin(), free_ids_.end(), std::greater<>());
  log::info("workers_aged_out")
      .kv("rows", uint64_t(old.size()))
      .kv("live", uint64_t(live_))
      .kv("idle_seconds", idle)
      .kv("totals", ledger_ ? "kept by the ledger" : "dropped (ledger off)");
}

void Accounting::accepted(WorkerStats& st, double difficulty, bool block, double now, double unix_now) {
  ++st.accepted;
  st.accepted_difficulty += difficulty;
  st.last_share_unix = unix_now;
  st.rate.add(now, difficulty);
  total_rate_.add(now, difficulty);
  st.blocks += block;
}

void Accounting::rejected(uint32_t worker, LedgerCounts* lc, ErrorCode code) {
  WorkerStats& st = stats(worker);
  ++st.rejected;
  switch (code) {
    case ErrorCode::kStaleJob: ++st.rejected_stale; break;
    case ErrorCode::kDuplicateShare: ++st.rejected_duplicate; break;
    default: ++st.rejected_other; break;
  }
  if (!lc) return;
  switch (code) {
    case ErrorCode::kStaleJob: ++lc->rejected_stale; break;
    case ErrorCode::kDuplicateShare: ++lc->rejected_duplicate; break;
    default: ++lc->rejected_other; break;
  }
}

// ---------------------------------------------------------------- the ledger

bool Accounting::open_ledger(std::string& error, double unix_now) {
  pool_failovers_.assign(cfg_.pools.size(), 0);
  pool_failovers_flushed_.assign(cfg_.pools.size(), 0);
  if (cfg_.ledger.backend == "off") return true;
  ledger_ = Ledger::open(cfg_.ledger, error);
  if (!ledger_) {
    error = "ledger (" + cfg_.ledger.backend + "): " + error;
    return false;
  }
  ledger_flushed_at_ = unix_now;
  reserve_ledger_rows();
  log::info("ledger_open")
      .kv("backend", cfg_.ledger.backend)
      .kv("instance", ledger_->instance())
      .kv("path", cfg_.ledger.backend == "sqlite" ? cfg_.ledger.path : std::string("-"))
      .kv("flush_seconds", cfg_.ledger.flush_seconds);
  return true;
}

void Accounting::reserve_ledger_rows() {
  if (ledger_) ledger_->buckets().reserve(count_, active_);
}

void Accounting::ledger_block(uint32_t worker, size_t pool, const ShareWork& work, uint64_t token, double unix_now) {
  if (!ledger_) return;
  LedgerBlock b;
  b.time = unix_now;
  b.worker = name(worker);
  b.pool = cfg_.pools[pool].name;
  b.job = work.job->params.job_id;
  b.header = hex_encode(std::span<const uint8_t>(work.header.data(), work.header.size()));
  b.hash = hex_reversed(sha256d_header(work.header.data()));
  block_tokens_[token] = b.hash;
  ledger_extra_.blocks.push_back(std::move(b));
}

void Accounting::ledger_verdict(uint64_t token, bool accepted) {
  auto it = block_tokens_.find(token);
  if (it == block_tokens_.end()) return;
  ledger_extra_.verdicts.emplace_back(it->second, accepted ? "accepted" : "rejected");
  block_tokens_.erase(it);
}

void Accounting::flush_ledger(double unix_now) {
  if (!ledger_) return;
  const double t = unix_now;
  LedgerBatch b = std::move(ledger_extra_);
  ledger_extra_ = {};
  ledger_->buckets().take(ledger_rows_);
  b.workers.reserve(ledger_rows_.size());
  // A reload may have changed the pools since a row was counted: a pool
  // index past the list is counted under the last one's name at worst.
  for (const LedgerBuckets::Row& r : ledger_rows_)
    b.workers.push_back(LedgerBatch::WorkerRow{name(r.worker),
                                               cfg_.pools[std::min<size_t>(r.pool, cfg_.pools.size() - 1)].name, r.c});
  pool_failovers_.resize(cfg_.pools.size(), 0);
  pool_failovers_flushed_.resize(cfg_.pools.size(), 0);
  const double span = std::max(0.0, t - ledger_flushed_at_);
  for (size_t p = 0; p < cfg_.pools.size(); ++p) {
    LedgerBatch::PoolRow row{cfg_.pools[p].name, pool_up_(p) ? span : 0.0,
                             pool_failovers_[p] - pool_failovers_flushed_[p]};
    pool_failovers_flushed_[p] = pool_failovers_[p];
    if (row.connected_seconds > 0 || row.failovers > 0) b.pools.push_back(std::move(row));
  }
  ledger_flushed_at_ = t;
  ledger_->submit(std::move(b), t);
  reserve_ledger_rows();
}

void Accounting::close_ledger(double seconds, double unix_now) {
  if (!ledger_) return;
  flush_ledger(unix_now);
  ledger_->drain(seconds);
}

// ---------------------------------------------------------------- snapshots

void Accounting::fill(Snapshot& s, double now) {
  // The worker table: chunks copied again only where a row changed.
  published_.chunks.resize(chunks_.size());
  for (size_t i = 0; i < chunks_.size(); ++i)
    if (chunk_changed_[i]) {
      published_.chunks[i] = std::make_shared<const WorkerTable::Chunk>(*chunks_[i]);
      chunk_changed_[i] = false;
    }
  published_.names.assign(name_chunks_.begin(), name_chunks_.end());
  published_.size = count_;
  published_.live = live_;
  s.workers_aged_out = aged_out_;
  s.workers_over_limit = over_limit_;
  s.worker_rows_limit = cfg_.limits.max_workers;
  s.worker_table = published_;
  s.agents = published_agents_;
  uint64_t acc = 0, rst = 0, rdup = 0, rlow = 0, roth = 0, fwd = 0, blocks = 0;
  for (uint32_t i = 0; i < count_; ++i) {
    const WorkerStats& st = row(i);
    acc += st.accepted;
    rst += st.rejected_stale;
    rdup += st.rejected_duplicate;
    rlow += st.rejected_low_difficulty;
    roth += st.rejected_other;
    fwd += st.forwarded;
    blocks += st.blocks;
  }
  s.shares = {{"accepted", acc}, {"rejected_stale", rst}, {"rejected_duplicate", rdup},
              {"rejected_low_difficulty", rlow}, {"rejected_other", roth}, {"forwarded", fwd}, {"blocks", blocks}};
  s.hashrate = total_rate_.per_second(now) * s.hashes_per_difficulty;
  if (!ledger_) return;
  const LedgerStats st = ledger_->stats();
  s.ledger = LedgerSnapshot{true,           cfg_.ledger.backend, ledger_->instance(), st.queue_rows,
                            st.queue_limit, st.written_rows,     st.dropped_rows,     st.write_errors,
                            st.healthy};
  s.ledger_reader = ledger_->reader();
}

void Accounting::log_summary() {
  // With the ledger on, each line carries the worker's lifetime totals too.
  std::map<std::string, LedgerCounts> lifetime;
  std::string lerr;
  if (ledger_ && !ledger_->reader()->totals(lifetime, lerr)) log::warn("ledger_read_failed").kv("error", lerr);
  for (uint32_t i = 0; i < count_; ++i) {
    if (name(i).empty()) continue;  // an aged-out row
    const WorkerStats& st = row(i);
    const LedgerCounts* life = lifetime.count(name(i)) ? &lifetime[name(i)] : nullptr;
    log::Event ev(spdlog::level::info, "worker_stats");
    ev.kv("worker", name(i))
        .kv("accepted", st.accepted)
        .kv("rejected", st.rejected)
        .kv("rejected_stale", st.rejected_stale)
        .kv("rejected_duplicate", st.rejected_duplicate)
        .kv("rejected_low_difficulty", st.rejected_low_difficulty)
        .kv("rejected_other", st.rejected_other)
        .kv("forwarded", st.forwarded)
        .kv("pool_accepted", st.pool_accepted)
        .kv("pool_rejected", st.pool_rejected)
        .kv("blocks", st.blocks)
        .kv("accepted_difficulty", st.accepted_difficulty);
    if (life)
      ev.kv("lifetime_accepted", life->accepted)
          .kv("lifetime_rejected", life->rejected())
          .kv("lifetime_accepted_difficulty", life->accepted_difficulty);
  }
}

}  // namespace hashgate
