#include "proxy/farm_economics.h"

#include "protocol/job.h"
#include "proxy/log.h"

namespace hashgate {

const Valuation* EconomicsSnapshot::pool(const std::string& name) const {
  for (const Valuation& v : pools)
    if (v.pool == name) return &v;
  return nullptr;
}

FarmEconomics::FarmEconomics(Algorithm algo, const conf::Economics& cfg) : algo_(algo) { configure(cfg); }

FarmEconomics::~FarmEconomics() { price_.stop(); }

void FarmEconomics::configure(const conf::Economics& cfg) {
  cfg_ = cfg;
  price_.configure(cfg.price);
  for (auto& [name, b] : boards_) b.guard.configure(cfg.guard);
}

FarmEconomics::Result FarmEconomics::update(double now, double unix, const std::vector<PoolInput>& pools,
                                            const std::vector<BoardSnapshot>& boards) {
  auto s = std::make_shared<EconomicsSnapshot>();
  s->algorithm = algo_ == Algorithm::kSha256d ? "sha256d" : "scrypt";
  s->efficiency_unit = efficiency_unit(algo_);
  s->hashes_per_difficulty = hashes_per_difficulty(algo_);
  s->price = price_.status();
  if (s->price.source == "url" && s->price.updated_unix > 0) s->price_age_seconds = unix - s->price.updated_unix;
  s->power_price_per_kwh = power_price_at(cfg_.power, unix);
  s->guard = cfg_.guard;
  s->groups = cfg_.groups;

  // Each pool's newest job, parsed once (jobs come every few seconds at most).
  for (const PoolInput& p : pools) {
    Valuation& v = valued_[p.name];
    if (p.job && p.job->seq != v.job_seq) {
      v = value_job(algo_, *p.job);
      if (!v.error.empty())
        log::warn("job_not_valued").kv("pool", p.name).kv("job", p.job->id).kv("error", v.error);
    }
    v.pool = p.name;
    s->pools.push_back(v);
    if (p.active) s->reference = v;
  }
  if (!s->reference.valid())  // no active pool with a job: the first pool that has one
    for (const Valuation& v : s->pools)
      if (v.valid()) {
        s->reference = v;
        break;
      }

  Result out;
  for (const conf::BoardPower& bp : cfg_.boards) {
    auto bit = std::find_if(boards.begin(), boards.end(), [&](const BoardSnapshot& b) { return b.name == bp.name; });
    if (bit == boards.end()) continue;
    auto [it, fresh] = boards_.try_emplace(bp.name, cfg_.guard);
    BoardState& st = it->second;
    // The board's hashrate while it mines: accepted difficulty over the time
    // spent mining, so a pause does not read as a slow board (and the guard
    // can tell when it would pay to resume).
    bool mining = bit->state == "mining";
    if (!fresh) {
      if (st.last_mining && mining) st.mining_seconds += now - st.last_at;
      st.mining_difficulty += std::max(0.0, bit->accepted_difficulty - st.last_difficulty);
    }
    st.last_difficulty = bit->accepted_difficulty;
    st.last_at = now;
    st.last_mining = mining;

    BoardEconomics be;
    be.name = bp.name;
    be.watts = bp.watts;
    be.pinned = bp.always_mine;
    be.hashrate = st.mining_seconds >= 1 ? st.mining_difficulty / st.mining_seconds * s->hashes_per_difficulty : 0;
    be.coins_per_day = s->coins_per_day(be.hashrate);
    be.efficiency = efficiency(algo_, bp.watts, be.hashrate);
    std::optional<ProfitGuard::Figures> fig;
    if (s->power_price_per_kwh) be.cost_per_hour = power_cost_per_hour(bp.watts, *s->power_price_per_kwh);
    if (s->price.price) be.earnings_per_hour = be.coins_per_day / 24.0 * *s->price.price;
    if (be.cost_per_hour && be.earnings_per_hour && s->reference.valid() && be.hashrate > 0)
      fig = ProfitGuard::Figures{*be.earnings_per_hour, *be.cost_per_hour};
    if (auto ch = st.guard.update(now, fig, bp.always_mine)) {
      const bool paused = ch->to == ProfitGuard::State::kPaused;
      paused ? ++pauses_ : ++resumes_;
      out.pause.emplace_back(bp.name, paused);
      st.last_change = std::string(paused ? "paused: " : "resumed: ") + ch->reason;
      st.last_change_unix = unix;
      auto e = log::warn(paused ? "board_guard_paused" : "board_guard_resumed");
      e.kv("board", bp.name).kv("reason", ch->reason)
          .kv("earnings_per_hour", ch->figures.earnings_per_hour).kv("cost_per_hour", ch->figures.cost_per_hour)
          .kv("threshold_per_hour", ch->threshold_per_hour).kv("held_seconds", ch->held_seconds)
          .kv("hashrate", be.hashrate).kv("coins_per_day", be.coins_per_day)
          .kv("price", s->price.price.value_or(0)).kv("currency", s->price.currency)
          .kv("power_price_per_kwh", s->power_price_per_kwh.value_or(0)).kv("watts", bp.watts)
          .kv("block_value", s->reference.block_value).kv("network_difficulty", s->reference.network_difficulty)
          .kv("pauses", st.guard.pauses()).kv("resumes", st.guard.resumes());
    }
    be.guard_state = guard_state_name(st.guard.state());
    be.pauses = st.guard.pauses();
    be.resumes = st.guard.resumes();
    be.pending_seconds = st.guard.pending_since() ? now - *st.guard.pending_since() : 0;
    be.last_change = st.last_change;
    be.last_change_unix = st.last_change_unix;
    s->boards.push_back(std::move(be));
  }
  // A board taken out of economics.boards (SIGHUP) mines again.
  for (auto it = boards_.begin(); it != boards_.end();) {
    bool listed = std::any_of(cfg_.boards.begin(), cfg_.boards.end(), [&](const conf::BoardPower& b) { return b.name == it->first; });
    if (!listed) {
      if (it->second.guard.paused()) {
        out.pause.emplace_back(it->first, false);
        ++resumes_;
        log::warn("board_guard_resumed").kv("board", it->first).kv("reason", "no longer under economics.boards");
      }
      it = boards_.erase(it);
    } else {
      ++it;
    }
  }
  s->guard_pauses_total = pauses_;
  s->guard_resumes_total = resumes_;
  out.snapshot = std::move(s);
  return out;
}

}  // namespace hashgate
