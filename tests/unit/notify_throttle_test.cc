// NotifyThrottle on a virtual clock (issue 17.11, a pool's notify flood):
// a quiet pool's jobs pass at once; a flood reaches miners at most once per
// interval, always as its newest job, never later than one interval, and
// clean when any job it stands for was clean.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "protocol/notify_throttle.h"

using namespace hashgate;

namespace {

JobRef make_job(uint64_t seq, bool clean) {
  auto j = std::make_shared<Job>();
  j->seq = seq;
  j->params.clean_jobs = clean;
  return j;
}

}  // namespace

TEST_CASE("notify throttle: a pool sending a job every few seconds is never held") {
  NotifyThrottle t(0.25);
  for (int i = 0; i < 50; ++i) {
    CHECK(t.offer(make_job(uint64_t(i + 1), i % 3 == 0), 10.0 + 2.0 * i));
    CHECK(t.due_at() == 0);
  }
  CHECK(t.coalesced() == 0);
}

TEST_CASE("notify throttle: interval 0 (limits.pool_job_interval_seconds: 0) passes every job of a flood") {
  NotifyThrottle t(0);
  for (int i = 0; i < 180; ++i) {
    CHECK(t.offer(make_job(uint64_t(i + 1), true), 10.0 + i / 180.0));
    CHECK(t.due_at() == 0);
  }
  CHECK(t.coalesced() == 0);
}

TEST_CASE("notify throttle: 180 clean jobs a second reach miners as the newest, at most 4 a second, delayed by at most the interval") {
  const double interval = 0.25;
  NotifyThrottle t(interval);
  double now = 100;
  uint64_t seq = 0, sent = 0, newest_sent = 0;
  double worst_delay = 0;
  std::map<uint64_t, double> arrived;
  // The caller's loop: a timer fires at due_at(); jobs arrive every 1/180 s.
  double timer = 0;
  const double step = 1.0 / 180;
  for (int i = 0; i < 180 * 10; ++i) {
    now += step;
    if (timer > 0 && now >= timer) {
      auto r = t.take_due(timer);
      REQUIRE(r);
      // Always the newest job that had arrived, and clean (every job of the flood was).
      CHECK(r->job->seq == seq);
      CHECK(r->force_clean);
      worst_delay = std::max(worst_delay, timer - arrived[r->job->seq]);
      newest_sent = r->job->seq;
      ++sent;
      timer = 0;
    }
    arrived[++seq] = now;
    if (t.offer(make_job(seq, true), now)) {
      ++sent;
      newest_sent = seq;
    } else {
      CHECK(t.due_at() > 0);
      CHECK(t.due_at() <= now + interval + 1e-9);
      timer = t.due_at();
    }
  }
  // 10 s of flood: about 4 jobs a second went out instead of 180.
  CHECK(sent >= 38);
  CHECK(sent <= 41);
  CHECK(worst_delay <= interval + 1e-9);
  CHECK(t.coalesced() == seq - sent - (t.due_at() > 0 ? 1 : 0));
  CHECK(newest_sent >= seq - 46);
}

TEST_CASE("notify throttle: a held clean job replaced by a plain one goes out clean") {
  NotifyThrottle t(0.25);
  CHECK(t.offer(make_job(1, false), 0));
  CHECK_FALSE(t.offer(make_job(2, true), 0.05));
  CHECK_FALSE(t.offer(make_job(3, false), 0.10));
  CHECK(t.due_at() == doctest::Approx(0.25));
  CHECK_FALSE(t.take_due(0.2));  // not yet
  auto r = t.take_due(0.25);
  REQUIRE(r);
  CHECK(r->job->seq == 3);
  CHECK(r->force_clean);  // job 2 voided job 1, which the miners still have
  CHECK(t.coalesced() == 1);
  CHECK(t.due_at() == 0);
  CHECK_FALSE(t.take_due(10));

  // Plain jobs only: released plain.
  CHECK_FALSE(t.offer(make_job(4, false), 0.3));
  auto r2 = t.take_due(0.5);
  REQUIRE(r2);
  CHECK(r2->job->seq == 4);
  CHECK_FALSE(r2->force_clean);
}

TEST_CASE("notify throttle: clear drops the held job (its connection's jobs were retired)") {
  NotifyThrottle t(0.25);
  CHECK(t.offer(make_job(1, true), 0));
  CHECK_FALSE(t.offer(make_job(2, true), 0.1));
  t.clear();
  CHECK(t.due_at() == 0);
  CHECK_FALSE(t.take_due(1));
  // The spell still counts from the last job sent.
  CHECK(t.offer(make_job(3, true), 0.3));
}
