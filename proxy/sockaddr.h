// A TCP handle's addresses, as the gateway logs and judges them.
#pragma once

#include <uv.h>

#include <optional>
#include <string>

#include "conf/config.h"
#include "proxy/guard.h"

namespace hashgate {

// "1.2.3.4:5" or "[::1]:5"; "?" when the socket has no peer.
std::string peer_name(uv_tcp_t* tcp);
// The peer's address for limits and bans (empty when unknown).
Address peer_address(uv_tcp_t* tcp);
// The local address of a miner's connection: what it connected to.
std::optional<conf::Endpoint> local_endpoint(uv_tcp_t* tcp);

}  // namespace hashgate
