// How miner sessions are placed on pool connections: two strategies behind
// one interface. Aggregation shares a few standing connections among many
// sessions (each gets a prefix of the pool's extranonce2 space) and
// authorizes as the pool's configured user; passthrough opens one
// connection per session, authorized under the miner's own worker name
// (the same machinery with no prefix). The router picks one at
// construction and never asks which it has.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "protocol/stratum_codec.h"
#include "protocol/upstream_session.h"
#include "routing/router_config.h"

namespace hashgate::routing {

class Router;

class Placement {
 public:
  virtual ~Placement() = default;
  // Finds (or opens, or waits for) a connection for the session.
  virtual void assign(Router& r, uint64_t sid) = 0;
  // Connections kept open with no session on them (standing, warm standby).
  virtual bool keeps_standing_links() const = 0;
  // A mining.authorize: false when hashgate answers it itself.
  virtual bool authorize(Router& r, uint64_t sid, const RpcId& id, const AuthorizeParams& auth) = 0;
  // The worker name a share goes upstream under.
  virtual const std::string& upstream_worker(const PoolConfig& pool, const std::string& worker) const = 0;
  // The credentials a new connection authorizes with at once (none: later, per miner).
  virtual void credentials(const PoolConfig& pool, UpstreamOptions& o) const = 0;
};

std::unique_ptr<Placement> make_placement(Strategy s);

}  // namespace hashgate::routing
