#include "protocol/vardiff.h"

#include <algorithm>
#include <cmath>

namespace hashgate {
namespace {
// Enough shares in the window to trust the rate; and the largest step one
// retarget may take (so one lucky burst cannot swing it far).
constexpr unsigned kSharesForRetarget = 12;
constexpr double kMaxStep = 4.0;
// Changes smaller than this are not worth a set_difficulty.
constexpr double kMinChange = 0.2;
}  // namespace

Vardiff::Vardiff(const VardiffConfig& cfg, double now)
    : cfg_(&cfg), diff_(0), floor_(cfg.min), window_start_(now) {
  diff_ = clamp(cfg.initial);
}

double Vardiff::clamp(double d) const { return std::clamp(d, std::max(cfg_->min, floor_), cfg_->max); }

double Vardiff::suggest(double d, double now) {
  floor_ = std::clamp(d, cfg_->min, cfg_->max);
  diff_ = clamp(d);
  window_start_ = now;
  shares_ = 0;
  return diff_;
}

std::optional<double> Vardiff::on_share(double now) {
  ++shares_;
  if (shares_ >= kSharesForRetarget) return retarget(now);
  return std::nullopt;
}

std::optional<double> Vardiff::on_tick(double now) {
  if (now - window_start_ >= cfg_->target_share_seconds * cfg_->retarget_window_intervals) return retarget(now);
  return std::nullopt;
}

std::optional<double> Vardiff::retarget(double now) {
  double elapsed = std::max(now - window_start_, 1e-3);
  // With no share in the window, assume one was just about to arrive: the
  // rate is at most one share per window.
  double rate = std::max<double>(shares_, 0.5) / elapsed;  // shares per second
  double wanted = diff_ * rate * cfg_->target_share_seconds;
  wanted = std::clamp(wanted, diff_ / kMaxStep, diff_ * kMaxStep);
  wanted = clamp(wanted);
  window_start_ = now;
  shares_ = 0;
  if (std::fabs(wanted - diff_) <= kMinChange * diff_) return std::nullopt;
  diff_ = wanted;
  return diff_;
}

}  // namespace hashgate
