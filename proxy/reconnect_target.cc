#include "proxy/reconnect_target.h"

namespace hashgate {
namespace {
bool usable(const std::optional<conf::Endpoint>& e) {
  return e && !e->host.empty() && e->port != 0 && e->host != "0.0.0.0" && e->host != "::";
}
}  // namespace

std::optional<ReconnectTarget> reconnect_target(bool tunneled, const std::optional<conf::Endpoint>& pool_endpoint,
                                                const std::optional<conf::Endpoint>& advertise,
                                                const std::optional<conf::Endpoint>& local) {
  // A tunneled miner's proxy connects where it is told: the pool's address
  // brings it (through hashgate's CONNECT routing) to that pool.
  if (tunneled && usable(pool_endpoint)) return ReconnectTarget{pool_endpoint->host, pool_endpoint->port};
  if (usable(advertise)) return ReconnectTarget{advertise->host, advertise->port};
  if (usable(local)) return ReconnectTarget{local->host, local->port};
  return std::nullopt;  // nothing a miner could follow: close it instead
}

}  // namespace hashgate
