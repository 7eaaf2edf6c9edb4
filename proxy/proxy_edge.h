// A listener's PROXY protocol policy: whether a connection must start with a
// PROXY header (it comes from a trusted balancer), and what the header says
// the miner's address is. No I/O: the gateway feeds it addresses and bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "protocol/proxy_header.h"
#include "proxy/guard.h"

namespace hashgate {

class ProxyEdge {
 public:
  ProxyEdge() = default;
  // The CIDRs were validated by conf/; one that does not parse is skipped.
  explicit ProxyEdge(const conf::Listener& l);

  bool enabled() const { return enabled_; }
  // A connection from `peer` must begin with a PROXY header: the listener
  // takes them and `peer` is one of its trusted balancers. Everyone else is
  // a direct client, judged by its own address, and may not send one.
  bool expects_header(const Address& peer) const;
  ProxyParse parse(std::string_view data) const { return parse_proxy_header(data, versions_); }

  // Why a header from an untrusted peer is refused, for the log line.
  const char* untrusted_reason() const {
    return enabled_ ? "PROXY protocol header from an address not in trusted_proxies"
                    : "PROXY protocol header on a listener without proxy_protocol";
  }

 private:
  bool enabled_ = false;
  ProxyVersions versions_ = ProxyVersions::kAny;
  std::vector<Cidr> trusted_;
};

// The miner behind the balancer: its address and "host:port" (IPv6 in
// brackets), or the connection's own when the header carries no source
// (v2 LOCAL, v1 UNKNOWN).
Address proxied_address(const ProxyHeader& h, const Address& connection);
std::string proxied_peer(const ProxyHeader& h, const std::string& connection_peer);

}  // namespace hashgate
