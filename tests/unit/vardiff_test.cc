// Vardiff on a virtual clock: a simulated miner of fixed hashrate finds
// shares as a Poisson process at the difficulty it is mining at, and takes a
// new difficulty only when the session re-sends the job (as cgminer and
// minerd do), shortly after vardiff changed it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "protocol/vardiff.h"

using namespace hashgate;

namespace {

struct Run {
  std::vector<std::pair<double, double>> changes;  // (time, difficulty set)
  std::vector<std::pair<double, double>> shares;   // (time, difficulty mined at)
};

// `hashrate` in difficulty units per second (a miner of hashrate H finds a
// share of difficulty d every d/H seconds on average).
Run simulate(double initial, double hashrate, double seconds, uint64_t seed, double apply_delay = 0.05) {
  VardiffConfig cfg{initial, 1e-3, 1e9, 10};
  Vardiff v(cfg, 0);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Run r;
  r.changes.emplace_back(0, v.difficulty());
  double mining = v.difficulty();
  double t = 0, next_tick = 1, apply_at = -1, pending = 0;
  auto changed = [&](std::optional<double> d) {
    if (!d) return;
    r.changes.emplace_back(t, *d);
    pending = *d;
    apply_at = t + apply_delay;
  };
  while (t < seconds) {
    // Memoryless: the next share is drawn again after every event.
    const double share_at = t - std::log(1 - u(rng)) * mining / hashrate;
    if (apply_at >= 0 && apply_at < share_at && apply_at <= next_tick) {
      t = apply_at;
      mining = pending;
      apply_at = -1;
    } else if (next_tick < share_at) {
      t = next_tick++;
      changed(v.on_tick(t));
    } else {
      t = share_at;
      r.shares.emplace_back(t, mining);
      changed(v.on_share(mining, t));
    }
  }
  return r;
}

// The first time after which every difficulty set keeps the share rate
// within +-50 % of the target (10 s), i.e. d in [H*10/1.5, H*10/0.5].
double settled_at(const Run& r, double ideal) {
  for (size_t i = 0; i < r.changes.size(); ++i) {
    bool ok = true;
    for (size_t j = i; j < r.changes.size(); ++j)
      ok = ok && r.changes[j].second >= ideal / 1.5 && r.changes[j].second <= ideal / 0.5;
    if (ok) return r.changes[i].first;
  }
  return -1;
}

// The settled difficulty: the time-weighted mean of the difficulty set over
// [from, to) (the estimate keeps moving within its no-change band; one final
// value is only one draw of it).
double settled_value(const Run& r, double from, double to) {
  double sum = 0;
  for (size_t i = 0; i < r.changes.size(); ++i) {
    const double a = std::max(from, r.changes[i].first);
    const double b = std::min(to, i + 1 < r.changes.size() ? r.changes[i + 1].first : to);
    if (b > a) sum += (b - a) * r.changes[i].second;
  }
  return sum / (to - from);
}

}  // namespace

TEST_CASE("vardiff settles from 1000x too low without overshooting") {
  const double hashrate = 100, ideal = 1000;  // 100 difficulty/s at a 10 s target: 1000
  double worst = 0, worst_ratio = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    Run r = simulate(ideal / 1000, hashrate, 3600, seed);
    const double at = settled_at(r, ideal);
    REQUIRE_MESSAGE(at >= 0, "seed " << seed << " never settled");
    worst = std::max(worst, at);
    const double final_d = settled_value(r, 1800, 3600);
    double highest = 0;
    for (auto& c : r.changes) highest = std::max(highest, c.second);
    // Rising from below: nothing set above what it settles at, but for the
    // noise of the estimate it settles on (issue 24 Must show 3: x 1.25).
    CHECK_MESSAGE(highest <= final_d * 1.25, "seed " << seed << ": set " << highest << ", settled at " << final_d);
    worst_ratio = std::max(worst_ratio, highest / final_d);
    // And never above the miner's true difficulty by more than that noise.
    CHECK(highest <= ideal * 1.25);
    // The share rate over the last half hour is within +-50 % of the target.
    const double n = double(std::count_if(r.shares.begin(), r.shares.end(), [](auto& s) { return s.first > 1800; }));
    CHECK(n / 1800 >= 0.1 / 1.5);
    CHECK(n / 1800 <= 0.1 * 1.5);
  }
  MESSAGE("from 1000x too low: settled within +-50 % of the target rate after at most " << worst
                                                                                      << " s (virtual clock, 8 seeds); highest set "
                                                                                      << worst_ratio << " x settled");
  CHECK(worst < 3600);
}

