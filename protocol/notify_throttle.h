// A pool's notify flood (issue 17.11): a broken or hostile pool can send
// clean jobs faster than any miner can use them (180 a second were seen).
// Each one passed on means a write to every session and every miner
// throwing its work away. NotifyThrottle decides, per pool connection, which
// jobs go to the miners: a job after a quiet spell goes at once; inside the
// spell the newest one is held, replaces any held before it, and goes when
// the spell is over. Miners so get at most one job per interval, always the
// newest (never one a later job made stale), never later than one interval
// after it came, and clean whenever one of the jobs it stands for was clean.
// Sans-I/O: the caller passes the time and runs the timer.
#pragma once

#include <cstdint>
#include <optional>

#include "protocol/job.h"

namespace hashgate {

class NotifyThrottle {
 public:
  // Real pools send a job every few seconds at most (a new block, a fee
  // update): 0.25 s holds nothing a real pool sends back, and caps a flood
  // at four jobs a second per connection.
  static constexpr double kDefaultInterval = 0.25;

  explicit NotifyThrottle(double min_interval = kDefaultInterval) : interval_(min_interval) {}

  // A job arrived at `now`: true when it goes to the miners now; false when
  // it is held (due_at() says until when).
  bool offer(const JobRef& job, double now);

  struct Release {
    JobRef job;
    bool force_clean = false;  // a job it replaced was clean
  };
  // The held job once its time has come; nothing before that, or when none is held.
  std::optional<Release> take_due(double now);

  // When the held job is due; 0 when none is held.
  double due_at() const { return held_ ? last_sent_ + interval_ : 0; }
  // Jobs never passed on because a newer one replaced them.
  uint64_t coalesced() const { return coalesced_; }
  // The connection's jobs were retired (closed, new extranonce): drop the held one.
  void clear() { held_.reset(); held_clean_ = false; }

 private:
  double interval_;
  double last_sent_ = -1e300;
  JobRef held_;
  bool held_clean_ = false;
  uint64_t coalesced_ = 0;
};

}  // namespace hashgate
