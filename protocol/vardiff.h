// Per-session variable difficulty: aims at a configured interval between
// shares, within bounds. Time is passed in (seconds, monotonic); no clock.
#pragma once

#include <optional>

namespace hashgate {

struct VardiffConfig {
  double initial = 1024;
  double min = 1;
  double max = 4194304;
  double target_share_seconds = 10;
  // A retarget looks at this many target intervals' worth of shares at most.
  double retarget_window_intervals = 6;
};

class Vardiff {
 public:
  Vardiff(const VardiffConfig& cfg, double now);

  double difficulty() const { return diff_; }
  // The miner asked for a difficulty: use it (within bounds) and keep it as
  // the floor for later retargets.
  double suggest(double d, double now);
  // An accepted share; returns a new difficulty when a retarget is due.
  std::optional<double> on_share(double now);
  // Periodic check so that silent sessions get an easier difficulty.
  std::optional<double> on_tick(double now);

 private:
  std::optional<double> retarget(double now);
  double clamp(double d) const;

  const VardiffConfig* cfg_;
  double diff_;
  double floor_;
  double window_start_;
  unsigned shares_ = 0;
};

}  // namespace hashgate
