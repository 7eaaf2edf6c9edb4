// Economics without I/O: job valuation from real coinbases, expected
// earnings against hand calculations for both algorithms, tariffs, worker
// patterns, and the profit guard on a virtual clock.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <cmath>
#include <string>

#include "conf/config.h"
#include "hashing/bytes.h"
#include "protocol/job.h"
#include "proxy/economics.h"
#include "tests/unit/vectors.h"

using namespace hashgate;

namespace {

Bytes hx(std::string_view s) {
  auto b = hex_decode(s);
  REQUIRE(b.has_value());
  return *b;
}

bool near(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

using Figures = ProfitGuard::Figures;

}  // namespace

TEST_CASE("economics: network difficulty from nbits, by hand") {
  // sha256d: diff1 = 0xffff * 2^208; nbits 0x1b0404cb is 0x0404cb * 2^192,
  // so D = 0xffff * 2^16 / 0x0404cb = 4,294,901,760 / 263,371 = 16,307.42...
  CHECK(near(network_difficulty(Algorithm::kSha256d, 0x1b0404cb), 4294901760.0 / 263371.0));
  CHECK(near(network_difficulty(Algorithm::kSha256d, 0x1d00ffff), 1.0));
  // scrypt's diff1 is 65536 times easier (0xffff * 2^224): 65536 times more.
  CHECK(near(network_difficulty(Algorithm::kScrypt, 0x1b0404cb), 65536.0 * 4294901760.0 / 263371.0));
  // Litecoin's limit 0x1e0ffff0 = 0x0ffff0 * 2^216: 0xffff * 2^8 / 0x0ffff0 = 16.
  CHECK(near(network_difficulty(Algorithm::kScrypt, 0x1e0ffff0), 16.0));
  CHECK(network_difficulty(Algorithm::kScrypt, 0) == 0);
}

TEST_CASE("economics: the regtest block's job is worth its coinbase outputs") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("litecoin_regtest_block.json"));
  Job job;
  job.seq = 7;
  job.params.coinb1 = hx(std::string_view(doc["notify"]["coinb1"]));
  job.params.coinb2 = hx(std::string_view(doc["notify"]["coinb2"]));
  job.params.nbits = *hex_u32(std::string_view(doc["notify"]["nbits"]));
  job.extranonce1 = hx(std::string_view(doc["extranonce1"]));
  job.extranonce2_size = uint32_t(int64_t(doc["extranonce2_size"]));
  Valuation v = value_job(Algorithm::kScrypt, job);
  REQUIRE(v.valid());
  CHECK(v.job_seq == 7);
  CHECK(v.block_value == 5'000'008'730ull);  // 50 LTC + 8,730 litoshis of fees (coinbase_test.cc)
  CHECK(*v.height == 104);
  // nbits 0x207fffff = 0x7fffff * 2^232: D = 0xffff / (0x7fffff * 2^8).
  CHECK(near(v.network_difficulty, 65535.0 / (8388607.0 * 256.0)));
  // A job whose coinbase is cut short is not valued, and says why.
  job.params.coinb2.resize(10);
  job.seq = 8;
  Valuation bad = value_job(Algorithm::kScrypt, job);
  CHECK_FALSE(bad.valid());
  CHECK(bad.error.rfind("truncated: offset", 0) == 0);
  CHECK(coins_per_day(1000, bad) == 0);
}

TEST_CASE("economics: expected coins a day for a scripted hashrate, by hand, both algorithms") {
  // sha256d: 100 TH/s is 1e14 / 2^32 = 23,283.064365... difficulty a second;
  // D = 16,307.420938...; block value 3.225 BTC (3.125 + 0.1 fees).
  // 23,283.064365 * 86,400 / 16,307.420938 * 3.225 = 397,830.72254 BTC a day.
  Valuation btc;
  btc.network_difficulty = network_difficulty(Algorithm::kSha256d, 0x1b0404cb);
  btc.block_value = 322'500'000;
  CHECK(near(coins_per_day(1e14 / 4294967296.0, btc), 397830.7225421158));
  // scrypt: 10 GH/s is 1e10 / 65,536 = 152,587.890625 difficulty a second;
  // D = 1,068,723,138.627...; block value 6.27 LTC (6.25 + 0.02 fees).
  // 152,587.890625 * 86,400 / 1,068,723,138.627 * 6.27 = 77.345693964 LTC a day.
  Valuation ltc;
  ltc.network_difficulty = network_difficulty(Algorithm::kScrypt, 0x1b0404cb);
  ltc.block_value = 627'000'000;
  CHECK(near(coins_per_day(1e10 / 65536.0, ltc), 77.34569396400204));
  // Linear in the rate; nothing without a valuation.
  CHECK(near(coins_per_day(2e10 / 65536.0, ltc), 2 * 77.34569396400204));
  CHECK(coins_per_day(1e6, Valuation{}) == 0);
  // Efficiency: 3,250 W at 100 TH/s is 32.5 J/TH; 1,200 W at 10 GH/s is 0.12 J/MH.
  CHECK(near(efficiency(Algorithm::kSha256d, 3250, 1e14), 32.5));
  CHECK(near(efficiency(Algorithm::kScrypt, 1200, 1e10), 0.12));
  CHECK(efficiency(Algorithm::kScrypt, 1200, 0) == 0);
  CHECK(near(power_cost_per_hour(1500, 0.2), 0.3));
}

