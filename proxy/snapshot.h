// What the loop publishes for the admin server: plain values copied once a
// second into an immutable snapshot. The admin threads read snapshots only;
// they never touch the loop's own data.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proxy/guard.h"

namespace hashgate {

class LedgerReader;  // proxy/ledger.h
struct EconomicsSnapshot;  // proxy/farm_economics.h

// A fixed-bucket histogram owned by the loop (no atomics: one writer).
struct Histogram {
  explicit Histogram(std::vector<double> upper_bounds = {})
      : bounds(std::move(upper_bounds)), counts(bounds.size(), 0) {}
  void observe(double v) {
    for (size_t i = 0; i < bounds.size(); ++i)
      if (v <= bounds[i]) {
        ++counts[i];
        break;
      }
    ++count;
    sum += v;
  }
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bucket, not cumulative
  uint64_t count = 0;
  double sum = 0;
};

// Decaying sum of accepted difficulty: an hashrate estimate that needs one
// double per worker and no per-share history.
struct RateEstimator {
  static constexpr double kTau = 300;  // seconds
  double acc = 0;
  double at = 0;
  void add(double now, double difficulty) {
    decay(now);
    acc += difficulty;
  }
  void decay(double now) {
    if (now > at) acc *= std::exp(-(now - at) / kTau);
    at = now;
  }
  // Difficulty per second over about the last kTau seconds.
  double per_second(double now) const { return now > at ? acc * std::exp(-(now - at) / kTau) / kTau : acc / kTau; }
};

struct PoolSnapshot {
  std::string name;
  std::string url;
  int priority = 0;
  double weight = 1;
  bool enabled = true;
  std::string state;    // active | standby | down | disabled
  std::string breaker;  // closed | open | half-open
  uint64_t connections = 0;
  uint64_t sessions = 0;
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  double accepted_difficulty = 0;  // credited by the pool: its difficulty per accepted share
  double hashgate_accepted_difficulty = 0;  // accepted by hashgate on this pool's jobs, at session difficulty
  double hashrate = 0;  // hashes per second, from pool-accepted difficulty
  double accepted_hashrate = 0;  // from difficulty hashgate accepted on the pool's jobs
  uint64_t jobs_coalesced = 0;  // notify flood: jobs replaced before they reached miners
  // Job integrity (proxy/job_integrity.h): the tip the pool works on.
  std::string chain;
  std::string tip;             // previous block hash, display order; empty: no job yet
  int64_t height = -1;         // BIP34 height of the block being mined; -1: unknown
  double tip_lag_seconds = 0;  // on a superseded tip this long
  int64_t tip_lag_blocks = -1; // behind the best known height; -1: unknown
  std::vector<std::string> integrity_flags;
  std::vector<std::pair<std::string, uint64_t>> integrity_events;  // by check
};

// A worker's share counters, kept by the loop and copied into snapshots.
struct WorkerCounters {
  uint64_t accepted = 0;
  uint64_t rejected = 0;  // every reject sent to the miner, by any code
  uint64_t rejected_stale = 0;
  uint64_t rejected_duplicate = 0;
  uint64_t rejected_low_difficulty = 0;
  uint64_t rejected_other = 0;
  uint64_t forwarded = 0;
  uint64_t pool_accepted = 0;
  uint64_t pool_rejected = 0;
  uint64_t blocks = 0;
  double accepted_difficulty = 0;
  double last_share_unix = 0;  // last accepted share; 0: none yet
};

// A worker's counters as the loop keeps them: plain values, so that a
// snapshot copies the whole table in one pass.
struct WorkerStats : WorkerCounters {
  RateEstimator rate;     // accepted difficulty per second
  RateEstimator credited_rate;  // pool-accepted difficulty per second
  uint64_t sessions = 0;  // sessions that authorized this worker, counted as they come and go
  double settled_difficulty = 0;  // where its vardiff settled last: a reconnect starts there
  // Its last session's firmware: an index into Snapshot::agents and into
  // Snapshot::profile_names (kNone until it authorizes).
  static constexpr uint16_t kNone = 0xffff;
  uint16_t agent = kNone;
  uint16_t profile = kNone;
  bool has_address = false;
  Address address;  // its last session's (a PROXY header's, behind a balancer): economics groups by CIDR
};

// Workers in the order hashgate first saw them, in chunks of rows. The loop
// publishes a chunk again only when one of its rows changed, and each name
// once: snapshots share the rest, so that an idle farm of 20,000 workers
// costs nothing a second and a busy one a copy of plain values, never
// 20,000 string builds on the loop.
struct WorkerTable {
  static constexpr size_t kChunk = 256;
  using Chunk = std::array<WorkerStats, kChunk>;
  using Names = std::array<std::string, kChunk>;
  std::vector<std::shared_ptr<const Chunk>> chunks;
  // Shared with the loop, which fills a name once, before the snapshot that
  // first counts its row: readers never see one being written.
  std::vector<std::shared_ptr<const Names>> names;
  size_t size = 0;  // rows, aged-out ones (empty name) included
  size_t live = 0;  // rows in use
  const WorkerStats& row(size_t i) const { return (*chunks[i / kChunk])[i % kChunk]; }
  const std::string& name(size_t i) const { return (*names[i / kChunk])[i % kChunk]; }
};

struct WorkerSnapshot : WorkerCounters {
  std::string name;
  std::string agent;    // user agent of its last session's mining.subscribe
  std::string profile;  // firmware profile that session got
  uint64_t sessions = 0;
  double hashrate = 0;
  double credited_hashrate = 0;  // from pool-accepted difficulty
  double reject_ratio = 0;
  std::optional<Address> address;  // its last session's
};

struct BanSnapshot {
  std::string address;
  double until_unix = 0;
  unsigned count = 0;
  std::string violation;
};

// An ASIC board on a serial port (proxy/boards.cc).
struct BoardSnapshot {
  std::string name, driver, path, worker;
  std::string state;  // opening | initialising | waiting_for_work | mining | paused (profit guard) | down | disabled
  std::string last_error;
  unsigned chips_expected = 0, chips_found = 0;
  double frequency = 0;
  uint64_t nonces = 0;            // valid nonces (met the board's target)
  uint64_t hardware_errors = 0;   // nonces that did not
  uint64_t below_share_target = 0;
  uint64_t submitted = 0, accepted = 0, rejected = 0, rejected_stale = 0;
  uint64_t crc_errors = 0, junk_bytes = 0;
  uint64_t restarts = 0, reopens = 0, works_sent = 0;
  double accepted_difficulty = 0;
  double hashrate = 0;  // hashes per second, from accepted difficulty
  double last_nonce_unix = 0;
  std::vector<uint64_t> nonces_by_chip, hardware_errors_by_chip;
};

// The share ledger's writer, as /metrics shows it.
struct LedgerSnapshot {
  bool on = false;
  std::string backend, instance;
  uint64_t queue_rows = 0, queue_limit = 0;
  uint64_t written_rows = 0, dropped_rows = 0, write_errors = 0;
  bool healthy = true;
};

struct Snapshot {
  std::string version;
  std::string algorithm;
  std::string hashing_path;
  double started_unix = 0;
  double published_unix = 0;
  double published_mono = 0;  // steady seconds, for /healthz
  bool listeners_up = false;
  bool draining = false;
  bool ready = false;
  std::string not_ready_reason;

