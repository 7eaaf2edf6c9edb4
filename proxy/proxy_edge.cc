#include "proxy/proxy_edge.h"

namespace hashgate {

ProxyEdge::ProxyEdge(const conf::Listener& l) : enabled_(l.proxy_protocol != conf::ProxyProtocol::kOff) {
  switch (l.proxy_protocol) {
    case conf::ProxyProtocol::kV1: versions_ = ProxyVersions::kV1; break;
    case conf::ProxyProtocol::kV2: versions_ = ProxyVersions::kV2; break;
    default: versions_ = ProxyVersions::kAny; break;
  }
  for (const std::string& text : l.trusted_proxies)
    if (auto c = Cidr::parse(text)) trusted_.push_back(*c);
}

bool ProxyEdge::expects_header(const Address& peer) const {
  if (!enabled_) return false;
  for (const Cidr& c : trusted_)
    if (c.contains(peer)) return true;
  return false;
}

Address proxied_address(const ProxyHeader& h, const Address& connection) {
  if (!h.has_source) return connection;
  Address a;
  a.v6 = h.v6;
  a.bytes = h.source;
  return a;
}

std::string proxied_peer(const ProxyHeader& h, const std::string& connection_peer) {
  if (!h.has_source) return connection_peer;
  const std::string host = proxied_address(h, Address{}).to_string();
  return (h.v6 ? "[" + host + "]" : host) + ":" + std::to_string(h.source_port);
}

}  // namespace hashgate
