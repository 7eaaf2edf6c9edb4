// The farm's economics, run by the loop once a second (at each snapshot):
// values every pool's current job (network difficulty from nbits, block
// value from the coinbase outputs), reads the price feed, prices the power,
// and runs the profit guard of every local board listed under
// economics.boards. It publishes an immutable EconomicsSnapshot; readers
// (admin API, metrics, dashboard) turn any difficulty rate into coins and
// money with it, so a worker's figures cost nothing on the loop.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/economics.h"
#include "proxy/price_feed.h"
#include "proxy/snapshot.h"

namespace hashgate {

struct Job;

struct BoardEconomics {
  std::string name;
  double watts = 0;
  bool pinned = false;
  std::string guard_state = "mining";  // mining | paused
  uint64_t pauses = 0, resumes = 0;
  double hashrate = 0;         // H/s while mining (accepted difficulty over time spent mining)
  double coins_per_day = 0;
  std::optional<double> earnings_per_hour, cost_per_hour;  // in the price's currency
  double efficiency = 0;       // J/TH (sha256d) or J/MH (scrypt); 0 without a hashrate
  double pending_seconds = 0;  // how long the condition for the next change has held
  std::string last_change;     // "paused: unprofitable" ...
  double last_change_unix = 0;
};

struct EconomicsSnapshot {
  std::string algorithm;
  std::string efficiency_unit;
  double hashes_per_difficulty = 0;
  PriceStatus price;
  double price_age_seconds = -1;      // -1: fixed or never fetched
  std::optional<double> power_price_per_kwh;  // now (tariff applied)
  conf::ProfitGuardConfig guard;
  std::vector<conf::MinerGroup> groups;
  std::vector<Valuation> pools;       // in config order; invalid when a pool has no job
  Valuation reference;                // the active pool's: what worker figures use
  std::vector<BoardEconomics> boards;
  uint64_t guard_pauses_total = 0, guard_resumes_total = 0;

  // Coins a day for a hashrate (H/s) at the reference valuation.
  double coins_per_day(double hashrate) const { return coins_per_day_at(hashrate, reference); }
  double coins_per_day_at(double hashrate, const Valuation& v) const {
    return hashes_per_difficulty > 0 ? hashgate::coins_per_day(hashrate / hashes_per_difficulty, v) : 0;
  }
  const Valuation* pool(const std::string& name) const;
};

class FarmEconomics {
 public:
  FarmEconomics(Algorithm algo, const conf::Economics& cfg);
  ~FarmEconomics();
  void configure(const conf::Economics& cfg);  // SIGHUP

  struct PoolInput {
    std::string name;
    std::shared_ptr<const Job> job;  // the pool's newest job; null: none
    bool active = false;
  };
  struct Result {
    std::shared_ptr<const EconomicsSnapshot> snapshot;
    std::vector<std::pair<std::string, bool>> pause;  // board name -> paused, for changes only
  };
  // `now` is the loop's steady clock (the guard's windows), `unix` wall time
  // (the tariff's hour, the price's age).
  Result update(double now, double unix, const std::vector<PoolInput>& pools, const std::vector<BoardSnapshot>& boards);

 private:
  struct BoardState {
    explicit BoardState(const conf::ProfitGuardConfig& g) : guard(g) {}
    ProfitGuard guard;
    double mining_seconds = 0;
    double mining_difficulty = 0;   // accepted difficulty counted while mining
    double last_difficulty = 0;
    double last_at = 0;
    bool last_mining = false;
    std::string last_change;
    double last_change_unix = 0;
  };

  Algorithm algo_;
  conf::Economics cfg_;
  PriceFeed price_;
  std::map<std::string, Valuation> valued_;  // pool name -> valuation of its newest job
  std::map<std::string, BoardState> boards_;
  uint64_t pauses_ = 0, resumes_ = 0;
};

}  // namespace hashgate
