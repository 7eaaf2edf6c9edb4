// Firmware profiles: user agents from shared/firmware-facts.md find their
// family, each family's rules shape difficulty and extranonce space the way
// that firmware needs, and operator profiles come before the built-ins.
#include <doctest/doctest.h>

#include <string>

#include "protocol/firmware_profile.h"

using namespace hashgate;

TEST_CASE("glob: '*' and '?', ASCII case-insensitive, anchored at both ends") {
  CHECK(glob_match("bmminer/*", "bmminer/2.0.0"));
  CHECK(glob_match("BMMINER/*", "bmminer/2.0.0"));
  CHECK_FALSE(glob_match("bmminer/*", "xbmminer/2.0.0"));
  CHECK(glob_match("*bosminer*", "2024-05-06-0-fb624381-24.04-plus;bosminer-plus-tuner 0.9.0-fb624381"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));
  CHECK(glob_match("*", ""));
  CHECK_FALSE(glob_match("x*", ""));
  CHECK(glob_match("a*b*c", "a__b__b__c"));
  CHECK_FALSE(glob_match("a*b*c", "a__b__b__"));
  // A hostile agent against a backtracking-heavy pattern stays cheap and exact.
  const std::string long_a(20000, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*b", long_a));
  CHECK(glob_match("*a*a*a*a*", long_a));
}

TEST_CASE("the user agents seen in the field find their built-in profile") {
  ProfileBook book;
  struct Case {
    const char* agent;
    const char* profile;
  };
  const Case cases[] = {
      {"bmminer/2.0.0", "antminer"},
      {"Antminer S21/Thu Jan 11 2024", "antminer-s21"},
      {"Antminer S19j Pro+|LUXminer 2026.3.30|x", "luxos"},
      {"2024-05-06-0-fb624381-24.04-plus;bosminer-plus-tuner 0.9.0-fb624381", "braiins"},
      {"xminer-1.2.6", "vnish"},
      {"whatsminer/v1.1", "whatsminer"},
      {"cgminer/4.11.1", "avalon"},
      {"bitaxe/BM1370/v2.12.2", "bitaxe"},
      {"NerdQAxe++/BM1370/v1.0.35", "bitaxe"},
      {"PowerPlay-BMS/1.24.0", "epic"},
      {"bfgminer/5.5.0", "futurebit"},
      {"apollo-miner 2.0.3", "futurebit"},
      {"NiceHash/1.0.0", "nicehash"},
      {"cpuminer/2.5.1", "cpuminer"},
      {"cpuminer-opt/26.1", "cpuminer"},
      {"sim_miner/1.0", "default"},
      {"", "default"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.agent);
    CHECK(book.match(c.agent)->name == c.profile);
  }
  // Every built-in is reachable by name, and the default is last.
  for (const FirmwareProfile& p : builtin_profiles()) {
    const FirmwareProfile* f = book.find(p.name);
    REQUIRE(f);
    CHECK(book.index_of(f) == size_t(&p - builtin_profiles().data()));  // names are unique
  }
  CHECK(book.fallback()->name == "default");
}

TEST_CASE("difficulty shapes: fractional as is, integer rounded down to at least 1, powers of two, minimums") {
  FirmwareProfile frac;
  CHECK(frac.shape(0.37) == doctest::Approx(0.37));
  FirmwareProfile integer;
  integer.difficulty = DifficultyForm::kInteger;
  CHECK(integer.shape(1000.9) == 1000);
  CHECK(integer.shape(0.5) == 1);  // never 0: a firmware that truncates would hash at nothing
  FirmwareProfile pow2;
  pow2.difficulty = DifficultyForm::kPowerOfTwo;
  CHECK(pow2.shape(1000) == 512);
  CHECK(pow2.shape(1024) == 1024);
  CHECK(pow2.shape(0.3) == 1);
  ProfileBook book;
  const FirmwareProfile* bitaxe = book.find("bitaxe");
  REQUIRE(bitaxe);
  CHECK(bitaxe->shape(0.5) == 256);
  CHECK(bitaxe->shape(4096.75) == 4096);
}

TEST_CASE("extranonce space: a profile's maximum is kept by fixing the bytes it cannot take") {
  ProfileBook book;
  const FirmwareProfile* antminer = book.find("antminer");
  const FirmwareProfile* cpu = book.find("cpuminer");
  REQUIRE(antminer);
  REQUIRE(cpu);
  // A pool with 16 bytes of extranonce2, 2 kept as the session prefix.
  SpaceShape s = shape_space(*antminer, 16, 2, 4);
  CHECK(s.miner_extranonce2 == 8);
  CHECK(s.fixed_bytes == 6);
  CHECK_FALSE(s.below_minimum);
  s = shape_space(*cpu, 16, 2, 4);
  CHECK(s.miner_extranonce2 == 14);
  CHECK(s.fixed_bytes == 0);
  s = shape_space(*antminer, 8, 2, 4);
  CHECK(s.miner_extranonce2 == 6);
  CHECK(s.fixed_bytes == 0);
  s = shape_space(*antminer, 4, 2, 4);
  CHECK(s.miner_extranonce2 == 2);
  CHECK(s.below_minimum);
}

TEST_CASE("moves follow the profile: set_extranonce only when subscribed and acted on") {
  FirmwareProfile p;
  CHECK(p.move_by(true) == MoveBy::kSetExtranonce);
  CHECK(p.move_by(false) == MoveBy::kReconnect);
  p.acts_on_set_extranonce = false;
  CHECK(p.move_by(true) == MoveBy::kReconnect);
  p.follows_reconnect = false;
  CHECK(p.move_by(true) == MoveBy::kClose);
}

TEST_CASE("operator profiles come first and shadow a built-in of the same name") {
  FirmwareProfile mine;
  mine.name = "antminer";
  mine.match = {"bmminer/2.*"};
  mine.max_extranonce2_size = 4;
  ProfileBook book({mine});
  CHECK(book.match("bmminer/2.0.0")->max_extranonce2_size == 4);
  CHECK(book.find("antminer")->max_extranonce2_size == 4);
  CHECK(book.match("bmminer/1.0")->name == "antminer");  // the built-in still catches the rest
  CHECK(book.match("bmminer/1.0")->max_extranonce2_size == 8);
}

// ---- the operator's side: compatibility.* in the config (proxy/profiles.h) ----

#include "conf/config.h"
#include "proxy/profiles.h"

namespace {

const char* kBase = R"(algorithm: scrypt
listeners:
  - name: s
    bind: 127.0.0.1:3333
  - name: bitaxes
    bind: 127.0.0.1:3334
    profile: bitaxe
pools:
  - name: main
    url: test://
)";

std::string selector_error(const std::string& yaml) {
  try {
    ProfileSelector s(conf::load_string(yaml, "t.yaml"));
  } catch (const conf::ConfigError& e) {
    return e.what();
  }
  return "";
}

Address addr(const char* text) { return *Address::parse(text); }

}  // namespace

