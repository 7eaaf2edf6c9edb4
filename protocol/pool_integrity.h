// Pool job integrity: what hashgate can tell from the jobs of all its pools
// together (issue 21). Sans-I/O: jobs, node tips and ticks come in with
// `now` (the loop's seconds) and `unix_now` (wall clock, for ntime); events
// come out through next_event(). The gateway logs them, counts them and acts
// on the ones that refuse a job or fail a pool.
//
// Chains: each pool mines one chain, declared (PoolRules::chain) or
// recognised: a pool joins the chain that already saw its previous block
// hash, or whose best height is within options.chain_height_window of its
// own. Pools are compared only within their chain.
//
// Tips: every (chain, previous block hash) a pool or the node worked on is a
// Tip. A tip is superseded when a higher one appears (by BIP34 height), when
// a pool leaves it for a new hash at an unknown height, or, with a node, when
// the node's best block at the same or a greater height is another hash. A
// pool still working on a superseded tip lags by the time since then.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hashing/bytes.h"
#include "protocol/coinbase.h"
#include "protocol/event_queue.h"
#include "protocol/stratum_codec.h"

namespace hashgate {

struct IntegrityOptions {
  double stale_grace_seconds = 30;  // on a superseded tip this long: flagged stale_tip
  double stale_move_seconds = 90;   // this long: the pool is failed (its miners move) when stale_move
  bool stale_move = false;          // false: flag only
  uint32_t ahead_blocks = 3;        // a tip this many blocks above every other source: flagged ahead
  uint32_t chain_height_window = 1000;  // recognising a chain: heights this close are one chain
  double ntime_window_seconds = 600;    // |ntime - local clock| beyond this: flagged ntime
  std::string node_chain;           // the node's chain; empty: recognised like a pool's
};

// The operator's rules for one pool.
struct PoolRules {
  std::string name;
  std::string chain;  // empty: recognised
  // Output scripts every coinbase must pay (value > 0), with the text the
  // operator wrote (an address or a script in hex) for the logs.
  std::vector<std::pair<Bytes, std::string>> required_outputs;
  bool lock_outputs = false;  // the output scripts first seen must stay
};

// What one job says, as the integrity checks need it.
struct JobFacts {
  Hash256 prevhash{};   // notify's form (each 4-byte word byte-swapped)
  uint32_t version = 0, nbits = 0, ntime = 0;
  std::optional<uint32_t> height;  // BIP34: the height of the block being mined
  bool coinbase_ok = false;
  std::string coinbase_error;      // when !coinbase_ok
  std::vector<CoinbaseOutput> outputs;
  // Bytes the extranonce may take in the input script before it passes
  // consensus' 100-byte limit (what the rest of the script leaves).
  std::optional<size_t> extranonce_room;
};

// Turns a pool's notify into JobFacts: assembles the coinbase with an
// all-zero extranonce of the connection's sizes and parses it.
JobFacts job_facts(const NotifyParams& n, size_t extranonce1_size, uint32_t extranonce2_size);

enum class IntegrityCheck : uint8_t {
  kStaleTip,           // working on a superseded tip past the grace
  kAhead,              // far above every other source of the chain
  kCoinbasePayout,     // a required output is missing
  kCoinbaseChanged,    // lock_outputs: the outputs changed
  kCoinbaseMalformed,  // the coinbase does not parse
  kNtime,              // ntime outside the window around the local clock
  kNbits,              // nbits differs from another job on the same tip
  kVersion,            // version or negotiated mask outside BIP9/BIP320
  kExtranonce,         // set_extranonce handing out an unusable space
  kCount
};
inline constexpr size_t kIntegrityChecks = size_t(IntegrityCheck::kCount);
const char* integrity_check_name(IntegrityCheck c);

enum class IntegrityAction : uint8_t {
  kFlag,      // counted, logged, the flag set
  kClear,     // the condition ended: the flag is cleared (not counted)
  kRefuseJob, // the job must not reach miners, and the pool is failed
  kFailPool,  // the pool's miners move (stale past stale_move_seconds)
};

struct IntegrityEvent {
  size_t pool = 0;
  IntegrityCheck check = IntegrityCheck::kStaleTip;
  IntegrityAction action = IntegrityAction::kFlag;
  std::vector<std::pair<std::string, std::string>> evidence;  // key, value: for the log line
};

// One pool as the checks see it, for /api/v1/pools and metrics.
struct PoolIntegrityView {
  std::string chain;
  bool has_tip = false;
  Hash256 prevhash{};              // notify's form
  std::optional<uint32_t> height;  // of the block being mined (tip + 1)
  double lag_seconds = 0;          // on a superseded tip this long
  std::optional<int64_t> lag_blocks;
  uint32_t flags = 0;              // bit (1 << IntegrityCheck)
  std::array<uint64_t, kIntegrityChecks> events{};
};

class IntegrityMonitor {
 public:
  IntegrityMonitor(IntegrityOptions opts, std::vector<PoolRules> pools);

