// The gateway's lifecycle: one phase and every transition between them, in
// one place. Sans-I/O: the gateway reports events (listeners bound, a stop
// signal, miners gone, hashing and pool answers outstanding) with the loop's
// time, and the answer says what to do next. Nothing here touches a socket or
// reads a clock, so tests/unit/proxy/lifecycle_test.cc drives it on a
// virtual clock.
//
//   kStarting ──listeners_up──▶ kServing
//       │                          │ stop, miners connected
//       │ stop (nobody to drain)   ▼
//       │                      kDraining ──miners gone / drain time over / 2nd stop──┐
//       ▼                                                                           ▼
//   kFinishingShares ◀───────────────────────────────────────────────────────────────┘
//       │ no share being hashed, or the stop deadline
//       ▼
//   kAwaitingAnswers (miners closed) ──no forwarded share unanswered, or the deadline──▶ kStopped
#pragma once

#include <cstddef>
#include <cstdint>

namespace hashgate {

enum class Phase : uint8_t {
  kStarting,         // binding listeners: not ready
  kServing,          // accepting miners
  kDraining,         // stop signal: miners told to reconnect, served until they go or the drain time ends
  kFinishingShares,  // no new shares; the ones received are hashed and answered
  kAwaitingAnswers,  // miners closed; the pool's answers to forwarded shares are awaited
  kStopped,          // every handle released
};

const char* phase_name(Phase p);

class Lifecycle {
 public:
  // How long shares being hashed and the pool's answers are waited for once
  // the drain is over.
  static constexpr double kStopDeadlineSeconds = 5;

  Phase phase() const { return phase_; }
  // Past kServing: no new connection is accepted, no pool is failed over.
  bool stopping() const { return phase_ > Phase::kServing; }
  bool draining() const { return phase_ == Phase::kDraining; }
  // Listeners up and not stopping (the snapshot's listeners_up).
  bool serving() const { return phase_ == Phase::kServing; }
  // Why /readyz says no on account of the lifecycle; nullptr when it does not.
  const char* not_ready_reason() const;

  // kStarting → kServing.
  void listeners_up();

  // A stop signal (SIGINT/SIGTERM).
  enum class StopAction : uint8_t {
    kNone,      // already past the drain: nothing more to do
    kDrain,     // the first signal, miners connected: kDraining; tell them to reconnect, wait for them
    kFinish,    // the first signal, nobody to drain: kFinishingShares at once
    kEndDrain,  // a second signal while draining: no more waiting for miners to leave
  };
  // `have_miners`: any miner connected; `now`: the loop's time.
  StopAction stop(bool have_miners, double now, double drain_seconds);
  // While draining: true when the drain is over (no miner left, or its time is up).
  bool drain_over(bool have_miners, double now) const;
  // kDraining → kFinishingShares, with the stop deadline from `now`; false
  // (and nothing changes) when not draining.
  bool end_drain(double now);
  // kFinishingShares: true (and kAwaitingAnswers) once no share is being
  // hashed or the deadline passed; the gateway then closes every miner.
  bool close_miners(size_t shares_hashing, double now);
  // kAwaitingAnswers: true (and kStopped) once no forwarded share waits for
  // the pool or the deadline passed; the gateway then releases its handles.
  bool finish(size_t answers_pending, double now);

  double drain_deadline() const { return drain_deadline_; }
  double stop_deadline() const { return stop_deadline_; }

 private:
  Phase phase_ = Phase::kStarting;
  double drain_deadline_ = 0;
  double stop_deadline_ = 0;
};

}  // namespace hashgate
