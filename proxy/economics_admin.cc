#include "proxy/economics_admin.h"

#include <algorithm>
#include <cmath>

#include "protocol/json_writer.h"
#include "proxy/farm_economics.h"

namespace hashgate {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// A JSON object written member by member.
class Obj {
 public:
  explicit Obj(std::string& o) : o_(o) { o_ += "{"; }
  ~Obj() { o_ += "}"; }
  Obj& num(const char* k, double v) {
    key(k);
    json_append_double(o_, std::isfinite(v) ? v : 0);
    return *this;
  }
  Obj& opt(const char* k, std::optional<double> v) {
    if (!v) {
      key(k);
      o_ += "null";
      return *this;
    }
    return num(k, *v);
  }
  Obj& str(const char* k, std::string_view v) {
    key(k);
    json_append_string(o_, v);
    return *this;
  }
  Obj& boolean(const char* k, bool v) {
    key(k);
    o_ += v ? "true" : "false";
    return *this;
  }
  std::string& raw(const char* k) {
    key(k);
    return o_;
  }

 private:
  void key(const char* k) {
    if (!first_) o_ += ",";
    first_ = false;
    json_append_string(o_, k);
    o_ += ":";
  }
  std::string& o_;
  bool first_ = true;
};

std::optional<double> money(const EconomicsSnapshot& e, double coins) {
  if (!e.price.price) return std::nullopt;
  return coins * *e.price.price;
}

// Coins and money a day for accepted and pool-credited hashrate at `v`.
void earnings(Obj& j, const EconomicsSnapshot& e, const Valuation& v, double accepted_hs, double credited_hs) {
  double a = e.coins_per_day_at(accepted_hs, v), c = e.coins_per_day_at(credited_hs, v);
  j.num("coins_per_day_accepted", a).num("coins_per_day_credited", c);
  j.opt("money_per_day_accepted", money(e, a)).opt("money_per_day_credited", money(e, c));
}

void valuation(std::string& o, const Valuation& v) {
  Obj j(o);
  j.str("pool", v.pool).boolean("valid", v.valid()).num("network_difficulty", v.network_difficulty);
  j.num("block_value", double(v.block_value) / 1e8).num("block_value_atomic", double(v.block_value));
  j.opt("height", v.height ? std::optional<double>(*v.height) : std::nullopt).str("error", v.error);
}

double credited_total(const Snapshot& s, const EconomicsSnapshot& e, double* accepted_coins) {
  double c = 0, a = 0;
  for (const PoolSnapshot& p : s.pools) {
    const Valuation* v = e.pool(p.name);
    if (!v) continue;
    c += e.coins_per_day_at(p.hashrate, *v);
    a += e.coins_per_day_at(p.accepted_hashrate, *v);
  }
  if (accepted_coins) *accepted_coins = a;
  return c;
}

void body(std::string& o, const Snapshot& s, const EconomicsSnapshot& e) {
  Obj j(o);
  j.str("algorithm", e.algorithm).str("currency", e.price.currency);
  {
    Obj p(j.raw("price"));
    p.str("source", e.price.source).opt("price", e.price.price).num("updated_unix", e.price.updated_unix);
    p.num("age_seconds", e.price_age_seconds).num("last_attempt_unix", e.price.last_attempt_unix);
    p.str("last_error", e.price.last_error).boolean("stale", !e.price.last_error.empty());
    p.num("fetches_ok", double(e.price.fetches_ok)).num("fetches_failed", double(e.price.fetches_failed));
  }
  j.opt("power_price_per_kwh", e.power_price_per_kwh);
  valuation(j.raw("reference"), e.reference);
  std::string& pools = j.raw("pools");
  pools += "[";
  for (size_t i = 0; i < e.pools.size(); ++i) {
    if (i) pools += ",";
    valuation(pools, e.pools[i]);
  }
  pools += "]";
  double accepted = 0, credited = credited_total(s, e, &accepted);
  double watts = 0;
  for (const auto& b : e.boards) watts += b.watts;
  for (const auto& g : e.groups) watts += g.watts;
  {
    Obj f(j.raw("farm"));
    f.num("coins_per_day_accepted", accepted).num("coins_per_day_credited", credited);
    f.opt("money_per_day_accepted", money(e, accepted)).opt("money_per_day_credited", money(e, credited));
    f.num("watts", watts);
    std::optional<double> cost;
    if (e.power_price_per_kwh) cost = watts * 24 / 1000 * *e.power_price_per_kwh;
    f.opt("power_cost_per_day", cost);
    auto m = money(e, credited);
    f.opt("profit_per_day_credited", m && cost ? std::optional<double>(*m - *cost) : std::nullopt);
  }
  std::string& boards = j.raw("boards");
  boards += "[";
  for (size_t i = 0; i < e.boards.size(); ++i) {
    const BoardEconomics& b = e.boards[i];
    if (i) boards += ",";
    Obj x(boards);
    x.str("name", b.name).num("watts", b.watts).boolean("always_mine", b.pinned).str("guard_state", b.guard_state);
    x.num("pauses", double(b.pauses)).num("resumes", double(b.resumes)).num("hashrate", b.hashrate);
    x.num("coins_per_day", b.coins_per_day).opt("earnings_per_hour", b.earnings_per_hour);
    x.opt("power_cost_per_hour", b.cost_per_hour).num("efficiency", b.efficiency).str("efficiency_unit", e.efficiency_unit);
    x.num("pending_seconds", b.pending_seconds).str("last_change", b.last_change).num("last_change_unix", b.last_change_unix);
  }
  boards += "]";
  std::string& groups = j.raw("groups");
  groups += "[";
  if (!e.groups.empty()) {
    const std::vector<WorkerSnapshot> all = s.workers();
    for (size_t i = 0; i < e.groups.size(); ++i) {
      const conf::MinerGroup& g = e.groups[i];
      double hs = 0;
      uint64_t n = 0;
      for (const WorkerSnapshot& w : all)
        if (miner_group_matches(g, w.name, w.profile, w.address)) {
          hs += w.hashrate;
          ++n;
        }
      if (i) groups += ",";
      Obj x(groups);
      double coins = e.coins_per_day(hs);
      x.str("name", g.name).num("workers", double(n)).num("watts", g.watts).num("hashrate", hs);
      x.num("coins_per_day", coins).opt("money_per_day", money(e, coins));
      x.opt("power_cost_per_day", e.power_price_per_kwh ? std::optional<double>(g.watts * 24 / 1000 * *e.power_price_per_kwh) : std::nullopt);
      x.num("efficiency", efficiency(e.algorithm == "sha256d" ? Algorithm::kSha256d : Algorithm::kScrypt, g.watts, hs));
      x.str("efficiency_unit", e.efficiency_unit);
    }
  }
  groups += "]";
  {
    Obj g(j.raw("guard"));
    g.boolean("enabled", e.guard.enabled).num("margin", e.guard.margin).num("resume_margin", e.guard.resume_margin);
    g.num("window_seconds", e.guard.window_seconds).num("pauses_total", double(e.guard_pauses_total));
    g.num("resumes_total", double(e.guard_resumes_total));
  }
}

MetricFamily fam(std::string name, std::string help, MetricType t = MetricType::Gauge) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = t;
  return f;
}