  // A job from `pool`. Returns false when the job must be refused (a
  // kRefuseJob event says why); the caller then fails the pool.
  // `version_mask` is the mask negotiated on the connection (0: none).
  bool on_job(size_t pool, const JobFacts& job, uint32_t version_mask, double now, double unix_now);
  // A pool's mining.set_extranonce; false: the space is unusable (refuse it).
  bool on_set_extranonce(size_t pool, size_t extranonce1_size, uint32_t extranonce2_size);
  // The pool has no connection now: its tip is forgotten (not stale).
  void on_pool_down(size_t pool);
  // The node's best block (hash in RPC/display order) and height.
  void on_node_tip(const Hash256& best_display, uint32_t height, double now);
  // Re-evaluates tip agreement: stale flags, moves.
  void on_tick(double now);

  bool next_event(IntegrityEvent& out) { return events_.next(out); }
  PoolIntegrityView view(size_t pool, double now) const;
  size_t pool_count() const { return pools_.size(); }
  const PoolRules& rules(size_t pool) const { return pools_[pool].rules; }
  // The node's tip as last reported (height 0 and no chain: never).
  std::optional<uint32_t> node_height() const { return node_height_; }

 private:
  struct Tip {
    Hash256 prevhash{};
    std::optional<uint32_t> height;  // of this tip's block (job height - 1)
    double first_seen = 0;
    bool superseded = false;
    double superseded_at = 0;        // when, if superseded
    std::string superseded_by;       // the source that moved past it ("pool X", "node")
    std::optional<uint32_t> newer_height;
    Hash256 newer_hash{};
    uint32_t nbits = 0;              // the first job's on this tip (0: none yet)
    std::string nbits_from;
  };
  struct Chain {
    std::string name;
    std::deque<Tip> tips;  // oldest first, at most kMaxTips
    std::optional<uint32_t> best_height;
  };
  struct PoolState {
    PoolRules rules;
    std::string chain;  // empty: none yet
    bool has_tip = false;
    Hash256 prevhash{};
    std::optional<uint32_t> height;  // of the tip block
    uint32_t flags = 0;
    bool moved = false;  // failed for this stale tip already
    std::optional<std::vector<Bytes>> locked_scripts;
    std::optional<size_t> extranonce_room;  // from the last job's coinbase
    std::array<uint64_t, kIntegrityChecks> events{};
  };
  static constexpr size_t kMaxTips = 64;

  Chain& chain_for(const std::string& declared, const Hash256& prevhash, std::optional<uint32_t> tip_height,
                   const std::string& self);
  Tip* find_tip(Chain& c, const Hash256& prevhash);
  const Tip* find_tip(const Chain& c, const Hash256& prevhash) const;
  // Adds (or finds) a tip and applies what it supersedes.
  Tip& observe_tip(Chain& c, const Hash256& prevhash, std::optional<uint32_t> tip_height, const Hash256* previous,
                   const std::string& source, double now, bool authoritative);
  void evaluate(size_t pool, double now);
  void check_coinbase(size_t pool, const JobFacts& job, bool& refuse);
  void emit(size_t pool, IntegrityCheck c, IntegrityAction a, std::vector<std::pair<std::string, std::string>> ev);
  void set_flag(size_t pool, IntegrityCheck c, bool on, std::vector<std::pair<std::string, std::string>> ev);

  IntegrityOptions opts_;
  std::vector<PoolState> pools_;
  std::map<std::string, Chain> chains_;
  std::vector<std::string> chain_order_;  // recognition tries chains in creation order
  std::optional<uint32_t> node_height_;
  Hash256 node_tip_{};  // notify's form
  std::string node_chain_;
  EventQueue<IntegrityEvent> events_;
};

// Notify's prevhash form <-> display (RPC) order.
Hash256 prevhash_from_display(const Hash256& display);
std::string prevhash_display_hex(const Hash256& notify_form);
// "p2pkh:<hash160>", "p2wpkh:<...>", "op_return", or "script:<hex>": for logs.
std::string describe_script(std::span<const uint8_t> script);

}  // namespace hashgate
