// The edge: everything a connection meets before it speaks Stratum, and the
// address guard that judges where it comes from. A trusted balancer's PROXY
// header (then the address it names is admitted), sniffing the first bytes,
// an HTTP CONNECT (answered 200 or refused with its status), TLS detection;
// then the bytes go to the connection's session (`stratum`) or its TLS
// channel (`tls`). Owns the guard (limits, scores, bans) and the edge's
// counters (connections accepted, closed, refused; violations; PROXY
// results), which it copies into snapshots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.h"
#include "proxy/guard.h"
#include "proxy/miner_conn.h"
#include "proxy/snapshot.h"

namespace hashgate {

class Edge {
 public:
  struct Hooks {
    std::function<void(Miner*, std::string_view)> stratum;  // plain Stratum bytes, for the session
    std::function<void(Miner*, std::string_view)> tls;      // TLS records (m->tls is set)
    // Every open connection from an address (a ban closes them).
    std::function<std::vector<Miner*>(const Address&)> connections_of;
  };
  // `cfg` is the gateway's live config (http_connect, pools, bans, limits).
  Edge(const conf::Config& cfg, MinerWriter& writer, Hooks hooks);
  Edge(const Edge&) = delete;
  Edge& operator=(const Edge&) = delete;

  // A new connection from `a`: the guard's verdict; a refusal is counted.
  // Refused before anything is allocated for it (log lines are rate-limited:
  // a flood must not turn into a flood of log lines).
  bool admit(const Address& a, double now);
  // Bytes of a connection still at the edge (m->edge != kOpen).
  void read(Miner* m, std::string_view bytes, double now);
  // Adds to the address's violation score; a ban closes all its connections (logged once).
  void punish(const Address& a, Violation v, double now);

  void count_accepted() { ++accepted_; }
  void count_rejected(const char* why) { ++rejected_[why]; }
  void count_closed(const char* reason_class) { ++closed_[reason_class]; }
  // A closed connection leaves the guard's per-address count.
  void on_close(const Miner* m) {
    if (m->counted) guard_.on_close(m->addr);
  }
  // Each second: bans that expired (logged).
  void tick(double now);
  // The admin API's DELETE /api/v1/bans/<address>.
  void unban(const std::string& address);
  // A reload: bans and limits as the new config says.
  void configure();

  // Connections, PROXY results, violations and bans; `unix_offset` turns the
  // loop's time into Unix time.
  void fill(Snapshot& s, double now, double unix_offset) const;

 private:
  // A trusted balancer's connection: its PROXY header names the miner, who
  // is then admitted by the guard; the rest goes on through read().
  void proxy_header_read(Miner* m, std::string_view bytes, double now);
  void connect_read(Miner* m, std::string_view bytes, double now);
  // The pool an HTTP CONNECT target means (a route, or a pool's own host:port).
  std::optional<size_t> route_connect(const std::string& target) const;
  void refuse_connect(Miner* m, int status, const std::string& why, const char* extra_headers, double now);
  void refuse_protocol(Miner* m, const std::string& why, double now);

  const conf::Config& cfg_;
  MinerWriter& writer_;
  Hooks hooks_;
  AddressGuard guard_;
  uint64_t accepted_ = 0;
  std::map<std::string, uint64_t> closed_;
  std::map<std::string, uint64_t> rejected_;
  std::map<std::string, uint64_t> violations_;
  std::map<std::string, uint64_t> proxy_protocol_;  // PROXY headers by result
};

}  // namespace hashgate
