#include "protocol/notify_throttle.h"

namespace hashgate {

bool NotifyThrottle::offer(const JobRef& job, double now) {
  if (held_) {
    // Replaced before it was sent: the newer job is what miners need, and a
    // clean flag on the replaced one still holds (its predecessors are void).
    ++coalesced_;
    held_clean_ = held_clean_ || job->params.clean_jobs;
    held_ = job;
    return false;
  }
  if (now - last_sent_ >= interval_) {
    last_sent_ = now;
    return true;
  }
  held_ = job;
  held_clean_ = job->params.clean_jobs;
  return false;
}

std::optional<NotifyThrottle::Release> NotifyThrottle::take_due(double now) {
  if (!held_ || now < last_sent_ + interval_) return std::nullopt;
  Release r{std::move(held_), held_clean_};
  held_.reset();
  held_clean_ = false;
  last_sent_ = now;
  return r;
}

}  // namespace hashgate
