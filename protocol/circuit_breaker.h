// A pool's circuit breaker: closed (in use) → open after N consecutive
// failures → half-open once an exponential, jittered, capped backoff has
// passed (one probe connection) → closed on success, open again (longer
// backoff) on failure. No I/O, no clock: time and randomness come in.
#pragma once

#include <cstdint>

namespace hashgate {

struct BreakerConfig {
  unsigned failures_to_open = 3;
  double backoff_initial_seconds = 1;
  double backoff_max_seconds = 60;
  double jitter = 0.2;  // each backoff is scaled by a factor in [1 - jitter, 1 + jitter]
};

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  explicit CircuitBreaker(const BreakerConfig& cfg) : cfg_(&cfg) {}

  // May a connection attempt start now? In half-open, only one (the probe).
  bool allow_attempt(double now);
  void on_attempt(double now);
  // `unit_random` in [0, 1) picks the jitter. A `severe` failure (the pool
  // works but cannot be used, e.g. it rejects our shares) opens at once.
  void on_failure(double now, double unit_random, bool severe = false);
  void on_success(double now);

  State state() const { return state_; }
  const char* state_name() const;
  unsigned consecutive_failures() const { return failures_; }
  double retry_at() const { return retry_at_; }
  // When the breaker last closed (for failback after a healthy period).
  double healthy_since() const { return healthy_since_; }

 private:
  const BreakerConfig* cfg_;
  State state_ = State::kClosed;
  unsigned failures_ = 0;
  unsigned opens_ = 0;
  double retry_at_ = 0;
  double healthy_since_ = -1;
  bool probing_ = false;
};

}  // namespace hashgate
