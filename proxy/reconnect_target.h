// Where a miner told to move by client.reconnect must go, so that it lands
// on the pool it is moved to. Loop-free (unit-tested without sockets).
//
// Real firmware ignores a reconnect that names no host or port 0 (minerd,
// cpuminer-opt) or an empty host (cgminer), so the message always names
// both:
//  - a miner that came through HTTP CONNECT reconnects through its proxy
//    to the address it is given: the target pool's own host:port, which
//    hashgate routes to that pool (never back to the pool it left);
//  - any other miner comes back to hashgate: the listener's advertised
//    address (listeners[].advertise, for NAT or a load balancer), else the
//    local address of the miner's own connection (what it connected to).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "conf/config.h"

namespace hashgate {

struct ReconnectTarget {
  std::string host;
  uint16_t port = 0;
};

// `pool_endpoint`: the target pool's host:port, none for a test:// pool.
// `local`: the local address of the miner's socket (none if unknown).
std::optional<ReconnectTarget> reconnect_target(bool tunneled, const std::optional<conf::Endpoint>& pool_endpoint,
                                                const std::optional<conf::Endpoint>& advertise,
                                                const std::optional<conf::Endpoint>& local);

// When a miner told to reconnect after `wait` seconds is closed if it is still there.
inline double reconnect_deadline(double now, double wait, double grace) { return now + wait + grace; }

}  // namespace hashgate
