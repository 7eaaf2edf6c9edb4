// Moves: where client.reconnect sends a miner, and job id variants.
#include <doctest/doctest.h>

#include "protocol/job.h"
#include "protocol/stratum_codec.h"
#include "proxy/reconnect_target.h"

using namespace hashgate;

TEST_CASE("reconnect target: always a host and a port a real miner follows") {
  const conf::Endpoint pool{"pool-b.example.com", 3334};
  const conf::Endpoint local{"10.0.0.5", 3333};
  const conf::Endpoint lb{"stratum.farm.example", 443};
  // Plain miners come back to hashgate: the advertised address, else the one they connected to.
  auto t = reconnect_target(false, pool, std::nullopt, local);
  REQUIRE(t);
  CHECK(t->host == "10.0.0.5");
  CHECK(t->port == 3333);
  t = reconnect_target(false, pool, lb, local);
  REQUIRE(t);
  CHECK(t->host == "stratum.farm.example");
  CHECK(t->port == 443);
  // Through CONNECT: the target pool's own address (routed to it), not the pool it leaves.
  t = reconnect_target(true, pool, lb, local);
  REQUIRE(t);
  CHECK(t->host == "pool-b.example.com");
  CHECK(t->port == 3334);
  // A test:// pool has no address: the miner comes back to hashgate.
  t = reconnect_target(true, std::nullopt, std::nullopt, local);
  REQUIRE(t);
  CHECK(t->host == "10.0.0.5");
  // Never an empty host or port 0 (minerd ignores those): nothing, and the caller closes instead.
  CHECK_FALSE(reconnect_target(false, pool, std::nullopt, conf::Endpoint{"0.0.0.0", 3333}));
  CHECK_FALSE(reconnect_target(false, pool, std::nullopt, conf::Endpoint{"10.0.0.5", 0}));
  CHECK_FALSE(reconnect_target(false, pool, std::nullopt, std::nullopt));
  CHECK(reconnect_deadline(100, 3, 2) == 105);
}

TEST_CASE("job ids: a variant names the same job; anything else is not ours") {
  JobBook book(Algorithm::kScrypt);
  NotifyParams n;
  n.job_id = "p";
  n.nbits = 0x1e0ffff0;
  JobRef j = book.add(1, n, {1, 2}, 4, 0.5);
  const uint64_t variant = j->seq | (uint64_t(7) << JobBook::kVariantShift);
  char buf[20];
  snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(variant));
  REQUIRE(book.find(buf));
  CHECK(book.find(buf)->job == j);
  CHECK(JobBook::parse_id(buf) == variant);
  CHECK_FALSE(JobBook::parse_id("xyz"));
  CHECK_FALSE(JobBook::parse_id("12345678901234567"));  // 17 digits
}

TEST_CASE("client.reconnect's port: a string for the cgminer lineage, a number for the rest") {
  CHECK(reconnect_port_as_string("cgminer/4.11.1"));
  CHECK(reconnect_port_as_string("bmminer/2.0.0"));
  CHECK(reconnect_port_as_string("Antminer S21/2024"));
  CHECK_FALSE(reconnect_port_as_string("cpuminer/2.5.1"));
  CHECK_FALSE(reconnect_port_as_string("bitaxe/BM1370/v2.12.2"));
  std::string out;
  write_reconnect(out, "10.0.0.5", 3333, 2, true);
  CHECK(out == "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"10.0.0.5\",\"3333\",2]}\n");
  out.clear();
  write_reconnect(out, "10.0.0.5", 3333, 2, false);
  CHECK(out == "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[\"10.0.0.5\",3333,2]}\n");
}
