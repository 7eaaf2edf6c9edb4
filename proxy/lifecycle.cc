#include "proxy/lifecycle.h"

namespace hashgate {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kStarting: return "starting";
    case Phase::kServing: return "serving";
    case Phase::kDraining: return "draining";
    case Phase::kFinishingShares: return "finishing_shares";
    case Phase::kAwaitingAnswers: return "awaiting_answers";
    case Phase::kStopped: return "stopped";
  }
  return "?";
}

const char* Lifecycle::not_ready_reason() const {
  switch (phase_) {
    case Phase::kStarting: return "listeners not up";
    case Phase::kServing: return nullptr;
    default: return "stopping";
  }
}

void Lifecycle::listeners_up() {
  if (phase_ == Phase::kStarting) phase_ = Phase::kServing;
}

Lifecycle::StopAction Lifecycle::stop(bool have_miners, double now, double drain_seconds) {
  switch (phase_) {
    case Phase::kStarting:
    case Phase::kServing:
      if (phase_ == Phase::kStarting || !have_miners) {
        // Nothing was served, or nobody is left to drain.
        phase_ = Phase::kFinishingShares;
        stop_deadline_ = now + kStopDeadlineSeconds;
        return StopAction::kFinish;
      }
      phase_ = Phase::kDraining;
      drain_deadline_ = now + drain_seconds;
      return StopAction::kDrain;
    case Phase::kDraining:
      return StopAction::kEndDrain;
    case Phase::kFinishingShares:
    case Phase::kAwaitingAnswers:
    case Phase::kStopped:
      break;
  }
  return StopAction::kNone;
}

bool Lifecycle::drain_over(bool have_miners, double now) const {
  return phase_ == Phase::kDraining && (!have_miners || now >= drain_deadline_);
}

bool Lifecycle::end_drain(double now) {
  if (phase_ != Phase::kDraining) return false;
  phase_ = Phase::kFinishingShares;
  stop_deadline_ = now + kStopDeadlineSeconds;
  return true;
}

bool Lifecycle::close_miners(size_t shares_hashing, double now) {
  if (phase_ != Phase::kFinishingShares) return false;
  if (shares_hashing > 0 && now < stop_deadline_) return false;
  phase_ = Phase::kAwaitingAnswers;
  return true;
}

bool Lifecycle::finish(size_t answers_pending, double now) {
  if (phase_ != Phase::kAwaitingAnswers) return false;
  if (answers_pending > 0 && now < stop_deadline_) return false;
  phase_ = Phase::kStopped;
  return true;
}

}  // namespace hashgate