  uint64_t connections_current = 0;
  uint64_t connections_accepted = 0;
  std::map<std::string, uint64_t> connections_closed;  // by reason class
  std::map<std::string, uint64_t> connections_rejected;  // refused at accept, by reason
  std::map<std::string, uint64_t> violations;            // by kind
  std::map<std::string, uint64_t> proxy_protocol;        // PROXY headers: v1, v2, own_address, or why refused
  std::vector<BanSnapshot> bans;                         // active now
  uint64_t bans_total = 0;
  uint64_t addresses_tracked = 0;
  std::map<std::string, uint64_t> shares;              // by result
  std::map<std::string, uint64_t> sessions_by_pool;
  // Firmware profiles: names by book index, sessions now per profile,
  // violations by (profile, rule); user agents seen (interned, bounded).
  std::vector<std::string> profile_names;
  std::vector<uint64_t> profile_sessions;  // parallel to profile_names
  std::map<std::pair<std::string, std::string>, uint64_t> profile_violations;
  std::shared_ptr<const std::vector<std::string>> agents;
  uint64_t reloads_ok = 0;
  uint64_t reloads_failed = 0;
  std::string last_reload_error;

  Histogram submit_rtt, job_fanout, share_validation;
  std::vector<PoolSnapshot> pools;
  // integrity.node: off | none | starting | up | down
  std::string node_state = "off";
  int64_t node_height = -1;
  std::string node_best;
  std::string node_error;
  WorkerTable worker_table;
  double hashes_per_difficulty = 0;
  double published_loop = 0;  // the loop's clock at publication: rates decay to it
  uint64_t workers_aged_out = 0, workers_over_limit = 0, worker_rows_limit = 0;
  size_t worker_count() const { return worker_table.live; }
  // Row `i` with what follows from its counters (the caller skips empty names).
  WorkerSnapshot worker(size_t i) const {
    const WorkerStats& st = worker_table.row(i);
    WorkerSnapshot w;
    static_cast<WorkerCounters&>(w) = st;
    w.name = worker_table.name(i);
    if (agents && st.agent < agents->size()) w.agent = (*agents)[st.agent];
    if (st.profile < profile_names.size()) w.profile = profile_names[st.profile];
    if (st.has_address) w.address = st.address;
    w.sessions = st.sessions;
    w.hashrate = st.rate.per_second(published_loop) * hashes_per_difficulty;
    w.credited_hashrate = st.credited_rate.per_second(published_loop) * hashes_per_difficulty;
    w.reject_ratio = st.accepted + st.rejected ? double(st.rejected) / double(st.accepted + st.rejected) : 0;
    return w;
  }
  // The table with what follows from the counters, built by the reader.
  std::vector<WorkerSnapshot> workers() const {
    std::vector<WorkerSnapshot> out;
    out.reserve(worker_table.size);
    for (size_t i = 0; i < worker_table.size; ++i)
      if (!worker_table.name(i).empty()) out.push_back(worker(i));
    return out;
  }
  std::vector<BoardSnapshot> boards;
  double hashrate = 0;  // all workers
  std::vector<std::pair<double, double>> hashrate_history;  // (unix time, H/s), oldest first
  unsigned max_worker_labels = 100;
  LedgerSnapshot ledger;
  // The admin threads' own connection to the ledger (null when it is off).
  std::shared_ptr<LedgerReader> ledger_reader;
  std::shared_ptr<const EconomicsSnapshot> economics;  // null: no economics section
};

// The one place a snapshot changes hands: the loop stores, admin threads load.
class SnapshotBox {
 public:
  void store(std::shared_ptr<const Snapshot> s) {
    std::lock_guard<std::mutex> g(mu_);
    snap_ = std::move(s);
  }
  std::shared_ptr<const Snapshot> load() const {
    std::lock_guard<std::mutex> g(mu_);
    return snap_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snap_;
};

}  // namespace hashgate