TEST_CASE("economics: the hour-of-day tariff") {
  conf::Power p;
  CHECK_FALSE(power_price_at(p, 0).has_value());
  p.price_per_kwh = 0.20;
  p.tariff.push_back({22, 6, 0.08});   // night, across midnight
  p.tariff.push_back({12, 14, 0.30});  // midday peak
  const double day = 86400 * 20000.0;  // a midnight, UTC
  CHECK(*power_price_at(p, day + 3 * 3600) == 0.08);
  CHECK(*power_price_at(p, day + 23 * 3600 + 59 * 60) == 0.08);
  CHECK(*power_price_at(p, day + 6 * 3600) == 0.20);  // to_hour is exclusive
  CHECK(*power_price_at(p, day + 13 * 3600) == 0.30);
  CHECK(*power_price_at(p, day + 20 * 3600) == 0.20);
  // UTC+2: 20:30 UTC is 22:30 local, night.
  p.utc_offset_hours = 2;
  CHECK(*power_price_at(p, day + 20.5 * 3600) == 0.08);
  p.utc_offset_hours = -5;  // 03:00 UTC is 22:00 the day before
  CHECK(*power_price_at(p, day + 3 * 3600) == 0.08);
}

TEST_CASE("guard: pauses after the window, not before") {
  conf::ProfitGuardConfig cfg;
  cfg.enabled = true;
  cfg.margin = 1.0;
  cfg.resume_margin = 1.2;
  cfg.window_seconds = 600;
  ProfitGuard g(cfg);
  const Figures losing{0.05, 0.10};  // earns half its power
  for (double t = 0; t < 600; t += 1) REQUIRE_FALSE(g.update(t, losing, false));
  CHECK(g.state() == ProfitGuard::State::kMining);
  auto ch = g.update(600, losing, false);
  REQUIRE(ch);
  CHECK(ch->to == ProfitGuard::State::kPaused);
  CHECK(std::string(ch->reason) == "unprofitable");
  CHECK(ch->held_seconds == 600);
  CHECK(ch->figures.earnings_per_hour == 0.05);
  CHECK(ch->threshold_per_hour == 0.10);
  CHECK(g.paused());
  CHECK(g.pauses() == 1);
}

TEST_CASE("guard: no flapping inside the window or inside the band; then resume") {
  conf::ProfitGuardConfig cfg;
  cfg.enabled = true;
  cfg.margin = 1.0;
  cfg.resume_margin = 1.2;
  cfg.window_seconds = 600;
  ProfitGuard g(cfg);
  // Losing 500 s, one profitable sample, losing 500 s again: the count
  // restarts, so no pause (1,001 s below the line, never 600 in a row).
  double t = 0;
  for (; t < 500; t += 1) REQUIRE_FALSE(g.update(t, Figures{0.09, 0.10}, false));
  REQUIRE_FALSE(g.update(t++, Figures{0.11, 0.10}, false));
  const double restart = t;
  for (int i = 0; i < 500; ++i, t += 1) REQUIRE_FALSE(g.update(t, Figures{0.09, 0.10}, false));
  CHECK(g.state() == ProfitGuard::State::kMining);
  // Keep losing: the pause comes 600 s after the count restarted, not before.
  double start = t;
  std::optional<ProfitGuard::Change> ch;
  for (; !ch && t < start + 2000; t += 1) ch = g.update(t, Figures{0.09, 0.10}, false);
  REQUIRE(ch);
  CHECK(t - 1 == restart + 600);
  CHECK(g.paused());
  // Inside the band (>= 1.0 x cost, < 1.2 x cost) for an hour: stays paused.
  for (int i = 0; i < 3600; ++i, t += 1) REQUIRE_FALSE(g.update(t, Figures{0.11, 0.10}, false));
  CHECK(g.paused());
  // Above 1.2 x cost for 599 s, then a dip: still paused.
  for (int i = 0; i < 599; ++i, t += 1) REQUIRE_FALSE(g.update(t, Figures{0.13, 0.10}, false));
  REQUIRE_FALSE(g.update(t++, Figures{0.115, 0.10}, false));
  CHECK(g.paused());
  // Then 600 s above: resumed.
  start = t;
  ch.reset();
  for (; !ch && t < start + 2000; t += 1) ch = g.update(t, Figures{0.13, 0.10}, false);
  REQUIRE(ch);
  CHECK(ch->to == ProfitGuard::State::kMining);
  CHECK(std::string(ch->reason) == "profitable");
  CHECK(ch->held_seconds == 600);
  CHECK(near(ch->threshold_per_hour, 0.12));
  CHECK(g.pauses() == 1);
  CHECK(g.resumes() == 1);
}

