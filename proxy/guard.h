// Per-address protection at the edge: connection limits, a token bucket for
// new connections, a violation score that decays, and escalating bans.
// Owned by the loop thread; no I/O, time passed in.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"

namespace hashgate {

// An IPv4 or IPv6 address in network byte order (IPv4 in the first 4 bytes).
struct Address {
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;
  bool operator==(const Address& o) const { return v6 == o.v6 && bytes == o.bytes; }
  std::string to_string() const;
  static std::optional<Address> parse(const std::string& text);
};

struct AddressHash {
  size_t operator()(const Address& a) const;
};

struct Cidr {
  Address base;
  unsigned bits = 0;
  bool contains(const Address& a) const;
  static std::optional<Cidr> parse(const std::string& text);  // "10.0.0.0/8", "::1/128", "1.2.3.4"
};

// How much each kind of misbehaviour adds to an address's score.
enum class Violation {
  kMalformed,       // a line that is not JSON-RPC, or a malformed request
  kUnknownMethod,
  kOversizedLine,
  kInvalidShare,    // low difficulty, duplicate, bad parameters (not stale)
  kRateExceeded,    // messages per second over the limit
  kSlowClient,      // never subscribed or authorized in time; stopped reading
  kBadConnect,      // a malformed or refused HTTP CONNECT, wrong proxy credentials
  kBadProtocol,     // neither Stratum nor CONNECT (nor TLS where configured), a failed TLS handshake
  kConnectionLimit, // over the per-address connection count or rate
};
const char* violation_name(Violation v);
double violation_weight(Violation v);

// A farm behind one NAT address that restarts opens a connection per miner
// at once (issue 17.11: 503 connections banned the address). The bucket of
// new connections per address therefore bursts to five seconds' worth of
// limits.new_connections_per_second or to limits.max_connections_per_address,
// whichever is more: as many miners as the cap admits may all reconnect at
// once; the rate limits what follows.
double connection_burst(const conf::Limits& limits);
// How many miners behind one address may connect at once without a refusal.
uint32_t nat_burst_admitted(const conf::Limits& limits);
// The farm behind one NAT address the defaults are sized for: a config that
// admits fewer at once is warned about at start (limits_refuse_nat_burst).
constexpr uint32_t kNatFarmMiners = 1000;

class AddressGuard {
 public:
  explicit AddressGuard(const conf::Bans& bans, const conf::Limits& limits);
  void configure(const conf::Bans& bans, const conf::Limits& limits);

  enum class Admit { kOk, kBanned, kTooManyConnections, kTooFast };
  // A new connection from `a`: admitted (and counted) or refused.
  Admit admit(const Address& a, double now);
  void on_close(const Address& a);
  // Adds to the score; true when this violation banned the address (the
  // caller closes its connections and logs the ban, once).
  bool violate(const Address& a, Violation v, double now);
  bool banned(const Address& a, double now) const;
  bool allowlisted(const Address& a) const;
  bool unban(const Address& a);
  // Expires bans, forgets quiet addresses; returns the addresses whose ban ended.
  std::vector<Address> tick(double now);

  struct BanInfo {
    Address address;
    double until = 0;
    unsigned count = 0;  // bans so far (the next one lasts twice as long)
    std::string last_violation;
  };
  std::vector<BanInfo> bans(double now) const;
  double ban_seconds_for(const Address& a) const;
  size_t tracked() const { return entries_.size(); }
  uint64_t bans_total() const { return bans_total_; }

 private:
  struct Entry {
    uint32_t connections = 0;
    double tokens = 0;
    double tokens_at = 0;
    double score = 0;
    double score_at = 0;
    double banned_until = 0;
    unsigned ban_count = 0;
    double last_seen = 0;
    Violation last = Violation::kMalformed;
  };
  double decayed_score(const Entry& e, double now) const;

  conf::Bans bans_;
  conf::Limits limits_;
  std::vector<Cidr> allow_;
  std::unordered_map<Address, Entry, AddressHash> entries_;
  uint64_t bans_total_ = 0;
};

}  // namespace hashgate
