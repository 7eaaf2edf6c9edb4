#include "protocol/vardiff.h"

#include <algorithm>
#include <cmath>

namespace hashgate {
namespace {
// Changes smaller than this are not worth a set_difficulty.
constexpr double kMinChange = 0.2;
// Width of the confidence bounds on the share count, in standard deviations
// (Poisson: sqrt(n)): raising needs the lower bound above the band, lowering
// the upper bound under it (wider: a lowering once settled is mostly noise).
// kZeroBound is the upper bound on the count when none came (P(0) = e^-4).
// Chosen on the virtual clock (tests/unit/vardiff_test.cc).
constexpr double kSigmasUp = 2.0;
constexpr double kSigmasDown = 3.0;
constexpr double kZeroBound = 4.0;
// Shares in the statistics before they may be restarted to follow a changed
// hashrate: fewer leave the bounds so wide that the difficulty stays far
// under the target (measured on the virtual clock: 12 left sessions at
// 1.5x the target share rate).
constexpr unsigned kSharesForRestart = 48;
// Shares before the difficulty counts as settled.
constexpr unsigned kSharesForSettled = 12;
}  // namespace

Vardiff::Vardiff(const VardiffConfig& cfg, double now)
    : cfg_(&cfg), diff_(0), floor_(cfg.min), in_force_(0), window_start_(now), exposure_at_(now) {
  diff_ = clamp(cfg.initial);
  in_force_ = diff_;
}

double Vardiff::clamp(double d) const {
  d = std::min(std::clamp(d, std::max(cfg_->min, floor_), cfg_->max), ceiling_);
  // The firmware's own limits win over the ceiling: work it cannot do at
  // all loses more than work the pool credits at its own difficulty.
  return shape_ ? shape_->shape(d) : d;
}

void Vardiff::set_shape(const FirmwareProfile* p) {
  shape_ = p;
  diff_ = clamp(diff_);
  in_force_ = diff_;
}

void Vardiff::advance(double now) {
  if (now > exposure_at_) exposure_ += (now - exposure_at_) / in_force_;
  exposure_at_ = std::max(exposure_at_, now);
}

void Vardiff::restart(double now) {
  window_start_ = now;
  exposure_ = 0;
  exposure_at_ = now;
  shares_ = 0;
}

double Vardiff::suggest(double d, double now) {
  floor_ = std::clamp(d, cfg_->min, cfg_->max);
  diff_ = clamp(d);
  restart(now);
  settled_ = false;
  return diff_;
}

double Vardiff::resume(double d, double now) {
  diff_ = clamp(d);
  in_force_ = diff_;
  restart(now);
  settled_ = false;
  return diff_;
}

bool Vardiff::set_ceiling(double ceiling) {
  if (!(ceiling > 0) || ceiling == ceiling_) return false;
  ceiling_ = ceiling;
  const double d = clamp(diff_);
  if (d >= diff_) return false;
  diff_ = d;
  in_force_ = std::min(in_force_, d);
  settled_ = false;
  return true;
}

std::optional<double> Vardiff::change_to(double d, double now) {
  advance(now);
  // The statistics stay: they measured the miner, not the difficulty. A
  // lower difficulty is in force at once (the session re-sends the job with
  // it, and shares are judged at it); a higher one only once shares show it.
  diff_ = d;
  in_force_ = std::min(in_force_, d);
  settled_ = false;
  return diff_;
}

std::optional<double> Vardiff::on_share(double mined_difficulty, double now) {
  advance(now);
  ++shares_;
  if (mined_difficulty > 0) in_force_ = mined_difficulty;
  return retarget(now, true);
}

std::optional<double> Vardiff::on_tick(double now) {
  advance(now);
  return retarget(now, false);
}

std::optional<double> Vardiff::retarget(double now, bool on_share) {
  if (exposure_ <= 0) return std::nullopt;
  const double n = shares_;
  // At a share's arrival the interval ends on an event: n-1 shares over it
  // estimate the rate without bias.
  const double count = on_share ? n - 1 : n;
  const double lo_count = std::max(0.0, count - kSigmasUp * std::sqrt(count));
  const double hi_count = count > 0 ? count + kSigmasDown * std::sqrt(count) + 1 : kZeroBound;
  const double t = cfg_->target_share_seconds;
  // Hashrate in difficulty units per second is count / exposure.
  const double up = clamp(lo_count / exposure_ * t);
  const double down = clamp(hi_count / exposure_ * t);
  if (up > diff_ * (1 + kMinChange)) return change_to(up, now);
  if (down < diff_ * (1 - kMinChange)) return change_to(down, now);
  if (shares_ >= kSharesForSettled) settled_ = true;
  if (now - window_start_ >= t * cfg_->retarget_window_intervals && shares_ >= kSharesForRestart) restart(now);
  return std::nullopt;
}

}  // namespace hashgate
