#include "protocol/circuit_breaker.h"

#include <algorithm>
#include <cmath>

namespace hashgate {

bool CircuitBreaker::allow_attempt(double now) {
  switch (state_) {
    case State::kClosed:
      return now >= retry_at_;
    case State::kOpen:
      if (now < retry_at_) return false;
      state_ = State::kHalfOpen;
      probing_ = false;
      [[fallthrough]];
    case State::kHalfOpen:
      return !probing_;
  }
  return false;
}

void CircuitBreaker::on_attempt(double) {
  if (state_ == State::kHalfOpen) probing_ = true;
}

void CircuitBreaker::on_failure(double now, double unit_random, bool severe) {
  ++failures_;
  if (severe) failures_ = std::max(failures_, cfg_->failures_to_open);
  healthy_since_ = -1;
  probing_ = false;
  if (state_ == State::kHalfOpen || failures_ >= cfg_->failures_to_open) {
    state_ = State::kOpen;
    ++opens_;
  }
  // Closed: retry soon (the first failures may be a blip). Open: back off
  // exponentially with each reopening, jittered so pools are not hit in step.
  double base = state_ == State::kOpen
                    ? cfg_->backoff_initial_seconds * std::pow(2.0, double(std::min(opens_ - 1, 30u)))
                    : cfg_->backoff_initial_seconds * 0.5;
  base = std::min(base, cfg_->backoff_max_seconds);
  double factor = 1 + cfg_->jitter * (2 * unit_random - 1);
  retry_at_ = now + base * factor;
}

void CircuitBreaker::on_success(double now) {
  if (state_ != State::kClosed || healthy_since_ < 0) healthy_since_ = now;
  state_ = State::kClosed;
  failures_ = 0;
  opens_ = 0;
  probing_ = false;
  retry_at_ = 0;
}

const char* CircuitBreaker::state_name() const {
  switch (state_) {
    case State::kClosed: return "closed";
    case State::kOpen: return "open";
    case State::kHalfOpen: return "half-open";
  }
  return "?";
}

}  // namespace hashgate
