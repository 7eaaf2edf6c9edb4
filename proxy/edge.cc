#include "proxy/edge.h"

#include <cctype>

#include "protocol/http_connect.h"
#include "proxy/log.h"

namespace hashgate {

Edge::Edge(const conf::Config& cfg, MinerWriter& writer, Hooks hooks)
    : cfg_(cfg), writer_(writer), hooks_(std::move(hooks)), guard_(cfg.bans, cfg.limits) {}

bool Edge::admit(const Address& a, double now) {
  const auto admit = guard_.admit(a, now);
  if (admit == AddressGuard::Admit::kOk) return true;
  const char* why = admit == AddressGuard::Admit::kBanned              ? "banned"
                    : admit == AddressGuard::Admit::kTooManyConnections ? "address_connection_limit"
                                                                         : "address_connection_rate";
  ++rejected_[why];
  // Over the cap is a farm bigger than the cap behind one NAT as likely as
  // abuse: refused and said in a (rate-limited) line, never scored (a ban
  // would close every miner of the address). Too fast under it is scored.
  if (admit == AddressGuard::Admit::kTooFast) punish(a, Violation::kConnectionLimit, now);
  if (admit == AddressGuard::Admit::kTooManyConnections)
    log::warn("address_connection_limit").kv("address", a.to_string())
        .kv("limits.max_connections_per_address", uint64_t(cfg_.limits.max_connections_per_address))
        .kv("advice", "a farm behind one NAT address bigger than this: raise the limit or put the address in bans.allowlist");
  return false;
}

void Edge::punish(const Address& a, Violation v, double now) {
  ++violations_[violation_name(v)];
  if (!guard_.violate(a, v, now)) return;
  const double seconds = guard_.ban_seconds_for(a);
  std::vector<Miner*> victims = hooks_.connections_of(a);
  log::warn("address_banned").kv("address", a.to_string()).kv("seconds", seconds).kv("violation", violation_name(v))
      .kv("connections_closed", uint64_t(victims.size()));
  for (Miner* m : victims) {
    m->abort_close = true;
    m->host->close_miner(m, "address banned", "banned");
  }
}

void Edge::proxy_header_read(Miner* m, std::string_view bytes, double now) {
  // Bounded: the parser refuses a header past kMaxProxyHeaderBytes.
  m->edge_buf.append(bytes);
  const ProxyParse p = m->listener->proxy.parse(m->edge_buf);
  if (p.status == ProxyParse::Status::kNeedMore) return;
  if (p.status == ProxyParse::Status::kError) {
    // The balancer is trusted and not punished: a bad header from it is a
    // configuration mismatch (send-proxy vs proxy_protocol), not abuse.
    ++proxy_protocol_[proxy_error_name(p.error)];
    log::warn("proxy_header_refused").kv("listener", m->listener->cfg->name).kv("peer", m->peer)
        .kv("error", proxy_error_name(p.error)).kv("reason", p.reason);
    return m->host->close_miner(m, "PROXY header refused: " + p.reason, "proxy_header");
  }
  const std::string via = m->peer;
  m->addr = proxied_address(p.header, m->addr);
  m->peer = proxied_peer(p.header, m->peer);
  ++proxy_protocol_[p.header.has_source ? (p.header.version == 1 ? "v1" : "v2") : "own_address"];
  if (!admit(m->addr, now)) {
    m->abort_close = true;
    return m->host->close_miner(m, "address refused at admission", "proxied_refused");
  }
  m->counted = true;
  log::debug("proxy_header").kv("session", m->session->id()).kv("peer", m->peer).kv("via", via)
      .kv("version", unsigned(p.header.version)).kv("kind", p.header.kind);
  std::string rest = m->edge_buf.substr(p.header.length);
  m->edge_buf.clear();
  m->edge = Miner::Edge::kSniff;
  if (!rest.empty()) read(m, rest, now);
}

void Edge::connect_read(Miner* m, std::string_view bytes, double now) {
  size_t used = 0;
  const auto st = m->connect->feed(bytes, used);
  if (st == ConnectParser::State::kNeedMore) return;
  if (st == ConnectParser::State::kError)
    return refuse_connect(m, m->connect->error_status(), m->connect->error(), "", now);
  const ConnectRequest req = m->connect->request();
  m->connect.reset();
  const std::string target = (req.host.find(':') != std::string::npos ? "[" + req.host + "]" : req.host) + ":" +
                             std::to_string(req.port);
  const auto& hc = cfg_.http_connect;
  if (!hc.user.empty() && !check_basic_auth(req.proxy_authorization, hc.user, hc.password))
    return refuse_connect(m, 407, req.proxy_authorization.empty() ? "proxy credentials required"
                                                                  : "wrong proxy credentials",
                          "Proxy-Authenticate: Basic realm=\"hashgate\"\r\n", now);
  auto pool = route_connect(target);
  if (!pool)
    return refuse_connect(m, 403, "target " + target + " is not a configured pool (hashgate is not an open proxy)",
                          "", now);
  m->preferred_pool = pool;
  m->tunneled = true;
  m->edge = Miner::Edge::kSniff;
  writer_.write_raw(m, "HTTP/1.1 200 Connection established\r\n\r\n");
  log::info("miner_tunnel").kv("session", m->session->id()).kv("peer", m->peer).kv("target", target)
      .kv("pool", cfg_.pools[*pool].name);
  if (used < bytes.size()) read(m, bytes.substr(used), now);
}

void Edge::read(Miner* m, std::string_view bytes, double now) {
  if (m->edge == Miner::Edge::kProxy) return proxy_header_read(m, bytes, now);
  if (m->edge == Miner::Edge::kConnect) return connect_read(m, bytes, now);
  // Sniffing: the first bytes say what the client speaks.
  // A few bytes decide; until then they wait here (at most 64: whitespace
  // or a partial "CONNECT ").
  m->edge_buf.append(bytes);
  const Sniffed what = sniff_protocol(m->edge_buf);
  if (what == Sniffed::kNeedMore && m->edge_buf.size() < 64) return;
  std::string data;
  data.swap(m->edge_buf);
  const bool tls_listener = m->listener->tls != nullptr;
  switch (what) {
    case Sniffed::kStratum:
      if (tls_listener) return refuse_protocol(m, "plain Stratum on a TLS listener", now);
      m->edge = Miner::Edge::kOpen;
      return hooks_.stratum(m, data);
    case Sniffed::kTlsClientHello:
      if (!tls_listener) return refuse_protocol(m, "TLS on a plain listener", now);
      m->edge = Miner::Edge::kOpen;
      m->tls = std::make_unique<TlsChannel>(m->listener->tls, std::string());
      return hooks_.tls(m, data);
    case Sniffed::kHttpConnect:
      if (!cfg_.http_connect.enabled) return refuse_connect(m, 405, "HTTP CONNECT is disabled here", "", now);
      if (m->tunneled) return refuse_connect(m, 400, "a second CONNECT in the tunnel", "", now);
      m->edge = Miner::Edge::kConnect;
      m->connect = std::make_unique<ConnectParser>();
      return read(m, data, now);
    default:
      if (starts_like_proxy_header(data)) {
        // A PROXY header from a peer that may not send one: it would choose
        // the address it is judged by.
        ++proxy_protocol_[m->listener->proxy.enabled() ? "untrusted" : "not_enabled"];
        log::warn("proxy_header_refused").kv("listener", m->listener->cfg->name).kv("peer", m->peer)
            .kv("error", m->listener->proxy.enabled() ? "untrusted" : "not_enabled")
            .kv("reason", m->listener->proxy.untrusted_reason());
        return refuse_protocol(m, m->listener->proxy.untrusted_reason(), now);
      }
      return refuse_protocol(m, "neither Stratum nor HTTP CONNECT" + std::string(tls_listener ? " nor TLS" : ""), now);
  }
}

std::optional<size_t> Edge::route_connect(const std::string& target) const {
  for (const conf::ConnectRoute& r : cfg_.http_connect.routes)
    if (r.target == target)
      for (size_t i = 0; i < cfg_.pools.size(); ++i)
        if (cfg_.pools[i].name == r.pool) return i;
  for (size_t i = 0; i < cfg_.pools.size(); ++i) {
    const conf::Pool& p = cfg_.pools[i];
    if (p.scheme == conf::PoolScheme::kTest) continue;
    std::string own = p.endpoint.to_string();
    for (char& c : own) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (own == target) return i;
  }
  return std::nullopt;
}

void Edge::refuse_connect(Miner* m, int status, const std::string& why, const char* extra_headers, double now) {
  static const std::map<int, const char*> kText = {{400, "Bad Request"}, {403, "Forbidden"},
                                                   {405, "Method Not Allowed"}, {407, "Proxy Authentication Required"},
                                                   {414, "URI Too Long"}, {431, "Request Header Fields Too Large"}};
  auto it = kText.find(status);
  std::string body = why + "\n";
  writer_.write_raw(m, "HTTP/1.1 " + std::to_string(status) + " " + (it == kText.end() ? "Error" : it->second) +
                           "\r\n" + extra_headers + "Content-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  log::info("miner_connect_refused").kv("peer", m->peer).kv("status", status).kv("reason", why);
  // A missing credential is what a proxy sends first: no penalty for that one.
  if (!(status == 407 && why == "proxy credentials required")) punish(m->addr, Violation::kBadConnect, now);
  m->host->close_miner(m, "HTTP CONNECT refused: " + why, "bad_connect");
}

void Edge::refuse_protocol(Miner* m, const std::string& why, double now) {
  punish(m->addr, Violation::kBadProtocol, now);
  m->host->close_miner(m, why, "bad_protocol");
}

void Edge::tick(double now) {
  for (const Address& a : guard_.tick(now)) log::info("address_unbanned").kv("address", a.to_string()).kv("reason", "expired");
}

void Edge::unban(const std::string& address) {
  if (auto a = Address::parse(address); a && guard_.unban(*a))
    log::info("address_unbanned").kv("address", a->to_string()).kv("reason", "admin api");
}

void Edge::configure() { guard_.configure(cfg_.bans, cfg_.limits); }

void Edge::fill(Snapshot& s, double now, double unix_offset) const {
  s.connections_accepted = accepted_;
  s.connections_closed = closed_;
  s.connections_rejected = rejected_;
  s.proxy_protocol = proxy_protocol_;
  s.violations = violations_;
  s.bans_total = guard_.bans_total();
  s.addresses_tracked = guard_.tracked();
  for (const auto& b : guard_.bans(now))
    s.bans.push_back(BanSnapshot{b.address.to_string(), b.until + unix_offset, b.count, b.last_violation});
}

}  // namespace hashgate