TEST_CASE("guard: unknown figures hold the state; the pin and a disabled guard mine") {
  conf::ProfitGuardConfig cfg;
  cfg.enabled = true;
  cfg.window_seconds = 60;
  ProfitGuard g(cfg);
  for (int t = 0; t < 59; ++t) REQUIRE_FALSE(g.update(t, Figures{0, 1}, false));
  // No figures (the price never came, say): the count restarts.
  REQUIRE_FALSE(g.update(59, std::nullopt, false));
  for (int t = 60; t < 120; ++t) REQUIRE_FALSE(g.update(t, Figures{0, 1}, false));
  REQUIRE(g.update(120, Figures{0, 1}, false));
  REQUIRE(g.paused());
  // Paused and no figures for a day: still paused.
  for (int t = 121; t < 86400; t += 60) REQUIRE_FALSE(g.update(t, std::nullopt, false));
  CHECK(g.paused());
  // The operator pins it: mining at once, and it never pauses while pinned.
  auto ch = g.update(86400, Figures{0, 1}, true);
  REQUIRE(ch);
  CHECK(std::string(ch->reason) == "pinned");
  for (int t = 86401; t < 90000; ++t) REQUIRE_FALSE(g.update(t, Figures{0, 1}, true));
  CHECK_FALSE(g.paused());
  // A disabled guard never pauses.
  cfg.enabled = false;
  g.configure(cfg);
  for (int t = 90000; t < 95000; ++t) REQUIRE_FALSE(g.update(t, Figures{0, 1}, false));
  CHECK_FALSE(g.paused());
}

