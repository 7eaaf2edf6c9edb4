// The gateway's lifecycle on a virtual clock: every phase, every transition,
// and the deadlines that end a wait (proxy/lifecycle.h).
#include "proxy/lifecycle.h"

#include <doctest/doctest.h>

#include <cstring>

using hashgate::Lifecycle;
using hashgate::Phase;
using Stop = Lifecycle::StopAction;

TEST_CASE("lifecycle: starting is not ready; listeners up is serving") {
  Lifecycle l;
  CHECK(l.phase() == Phase::kStarting);
  CHECK_FALSE(l.serving());
  CHECK_FALSE(l.stopping());
  REQUIRE(l.not_ready_reason() != nullptr);
  CHECK(std::strcmp(l.not_ready_reason(), "listeners not up") == 0);
  l.listeners_up();
  CHECK(l.phase() == Phase::kServing);
  CHECK(l.serving());
  CHECK(l.not_ready_reason() == nullptr);
  l.listeners_up();  // again: no change
  CHECK(l.phase() == Phase::kServing);
}

TEST_CASE("lifecycle: a stop with miners drains until they are gone or the drain time is over") {
  Lifecycle l;
  l.listeners_up();
  CHECK(l.stop(true, 100.0, 10.0) == Stop::kDrain);
  CHECK(l.phase() == Phase::kDraining);
  CHECK(l.stopping());
  CHECK(l.draining());
  CHECK_FALSE(l.serving());
  CHECK(std::strcmp(l.not_ready_reason(), "stopping") == 0);
  CHECK(l.drain_deadline() == doctest::Approx(110.0));
  CHECK_FALSE(l.drain_over(true, 109.9));
  CHECK(l.drain_over(true, 110.0));   // time is up
  CHECK(l.drain_over(false, 100.1));  // every miner left
  // Nothing else moves the phase while draining.
  CHECK_FALSE(l.close_miners(0, 200.0));
  CHECK_FALSE(l.finish(0, 200.0));
  CHECK(l.phase() == Phase::kDraining);
  CHECK(l.end_drain(104.0));
  CHECK(l.phase() == Phase::kFinishingShares);
  CHECK(l.stop_deadline() == doctest::Approx(104.0 + Lifecycle::kStopDeadlineSeconds));
  CHECK_FALSE(l.drain_over(false, 200.0));  // no longer draining
  CHECK_FALSE(l.end_drain(105.0));          // once only
  CHECK(l.stop_deadline() == doctest::Approx(109.0));
}

TEST_CASE("lifecycle: a second signal ends the drain; later ones do nothing") {
  Lifecycle l;
  l.listeners_up();
  REQUIRE(l.stop(true, 0.0, 10.0) == Stop::kDrain);
  CHECK(l.stop(true, 1.0, 10.0) == Stop::kEndDrain);
  CHECK(l.end_drain(1.0));
  CHECK(l.stop(true, 2.0, 10.0) == Stop::kNone);
  CHECK(l.phase() == Phase::kFinishingShares);
}

TEST_CASE("lifecycle: a stop with nobody to drain, or before the listeners are up, goes to finishing at once") {
  Lifecycle serving;
  serving.listeners_up();
  CHECK(serving.stop(false, 50.0, 10.0) == Stop::kFinish);
  CHECK(serving.phase() == Phase::kFinishingShares);
  CHECK(serving.stop_deadline() == doctest::Approx(55.0));
  CHECK_FALSE(serving.draining());

  Lifecycle starting;
  CHECK(starting.stop(true, 7.0, 10.0) == Stop::kFinish);  // miners or not: nothing was served
  CHECK(starting.phase() == Phase::kFinishingShares);
  CHECK(std::strcmp(starting.not_ready_reason(), "stopping") == 0);
  starting.listeners_up();  // too late: stays stopping
  CHECK(starting.phase() == Phase::kFinishingShares);
}

TEST_CASE("lifecycle: miners close once no share is hashing, or at the stop deadline") {
  Lifecycle l;
  l.listeners_up();
  REQUIRE(l.stop(false, 10.0, 10.0) == Stop::kFinish);  // deadline 15
  CHECK_FALSE(l.close_miners(3, 14.9));
  CHECK(l.phase() == Phase::kFinishingShares);
  CHECK_FALSE(l.finish(0, 14.9));  // answers are awaited only after the miners closed
  CHECK(l.close_miners(3, 15.0));  // the deadline: shares still hashing are given up
  CHECK(l.phase() == Phase::kAwaitingAnswers);
  CHECK_FALSE(l.close_miners(0, 15.0));  // once only

  Lifecycle quick;
  quick.listeners_up();
  REQUIRE(quick.stop(false, 10.0, 10.0) == Stop::kFinish);
  CHECK(quick.close_miners(0, 10.0));  // nothing hashing: at once
}

TEST_CASE("lifecycle: stopped once the pool answered every forwarded share, or at the same deadline") {
  Lifecycle l;
  l.listeners_up();
  REQUIRE(l.stop(true, 0.0, 2.0) == Stop::kDrain);
  REQUIRE(l.end_drain(2.0));  // deadline 7
  REQUIRE(l.close_miners(0, 2.0));
  CHECK_FALSE(l.finish(4, 6.9));
  CHECK(l.phase() == Phase::kAwaitingAnswers);
  CHECK(l.finish(4, 7.0));
  CHECK(l.phase() == Phase::kStopped);
  CHECK_FALSE(l.finish(0, 8.0));  // once only
  CHECK(l.stop(true, 9.0, 2.0) == Stop::kNone);
  CHECK(std::strcmp(hashgate::phase_name(l.phase()), "stopped") == 0);

  Lifecycle answered;
  answered.listeners_up();
  REQUIRE(answered.stop(false, 0.0, 2.0) == Stop::kFinish);
  REQUIRE(answered.close_miners(0, 0.0));
  CHECK(answered.finish(0, 0.5));  // every answer in: no wait for the deadline
}
