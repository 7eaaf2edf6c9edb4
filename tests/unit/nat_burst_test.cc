// A farm behind one NAT address restarting (issue 17.11): with the default
// limits every miner the per-address cap admits may connect at once; a farm
// bigger than the cap is refused past it, never banned for retrying; an
// address hammering at the cap still runs out of tokens; and the start-up
// warning's condition (nat_burst_admitted) sees a config that cannot take
// such a restart.
#include <doctest/doctest.h>

#include "proxy/guard.h"

using namespace hashgate;

TEST_CASE("nat burst: the defaults admit a restart of 1,000 miners behind one address at once") {
  conf::Bans bans;
  conf::Limits limits;
  AddressGuard g(bans, limits);
  const Address nat = *Address::parse("198.51.100.9");
  const double t = 5000;
  int ok = 0;
  for (uint32_t i = 0; i < limits.max_connections_per_address; ++i) ok += g.admit(nat, t) == AddressGuard::Admit::kOk;
  CHECK(ok == int(limits.max_connections_per_address));
  CHECK(ok >= int(kNatFarmMiners));
  CHECK(nat_burst_admitted(limits) >= kNatFarmMiners);
  // A farm bigger than the cap: the rest are over the cap, not too fast
  // (the gateway scores only the latter), however often they retry.
  for (int i = 0; i <= 20; ++i)
    for (int k = 0; k < 100; ++k) CHECK(g.admit(nat, t + 0.1 * i) == AddressGuard::Admit::kTooManyConnections);
  // Restarted again: all of them close and come back at once.
  for (uint32_t i = 0; i < limits.max_connections_per_address; ++i) g.on_close(nat);
  ok = 0;
  for (uint32_t i = 0; i < limits.max_connections_per_address; ++i)
    ok += g.admit(nat, t + 100) == AddressGuard::Admit::kOk;
  CHECK(ok == int(limits.max_connections_per_address));
}

TEST_CASE("nat burst: past the cap is refused as over the cap; faster than the rate under it is too fast") {
  conf::Bans bans;
  conf::Limits limits;
  limits.max_connections_per_address = 10;
  limits.new_connections_per_second = 1;  // burst: max(5, 10)
  AddressGuard g(bans, limits);
  const Address a = *Address::parse("203.0.113.5");
  for (int i = 0; i < 10; ++i) CHECK(g.admit(a, 1) == AddressGuard::Admit::kOk);
  for (int i = 0; i < 30; ++i) CHECK(g.admit(a, 1) == AddressGuard::Admit::kTooManyConnections);
  // All ten leave and come back at once: the bucket is spent.
  for (int i = 0; i < 10; ++i) g.on_close(a);
  CHECK(g.admit(a, 1) == AddressGuard::Admit::kTooFast);
  CHECK(g.admit(a, 3) == AddressGuard::Admit::kOk);  // two tokens back
  CHECK(g.admit(a, 3) == AddressGuard::Admit::kOk);
  CHECK(g.admit(a, 3) == AddressGuard::Admit::kTooFast);
}

TEST_CASE("nat burst: the start-up warning's condition") {
  conf::Limits limits;
  CHECK(nat_burst_admitted(limits) == limits.max_connections_per_address);
  // A slow rate no longer caps a restart: the bucket bursts to the cap.
  limits.new_connections_per_second = 1;
  CHECK(connection_burst(limits) == doctest::Approx(limits.max_connections_per_address));
  CHECK(nat_burst_admitted(limits) == limits.max_connections_per_address);
  // A small cap cannot take a NAT farm's restart: warned about.
  limits.max_connections_per_address = 200;
  CHECK(nat_burst_admitted(limits) == 200);
  CHECK(nat_burst_admitted(limits) < kNatFarmMiners);
  // A fast rate with a small cap: the cap is what refuses.
  limits.new_connections_per_second = 1000;
  CHECK(connection_burst(limits) == doctest::Approx(5000));
  CHECK(nat_burst_admitted(limits) == 200);
}