TEST_CASE("vardiff settles from 1000x too high without undershooting") {
  const double hashrate = 100, ideal = 1000;
  double worst = 0, worst_ratio = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    Run r = simulate(ideal * 1000, hashrate, 3600, seed);
    const double at = settled_at(r, ideal);
    REQUIRE_MESSAGE(at >= 0, "seed " << seed << " never settled");
    worst = std::max(worst, at);
    double lowest = 1e300;
    for (auto& c : r.changes) lowest = std::min(lowest, c.second);
    CHECK_MESSAGE(lowest >= ideal / 2, "seed " << seed << ": went down to " << lowest);
    // Coming down: once at the settled difficulty (x 1.25 for the noise of
    // the estimate), never set above it again (issue 24 Must show 3).
    const double final_d = settled_value(r, 1800, 3600);
    size_t down = 0;
    while (r.changes[down].second > final_d * 1.25) ++down;
    double highest_after = 0;
    for (size_t i = down; i < r.changes.size(); ++i) highest_after = std::max(highest_after, r.changes[i].second);
    CHECK_MESSAGE(down > 0, "seed " << seed << ": started at the settled difficulty");
    CHECK_MESSAGE(highest_after <= final_d * 1.25,
                  "seed " << seed << ": set " << highest_after << " after coming down, settled at " << final_d);
    worst_ratio = std::max(worst_ratio, highest_after / final_d);
    CHECK(final_d <= ideal / 0.5);
  }
  MESSAGE("from 1000x too high: settled after at most " << worst << " s (virtual clock, 8 seeds); highest set after "
          "coming down " << worst_ratio << " x settled");
  CHECK(worst < 3600);
}

TEST_CASE("vardiff measures shares at the difficulty they were mined at: a pending raise is not compounded") {
  VardiffConfig cfg{1, 1e-3, 1e9, 10};
  Vardiff v(cfg, 0);
  // 100 shares a second at difficulty 1: hashrate 100, ideal 1000.
  std::optional<double> first;
  double t = 0;
  while (!first) {
    t += 0.01;
    first = v.on_share(1, t);
  }
  CHECK(*first > 1);
  CHECK(*first <= 1000);
  // The miner has not applied it: shares keep coming at difficulty 1 for a
  // whole (long) job. The old code multiplied again per window, up to max.
  for (int i = 0; i < 3000; ++i) {
    t += 0.01;
    v.on_share(1, t);
    v.on_tick(t);
  }
  CHECK(v.difficulty() <= 1000 * 1.2);
  CHECK(v.difficulty() >= 1000 / 1.5);
}

TEST_CASE("vardiff: a high share rate raises at once; silence lowers; suggestions set a floor") {
  VardiffConfig cfg{16, 1, 1 << 20, 10};
  Vardiff v(cfg, 0);
  std::optional<double> d;
  int n = 0;
  for (double t = 0.01; !d && n < 30; t += 0.01, ++n) d = v.on_share(16, t);  // 100 shares/s at 16
  REQUIRE(d);
  CHECK(n <= 12);  // within a dozen shares, not after a window
  CHECK(*d > 16 * 10);
  Vardiff s(cfg, 0);
  CHECK(s.suggest(100, 0) == 100);
  CHECK(s.suggest(1e9, 0) == 1 << 20);
  s.suggest(50, 0);
  for (double t = 60; t < 2000; t += 60) s.on_tick(t);
  CHECK(s.difficulty() == 50);  // never under the miner's own suggestion
  Vardiff quiet(cfg, 0);
  std::optional<double> lower;
  for (double t = 1; t < 600 && !lower; t += 1) lower = quiet.on_tick(t);
  REQUIRE(lower);
  CHECK(*lower < 16);
}

TEST_CASE("vardiff: the pool's difficulty is a ceiling that wins over min and the floor") {
  VardiffConfig cfg{1024, 1, 1 << 20, 10};
  Vardiff v(cfg, 0);
  CHECK(v.set_ceiling(0.5));
  CHECK(v.difficulty() == 0.5);
  // Fast shares cannot raise it above the ceiling.
  for (double t = 0.001; t < 5; t += 0.001) v.on_share(0.5, t);
  CHECK(v.difficulty() == 0.5);
  // The pool raises its difficulty: the ceiling moves; vardiff may follow.
  CHECK_FALSE(v.set_ceiling(4096));
  for (double t = 5; t < 6; t += 0.001) v.on_share(0.5, t);
  CHECK(v.difficulty() > 0.5);
  CHECK(v.difficulty() <= 4096);
  CHECK_FALSE(v.set_ceiling(0));  // no difficulty known: no ceiling change
}

TEST_CASE("vardiff: a reconnecting worker resumes at its settled difficulty, within bounds") {
  VardiffConfig cfg{1024, 1, 1 << 20, 10};
  Vardiff v(cfg, 0);
  CHECK(v.resume(300, 5) == 300);
  CHECK_FALSE(v.settled());
  CHECK(v.resume(1e12, 5) == 1 << 20);
}