void put(MetricFamily& f, double v, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  (f.type == MetricType::Counter ? m.counter.value : m.gauge.value) = std::isfinite(v) ? v : 0;
  f.metric.push_back(std::move(m));
}

}  // namespace

void append_worker_economics(std::string& o, const Snapshot& s, const WorkerSnapshot& w) {
  if (!s.economics) return;
  o += ",\"economics\":";
  Obj j(o);
  j.num("credited_hashrate", w.credited_hashrate);
  earnings(j, *s.economics, s.economics->reference, w.hashrate, w.credited_hashrate);
}

void append_pool_economics(std::string& o, const Snapshot& s, const PoolSnapshot& p) {
  if (!s.economics) return;
  const Valuation* v = s.economics->pool(p.name);
  o += ",\"economics\":";
  Obj j(o);
  Valuation none;
  j.num("accepted_hashrate", p.accepted_hashrate).num("credited_hashrate", p.hashrate);
  earnings(j, *s.economics, v ? *v : none, p.accepted_hashrate, p.hashrate);
  j.num("network_difficulty", v ? v->network_difficulty : 0).num("block_value", v ? double(v->block_value) / 1e8 : 0);
  j.opt("height", v && v->height ? std::optional<double>(*v->height) : std::nullopt);
}

void append_status_economics(std::string& o, const Snapshot& s) {
  if (!s.economics) return;
  o += ",\"economics\":";
  body(o, s, *s.economics);
}

std::string economics_json(const Snapshot& s) {
  if (!s.economics) return "{\"enabled\":false}";
  std::string o;
  body(o, s, *s.economics);
  o.insert(1, "\"enabled\":true,");
  return o;
}

