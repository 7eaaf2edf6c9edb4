// What the routing core is told about the pools and the failover policy:
// plain values, filled by proxy/ from the YAML config (routing/ never sees
// conf/), and by unit tests directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/circuit_breaker.h"

namespace hashgate {

struct FirmwareProfile;

namespace routing {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

struct PoolConfig {
  std::string name;
  std::string url;        // for logs
  Endpoint endpoint;      // the configured host:port
  bool builtin = false;   // the in-process test pool: no address a miner could reconnect to
  std::string user;       // aggregation: the pool account hashgate authorizes as
  std::string password;
  int priority = 0;
  double weight = 1;
  // Everything else that makes a reload see "another pool" (TLS settings):
  // a pool with the same name, url, user, password and identity keeps its
  // state and connections.
  std::string identity;
};

enum class Strategy { kAggregate, kPassthrough };

struct RouterConfig {
  std::vector<PoolConfig> pools;
  // Chosen once: the router builds the placement strategy from it and never
  // tests it again.
  Strategy strategy = Strategy::kAggregate;
  int prefix_bytes = -1;  // < 0: auto
  uint32_t min_extranonce2_size = 4;
  uint64_t sessions_per_upstream = 4096;
  uint32_t version_mask = 0;  // 0: no version rolling with the pools
  std::string agent = "hashgate";
  // Failover timings and limits (failover.* in the YAML).
  double connect_timeout_seconds = 10;
  double job_timeout_seconds = 180;
  double submit_timeout_seconds = 10;
  unsigned max_malformed = 5;
  double max_reject_ratio = 0.5;
  BreakerConfig breaker;
  double failback_after_seconds = 60;
  bool warm_standby = true;
  double reconnect_spread_seconds = 3;
  double reconnect_grace_seconds = 2;
  bool follow_reconnect_to_other_hosts = false;
  // A link's jobs reach miners at most once per this interval, the newest
  // held (protocol/notify_throttle.h); 0 passes every job.
  double job_interval_seconds = 0.25;
  // The profile used for a session that has none yet (its binding's shape).
  const FirmwareProfile* fallback_profile = nullptr;
  // Seeds the breaker's jitter and the reconnect spread (deterministic in tests).
  uint64_t seed = 1;
};

}  // namespace routing
}  // namespace hashgate
