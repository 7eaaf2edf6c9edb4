// Per-session variable difficulty: aims at a configured interval between
// shares, within bounds. Time is passed in (seconds, monotonic); no clock.
//
// The miner's hashrate is estimated from what its shares really prove: the
// count of shares over the time integral of 1/difficulty, each stretch of
// time at the difficulty the miner was mining at then (a share says which:
// the difficulty sent with its job). A change not yet in force at the miner
// is therefore never multiplied again by the shares still coming at the old
// difficulty. Steps use a confidence bound on that estimate (raises from
// its lower bound, lowerings from its upper bound), so a new session
// approaches the target rate from one side without overshooting it.
#pragma once

#include <limits>
#include <optional>

#include "protocol/firmware_profile.h"

namespace hashgate {

struct VardiffConfig {
  double initial = 1024;
  double min = 1;
  double max = 4194304;
  double target_share_seconds = 10;
  // Statistics are restarted after this many target intervals (once they
  // hold enough shares), so a changed hashrate is followed.
  double retarget_window_intervals = 6;
};

class Vardiff {
 public:
  Vardiff(const VardiffConfig& cfg, double now);

  // The difficulty for new work.
  double difficulty() const { return diff_; }
  // The miner asked for a difficulty: use it (within bounds) and keep it as
  // the floor for later retargets.
  double suggest(double d, double now);
  // Starts from a difficulty known to suit this worker (it settled there on
  // an earlier connection), within bounds.
  double resume(double d, double now);
  // The difficulty of the pool connection that gets this session's shares:
  // never exceeded (a share above it is credited only at the pool's
  // difficulty). Wins over the floor and `min`. True when it lowered difficulty().
  bool set_ceiling(double ceiling);
  double ceiling() const { return ceiling_; }
  // The miner's firmware takes only some difficulties (integers, powers of
  // two, a minimum): every difficulty is shaped by its profile last, so the
  // miner works exactly at what it is told. Null: any positive number.
  // Call before the first difficulty is announced (or when the next
  // announcement is a fresh one): the shaped value is taken as in force.
  void set_shape(const FirmwareProfile* p);
  // An accepted share that was mined at `mined_difficulty`; returns the new
  // difficulty when it changed.
  std::optional<double> on_share(double mined_difficulty, double now);
  // Periodic check, so that a session with few or no shares gets easier work.
  std::optional<double> on_tick(double now);
  // Whether the statistics have seen enough to call the difficulty settled
  // (the estimate's bounds both lie within the no-change band).
  bool settled() const { return settled_; }

 private:
  std::optional<double> retarget(double now, bool on_share);
  void advance(double now);
  void restart(double now);
  double clamp(double d) const;
  std::optional<double> change_to(double d, double now);

  const VardiffConfig* cfg_;
  double diff_;
  double floor_;
  double ceiling_ = std::numeric_limits<double>::infinity();
  const FirmwareProfile* shape_ = nullptr;
  double in_force_;         // the difficulty the miner is mining at, as far as shares show
  double window_start_;
  double exposure_ = 0;     // integral of dt / in_force_ since window_start_
  double exposure_at_;
  unsigned shares_ = 0;
  bool settled_ = false;
};

}  // namespace hashgate