TEST_CASE("config: an operator profile overrides a built-in; listeners and address ranges pin a profile") {
  const std::string yaml = std::string(kBase) + R"(compatibility:
  profiles:
    - name: antminer
      max_extranonce2_size: 6
      difficulty: power_of_two
    - name: racks-b
      base: whatsminer
      match: ["acme-fw/*"]
      min_difficulty: 4096
  by_cidr:
    - cidr: 10.9.0.0/16
      profile: cpuminer
)";
  ProfileSelector sel(conf::load_string(yaml, "t.yaml"));
  const FirmwareProfile* a = sel.select(0, addr("10.0.0.1"), "bmminer/2.0.0");
  CHECK(a->name == "antminer");
  CHECK(a->max_extranonce2_size == 6);                     // the operator's rule
  CHECK(a->difficulty == DifficultyForm::kPowerOfTwo);
  CHECK(a->max_extranonce1_size == 8);                     // the rest from the built-in
  const FirmwareProfile* b = sel.select(0, addr("10.0.0.1"), "ACME-fw/3");
  CHECK(b->name == "racks-b");
  CHECK(b->max_worker_name == 127);                        // from its base
  CHECK(b->shape(100) == 4096);
  CHECK(sel.select(0, addr("10.9.3.3"), "bmminer/2.0.0")->name == "cpuminer");  // address range first
  CHECK(sel.select(1, addr("10.9.3.3"), "bmminer/2.0.0")->name == "bitaxe");    // listener before all
  CHECK(sel.select(0, addr("10.0.0.1"), "whatever")->name == "default");
  const FirmwareProfile* safe = sel.safe_variant(a);
  CHECK(safe->name == "antminer");
  CHECK(safe->move_by(true) == MoveBy::kReconnect);
  CHECK(a->move_by(true) == MoveBy::kSetExtranonce);
  CHECK(sel.safe_variant(safe) == safe);
}

TEST_CASE("config: bad profiles are refused with file, line and key") {
  auto with = [](const char* tail) { return std::string(kBase) + tail; };
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: x\n      colour: red\n")).find(
            "t.yaml:14: compatibility.profiles[0].colour: unknown key") != std::string::npos);
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: x\n      max_extranonce2_size: 40\n")) ==
        "t.yaml:14: compatibility.profiles[0].max_extranonce2_size: must be 0..32");
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: x\n      difficulty: round\n")) ==
        "t.yaml:14: compatibility.profiles[0].difficulty: must be fractional, integer or power_of_two, got 'round'");
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: x\n    - name: x\n")) ==
        "t.yaml:14: compatibility.profiles[1].name: duplicate profile name 'x'");
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: x\n      base: nosuch\n")).find(
            "t.yaml:14: compatibility.profiles[0].base: unknown profile 'nosuch' (known: ") == 0);
  CHECK(selector_error(with("compatibility:\n  by_cidr:\n    - cidr: 10.0.0.0/33\n      profile: bitaxe\n")) ==
        "t.yaml:13: compatibility.by_cidr[0].cidr: must be an address or CIDR, got '10.0.0.0/33'");
  CHECK(selector_error(with("compatibility:\n  by_cidr:\n    - cidr: 10.0.0.0/8\n      profile: nosuch\n")).find(
            "t.yaml:14: compatibility.by_cidr[0].profile: unknown profile 'nosuch'") == 0);
  std::string listener = kBase;
  listener.replace(listener.find("profile: bitaxe"), 15, "profile: bitax");
  CHECK(selector_error(listener).find("t.yaml:7: listeners[1].profile: unknown profile 'bitax'") == 0);
  CHECK(selector_error(with("compatibility:\n  profiles:\n    - name: fine\n      match: [\"x/*\"]\n")).empty());
}