TEST_CASE("economics config: shape and errors with file:line:key") {
  const std::string base = R"(algorithm: sha256d
listeners: [{name: s, bind: 127.0.0.1:3333}]
pools: [{name: p, url: "test://x"}]
hardware:
  boards: [{name: b1, driver: bm1370, path: /dev/ttyUSB0}]
)";
  auto err = [&](const std::string& extra) {
    try {
      conf::load_string(base + extra, "t.yaml");
    } catch (const conf::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  conf::Config c = conf::load_string(base + R"(economics:
  price: {url: "http://127.0.0.1:1/p", path: "data.quotes[1].price", refresh_seconds: 5, currency: EUR}
  power:
    price_per_kwh: 0.2
    tariff: [{from_hour: 22, to_hour: 6, price_per_kwh: 0.08}]
  groups: [{name: rack1, workers: ["rack1.*"], watts: 3250}]
  boards: [{name: b1, watts: 15, always_mine: true}]
  guard: {enabled: true, margin: 1.1, window_seconds: 300}
)", "t.yaml");
  CHECK(c.economics.enabled);
  CHECK(c.economics.price.url == "http://127.0.0.1:1/p");
  CHECK(c.economics.price.refresh_seconds == 5);
  CHECK(c.economics.price.currency == "EUR");
  CHECK(*c.economics.power.price_per_kwh == 0.2);
  REQUIRE(c.economics.power.tariff.size() == 1);
  CHECK(c.economics.power.tariff[0].from_hour == 22);
  CHECK(c.economics.groups[0].watts == 3250);
  CHECK(c.economics.boards[0].always_mine);
  CHECK(c.economics.guard.margin == 1.1);
  CHECK(near(c.economics.guard.resume_margin, 1.155));  // 5 % above the margin unless given
  CHECK(c.economics.guard.window_seconds == 300);
  CHECK_FALSE(conf::load_string(base, "t.yaml").economics.enabled);

  CHECK(err("economics:\n  price: {fixed: 80, url: \"http://x/\"}\n") ==
        "t.yaml:7: economics.price.url: give fixed or url, not both");
  CHECK(err("economics:\n  price: {url: \"ftp://x/\"}\n") ==
        "t.yaml:7: economics.price.url: must start with http:// or https://, got 'ftp://x/'");
  CHECK(err("economics:\n  price:\n    url: \"http://x/\"\n    path: \"data..price\"\n") ==
        "t.yaml:9: economics.price.path: must look like data.price or result[0].last, got 'data..price'");
  CHECK(err("economics:\n  boards: [{name: nope, watts: 5}]\n") ==
        "t.yaml:7: economics.boards[0].name: no board named 'nope' under hardware.boards");
  CHECK(err("economics:\n  guard: {margin: 1.2, resume_margin: 1.1}\n") ==
        "t.yaml:7: economics.guard.resume_margin: must be at least economics.guard.margin (the band between them stops flapping)");
  CHECK(err("economics:\n  power: {price_per_kwh: -1}\n") == "t.yaml:7: economics.power.price_per_kwh: must be 0 or more");
  CHECK(err("economics:\n  power:\n    price_per_kwh: 0.1\n    tariff: [{from_hour: 25, to_hour: 3, price_per_kwh: 0.1}]\n") ==
        "t.yaml:9: economics.power.tariff[0].from_hour: must be 0..23");
  CHECK(err("economics:\n  powr: {}\n") ==
        "t.yaml:7: economics.powr: unknown key (expected one of: price, power, groups, boards, guard)");
  CHECK(err("economics:\n  groups: [{name: g, workers: [], watts: 10}]\n") ==
        "t.yaml:7: economics.groups[0].workers: must be a non-empty list of worker patterns");
  // Groups by CIDR and by firmware profile.
  CHECK(err("economics:\n  groups: [{name: g, watts: 10}]\n") ==
        "t.yaml:7: economics.groups[0]: needs name, watts and workers, cidrs or profiles");
  CHECK(err("economics:\n  groups:\n    - name: g\n      watts: 10\n      cidrs: [10.0.0.0/8, 10.1.2/24]\n") ==
        "t.yaml:10: economics.groups[0].cidrs[1]: must be an address or CIDR like 10.0.0.0/8 or fd00::/8, got '10.1.2/24'");
  CHECK(err("economics:\n  groups: [{name: g, watts: 10, profiles: []}]\n") ==
        "t.yaml:7: economics.groups[0].profiles: must be a non-empty list of firmware profile names");
  conf::Config g = conf::load_string(base + "economics:\n  groups: [{name: r, cidrs: [10.2.0.0/16, \"fd00::/8\"], profiles: [antminer], watts: 5}]\n",
                                     "t.yaml");
  REQUIRE(g.economics.groups.size() == 1);
  CHECK(g.economics.groups[0].cidrs == std::vector<std::string>{"10.2.0.0/16", "fd00::/8"});
  CHECK(g.economics.groups[0].profiles == std::vector<std::string>{"antminer"});
  CHECK(g.economics.groups[0].workers.empty());
}

TEST_CASE("economics: miner groups match by worker pattern, CIDR (the last session's address) or profile") {
  conf::MinerGroup g;
  g.workers = {"rack1.*"};
  g.cidrs = {"10.2.0.0/16", "fd00::/8", "192.0.2.7"};
  g.profiles = {"antminer"};
  const auto a = [](const char* t) { return std::optional<Address>(*Address::parse(t)); };
  CHECK(miner_group_matches(g, "rack1.a", "default", std::nullopt));
  CHECK(miner_group_matches(g, "x", "default", a("10.2.200.1")));
  CHECK(miner_group_matches(g, "x", "default", a("fd12::1")));
  CHECK(miner_group_matches(g, "x", "default", a("192.0.2.7")));
  CHECK(miner_group_matches(g, "x", "antminer", std::nullopt));
  CHECK_FALSE(miner_group_matches(g, "x", "default", a("10.3.0.1")));
  CHECK_FALSE(miner_group_matches(g, "x", "default", a("192.0.2.8")));
  CHECK_FALSE(miner_group_matches(g, "x", "default", a("fe80::1")));
  CHECK_FALSE(miner_group_matches(g, "rack2.a", "antminer-s9", std::nullopt));  // profiles match whole names
}

TEST_CASE("economics config: price paths") {
  auto p = conf::parse_json_path("data.quotes[1].price");
  REQUIRE(p);
  REQUIRE(p->size() == 4);
  CHECK((*p)[0].key == "data");
  CHECK((*p)[2].is_index);
  CHECK((*p)[2].index == 1);
  CHECK((*p)[3].key == "price");
  CHECK(conf::parse_json_path("")->empty());
  CHECK(conf::parse_json_path("[0]")->size() == 1);
  for (const char* bad : {".a", "a.", "a..b", "a[", "a[]", "a[x]", "a[1", "a[-1]"})
    CHECK_MESSAGE(!conf::parse_json_path(bad), bad);
}
