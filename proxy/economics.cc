#include "proxy/economics.h"

#include <cmath>

#include "protocol/coinbase.h"
#include "protocol/job.h"

namespace hashgate {

double network_difficulty(Algorithm algo, uint32_t nbits) {
  double t = U256::from_compact(nbits).to_double();
  return t > 0 ? diff1_target(algo) / t : 0;
}

Valuation value_job(Algorithm algo, const Job& job) {
  Valuation v;
  v.job_seq = job.seq;
  v.network_difficulty = network_difficulty(algo, job.params.nbits);
  auto cb = parse_job_coinbase(job.params.coinb1, job.extranonce1, {}, job.extranonce2_size, job.params.coinb2);
  if (!cb) {
    v.error = std::string(coinbase_error_name(cb.error().code)) + ": " + cb.error().message;
    return v;
  }
  v.block_value = cb->coinbase.total_value;
  v.height = cb->coinbase.height;
  return v;
}

bool miner_group_matches(const conf::MinerGroup& g, std::string_view worker, std::string_view profile,
                         const std::optional<Address>& address) {
  for (const std::string& p : g.workers)
    if (glob_match(p, worker)) return true;
  for (const std::string& p : g.profiles)
    if (p == profile) return true;
  if (address)
    for (const std::string& c : g.cidrs)
      if (auto cidr = Cidr::parse(c); cidr && cidr->contains(*address)) return true;
  return false;
}

double coins_per_day(double difficulty_per_second, const Valuation& v) {
  if (!v.valid()) return 0;
  return difficulty_per_second * 86400.0 / v.network_difficulty * (double(v.block_value) / 1e8);
}

std::optional<double> power_price_at(const conf::Power& p, double unix_time) {
  if (!p.price_per_kwh) return std::nullopt;
  double local = unix_time + p.utc_offset_hours * 3600.0;
  unsigned hour = unsigned(std::fmod(std::floor(local / 3600.0), 24.0) + 24) % 24;
  for (const conf::TariffBand& b : p.tariff) {
    bool in = b.from_hour < b.to_hour ? (hour >= b.from_hour && hour < b.to_hour)
                                      : (hour >= b.from_hour || hour < b.to_hour);  // wraps past midnight
    if (in) return b.price_per_kwh;
  }
  return p.price_per_kwh;
}

double efficiency(Algorithm algo, double watts, double hashes_per_second) {
  if (!(hashes_per_second > 0)) return 0;
  double unit = algo == Algorithm::kSha256d ? 1e12 : 1e6;  // TH for sha256d, MH for scrypt
  return watts / (hashes_per_second / unit);
}

const char* efficiency_unit(Algorithm algo) { return algo == Algorithm::kSha256d ? "J/TH" : "J/MH"; }

const char* guard_state_name(ProfitGuard::State s) { return s == ProfitGuard::State::kPaused ? "paused" : "mining"; }

std::optional<ProfitGuard::Change> ProfitGuard::go(State to, const Figures& f, double threshold, double held,
                                                   const char* reason) {
  state_ = to;
  since_.reset();
  ++(to == State::kPaused ? pauses_ : resumes_);
  return Change{to, f, threshold, held, reason};
}

std::optional<ProfitGuard::Change> ProfitGuard::update(double now, std::optional<Figures> f, bool pinned) {
  if (pinned || !cfg_.enabled) {
    since_.reset();
    if (state_ == State::kPaused) return go(State::kMining, f.value_or(Figures{}), 0, 0, pinned ? "pinned" : "guard_disabled");
    return std::nullopt;
  }
  if (!f) {
    since_.reset();
    return std::nullopt;
  }
  const bool mining = state_ == State::kMining;
  const double threshold = f->cost_per_hour * (mining ? cfg_.margin : cfg_.resume_margin);
  const bool wants_change = mining ? f->earnings_per_hour < threshold : f->earnings_per_hour >= threshold;
  if (!wants_change) {
    since_.reset();
    return std::nullopt;
  }
  if (!since_) since_ = now;
  double held = now - *since_;
  if (held < cfg_.window_seconds) return std::nullopt;
  return go(mining ? State::kPaused : State::kMining, *f, threshold, held, mining ? "unprofitable" : "profitable");
}

}  // namespace hashgate
