// Economics without I/O: what a job says a share is worth, what power costs
// at an hour, and the profit guard's state machine for one board. Time is an
// argument; nothing here reads a clock, a socket or the loop, so unit tests
// drive it on a virtual clock (tests/unit/economics_test.cc).
//
// Expected earnings: a share of difficulty d is d / D of a block on average,
// where D is the network difficulty in the same units (both are diff1 /
// target for the configured algorithm), so a stream of accepted difficulty
// r per second earns r * 86400 / D * block_value coins a day.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "hashing/target.h"
#include "protocol/firmware_profile.h"  // glob_match, for economics.groups
#include "proxy/guard.h"                // Cidr, for economics.groups

namespace hashgate {

struct Job;

// What a pool's current job says a share is worth.
struct Valuation {
  std::string pool;
  uint64_t job_seq = 0;
  double network_difficulty = 0;  // diff1 / target(nbits), share-difficulty units
  uint64_t block_value = 0;       // the coinbase outputs' total: subsidy + fees (1e-8 coins)
  std::optional<uint32_t> height; // BIP34, when the coinbase carries it
  std::string error;              // why a job could not be valued (coinbase parse error)
  bool valid() const { return network_difficulty > 0 && block_value > 0; }
};

// The job's nbits and coinbase (any extranonce2: it does not change outputs).
Valuation value_job(Algorithm algo, const Job& job);
// diff1 / target for the algorithm: Litecoin's nbits 0x1e0ffff0 is 16 for scrypt.
double network_difficulty(Algorithm algo, uint32_t nbits);

// Coins a day for `difficulty_per_second` of shares; 0 when `v` is not valid.
double coins_per_day(double difficulty_per_second, const Valuation& v);

// Whether a worker belongs to a miner group: its name matches one of the
// group's patterns, its last session's address is in one of its CIDRs, or
// its firmware profile is one of its profiles.
bool miner_group_matches(const conf::MinerGroup& g, std::string_view worker, std::string_view profile,
                         const std::optional<Address>& address);

// The price of a kWh at a Unix time (the first tariff band containing the
// local hour, else price_per_kwh); nullopt when no power price is set.
std::optional<double> power_price_at(const conf::Power& p, double unix_time);
inline double power_cost_per_hour(double watts, double price_per_kwh) { return watts / 1000.0 * price_per_kwh; }
// Joules per unit of work: J/TH for sha256d, J/MH for scrypt; 0 without a hashrate.
double efficiency(Algorithm algo, double watts, double hashes_per_second);
const char* efficiency_unit(Algorithm algo);

// One board's guard. Mining: earnings/hour below cost/hour * margin without
// a break for window_seconds pauses it. Paused: earnings/hour at or above
// cost/hour * resume_margin without a break for window_seconds resumes it.
// A sample on the other side restarts the count, so nothing inside the
// window or inside the band between the margins changes the state. No
// figures (no price, no valuation, no hashrate yet): the count restarts and
// the state holds. A pinned board, or a disabled guard, mines.
class ProfitGuard {
 public:
  enum class State { kMining, kPaused };
  struct Figures {
    double earnings_per_hour = 0;  // in the price's currency
    double cost_per_hour = 0;
  };
  struct Change {
    State to = State::kMining;
    Figures figures;
    double threshold_per_hour = 0;  // cost * the margin that decided
    double held_seconds = 0;        // how long the condition held
    const char* reason = "";        // unprofitable | profitable | pinned | guard_disabled
  };

  explicit ProfitGuard(const conf::ProfitGuardConfig& cfg) : cfg_(cfg) {}
  void configure(const conf::ProfitGuardConfig& cfg) { cfg_ = cfg; }
  std::optional<Change> update(double now, std::optional<Figures> figures, bool pinned);

  State state() const { return state_; }
  bool paused() const { return state_ == State::kPaused; }
  uint64_t pauses() const { return pauses_; }
  uint64_t resumes() const { return resumes_; }
  // When the current condition started holding (nullopt: it does not hold).
  std::optional<double> pending_since() const { return since_; }

 private:
  std::optional<Change> go(State to, const Figures& f, double threshold, double held, const char* reason);

  conf::ProfitGuardConfig cfg_;
  State state_ = State::kMining;
  std::optional<double> since_;
  uint64_t pauses_ = 0, resumes_ = 0;
};

const char* guard_state_name(ProfitGuard::State s);

}  // namespace hashgate