void append_economics_metrics(std::vector<MetricFamily>& fams, const Snapshot& s) {
  if (!s.economics) return;
  const EconomicsSnapshot& e = *s.economics;
  auto nd = fam("hashgate_network_difficulty", "Network difficulty of the pool's current job (nbits), in share difficulty");
  auto bv = fam("hashgate_block_value_coins", "Block reward plus fees: the outputs of the pool's current coinbase");
  auto exp = fam("hashgate_expected_coins_per_day", "Expected coins a day at the current network difficulty and block value");
  for (const PoolSnapshot& p : s.pools) {
    const Valuation* v = e.pool(p.name);
    if (!v || !v->valid()) continue;
    put(nd, v->network_difficulty, {{"pool", p.name}});
    put(bv, double(v->block_value) / 1e8, {{"pool", p.name}});
    put(exp, e.coins_per_day_at(p.accepted_hashrate, *v), {{"scope", "pool"}, {"name", p.name}, {"basis", "accepted"}});
    put(exp, e.coins_per_day_at(p.hashrate, *v), {{"scope", "pool"}, {"name", p.name}, {"basis", "credited"}});
  }
  double accepted = 0, credited = credited_total(s, e, &accepted);
  put(exp, accepted, {{"scope", "farm"}, {"name", "farm"}, {"basis", "accepted"}});
  put(exp, credited, {{"scope", "farm"}, {"name", "farm"}, {"basis", "credited"}});
  // Workers: the busiest max_worker_labels, like the other per-worker series.
  std::vector<WorkerSnapshot> all = s.workers();
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.hashrate > b.hashrate; });
  for (size_t i = 0; i < all.size() && i < s.max_worker_labels; ++i) {
    put(exp, e.coins_per_day(all[i].hashrate), {{"scope", "worker"}, {"name", all[i].name}, {"basis", "accepted"}});
    put(exp, e.coins_per_day(all[i].credited_hashrate), {{"scope", "worker"}, {"name", all[i].name}, {"basis", "credited"}});
  }
  auto price = fam("hashgate_coin_price", "Price of one coin (fixed, or the last good fetch)");
  auto age = fam("hashgate_coin_price_age_seconds", "Age of the fetched price (-1: fixed or never fetched)");
  auto fetches = fam("hashgate_coin_price_fetches_total", "Price fetches by result", MetricType::Counter);
  if (e.price.price) put(price, *e.price.price, {{"currency", e.price.currency}, {"source", e.price.source}});
  put(age, e.price_age_seconds, {});
  put(fetches, double(e.price.fetches_ok), {{"result", "ok"}});
  put(fetches, double(e.price.fetches_failed), {{"result", "failed"}});
  auto kwh = fam("hashgate_power_price_per_kwh", "Price of a kWh now (tariff applied)");
  if (e.power_price_per_kwh) put(kwh, *e.power_price_per_kwh, {});
  auto paused = fam("hashgate_board_guard_paused", "1 while the profit guard has paused the board");
  auto changes = fam("hashgate_board_guard_changes_total", "Profit guard pauses and resumes, by board", MetricType::Counter);
  auto earn = fam("hashgate_board_earnings_per_hour", "A board's expected earnings an hour, in the price's currency");
  auto cost = fam("hashgate_board_power_cost_per_hour", "A board's power cost an hour");
  auto eff = fam("hashgate_board_efficiency", "A board's joules per TH (sha256d) or per MH (scrypt)");
  for (const BoardEconomics& b : e.boards) {
    put(paused, b.guard_state == "paused" ? 1 : 0, {{"board", b.name}});
    put(changes, double(b.pauses), {{"board", b.name}, {"change", "pause"}});
    put(changes, double(b.resumes), {{"board", b.name}, {"change", "resume"}});
    put(exp, b.coins_per_day, {{"scope", "board"}, {"name", b.name}, {"basis", "accepted"}});
    if (b.earnings_per_hour) put(earn, *b.earnings_per_hour, {{"board", b.name}});
    if (b.cost_per_hour) put(cost, *b.cost_per_hour, {{"board", b.name}});
    put(eff, b.efficiency, {{"board", b.name}, {"unit", e.efficiency_unit}});
  }
  for (auto* f : {&nd, &bv, &exp, &price, &age, &fetches, &kwh, &paused, &changes, &earn, &cost, &eff})
    fams.push_back(std::move(*f));
}

}  // namespace hashgate
