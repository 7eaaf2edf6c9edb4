#include "proxy/guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hashgate {

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Address> Address::parse(const std::string& text) {
  Address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) return a;
  return std::nullopt;
}

size_t AddressHash::operator()(const Address& a) const {
  uint64_t x = 0, y = 0;
  std::memcpy(&x, a.bytes.data(), 8);
  std::memcpy(&y, a.bytes.data() + 8, 8);
  return size_t((x * 0x9E3779B97F4A7C15ull) ^ (y + 0x632BE59BD9B4E019ull + (x << 6) + (x >> 2)) ^ uint64_t(a.v6));
}

bool Cidr::contains(const Address& a) const {
  if (a.v6 != base.v6) return false;
  unsigned full = bits / 8, rest = bits % 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xFF << (8 - rest));
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::optional<Cidr> Cidr::parse(const std::string& text) {
  auto slash = text.find('/');
  auto base = Address::parse(text.substr(0, slash));
  if (!base) return std::nullopt;
  const unsigned max = base->v6 ? 128 : 32;
  unsigned bits = max;
  if (slash != std::string::npos) {
    const std::string b = text.substr(slash + 1);
    if (b.empty() || b.size() > 3 || !std::all_of(b.begin(), b.end(), ::isdigit)) return std::nullopt;
    bits = unsigned(std::stoul(b));
    if (bits > max) return std::nullopt;
  }
  return Cidr{*base, bits};
}

const char* violation_name(Violation v) {
  switch (v) {
    case Violation::kMalformed: return "malformed";
    case Violation::kUnknownMethod: return "unknown_method";
    case Violation::kOversizedLine: return "oversized_line";
    case Violation::kInvalidShare: return "invalid_share";
    case Violation::kRateExceeded: return "rate_exceeded";
    case Violation::kSlowClient: return "slow_client";
    case Violation::kBadConnect: return "bad_connect";
    case Violation::kBadProtocol: return "bad_protocol";
    case Violation::kConnectionLimit: return "connection_limit";
  }
  return "?";
}

// With the default threshold of 100: ten malformed lines, fifty unknown
// methods, two oversized lines, a hundred invalid shares, twenty slow
// connections, four bad CONNECTs or a hundred refused connections in a
// short time ban an address.
double violation_weight(Violation v) {
  switch (v) {
    case Violation::kMalformed: return 10;
    case Violation::kUnknownMethod: return 2;
    case Violation::kOversizedLine: return 50;
    case Violation::kInvalidShare: return 1;
    case Violation::kRateExceeded: return 25;
    case Violation::kSlowClient: return 5;
    case Violation::kBadConnect: return 25;
    case Violation::kBadProtocol: return 25;
    case Violation::kConnectionLimit: return 1;
  }
  return 0;
}

double connection_burst(const conf::Limits& limits) {
  return std::max(limits.new_connections_per_second * 5, double(limits.max_connections_per_address));
}

uint32_t nat_burst_admitted(const conf::Limits& limits) {
  return uint32_t(std::min(double(limits.max_connections_per_address), std::floor(connection_burst(limits))));
}

AddressGuard::AddressGuard(const conf::Bans& bans, const conf::Limits& limits) { configure(bans, limits); }

void AddressGuard::configure(const conf::Bans& bans, const conf::Limits& limits) {
  bans_ = bans;
  limits_ = limits;
  allow_.clear();
  for (const std::string& c : bans.allowlist)
    if (auto cidr = Cidr::parse(c)) allow_.push_back(*cidr);  // the config checked the syntax
}

bool AddressGuard::allowlisted(const Address& a) const {
  return std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& c) { return c.contains(a); });
}

double AddressGuard::decayed_score(const Entry& e, double now) const {
  if (e.score <= 0 || now <= e.score_at) return e.score;
  return e.score * std::exp2(-(now - e.score_at) / bans_.score_half_life_seconds);
}

bool AddressGuard::banned(const Address& a, double now) const {
  auto it = entries_.find(a);
  return it != entries_.end() && it->second.banned_until > now;
}

AddressGuard::Admit AddressGuard::admit(const Address& a, double now) {
  const bool allowed = allowlisted(a);
  Entry& e = entries_[a];
  e.last_seen = now;
  if (!allowed && e.banned_until > now) return Admit::kBanned;
  if (!allowed) {
    // Past the cap: refused, and the caller does not score it (a farm
    // bigger than the cap behind one NAT retries; banning the address would
    // close every miner it has).
    if (e.connections >= limits_.max_connections_per_address) return Admit::kTooManyConnections;
    // Token bucket: see connection_burst.
    const double rate = limits_.new_connections_per_second, burst = connection_burst(limits_);
    e.tokens = e.tokens_at == 0 ? burst : std::min(burst, e.tokens + (now - e.tokens_at) * rate);
    e.tokens_at = now;
    if (e.tokens < 1) return Admit::kTooFast;
    e.tokens -= 1;
  }
  ++e.connections;
  return Admit::kOk;
}

void AddressGuard::on_close(const Address& a) {
  auto it = entries_.find(a);
  if (it != entries_.end() && it->second.connections > 0) --it->second.connections;
}

bool AddressGuard::violate(const Address& a, Violation v, double now) {
  if (!bans_.enabled || allowlisted(a)) return false;
  Entry& e = entries_[a];
  e.last_seen = now;
  e.last = v;
  if (e.banned_until > now) return false;  // already banned: nothing more to say
  e.score = decayed_score(e, now) + violation_weight(v);
  e.score_at = now;
  if (e.score < bans_.threshold) return false;
  // Escalates: each ban of the same address lasts twice the one before.
  const double seconds =
      std::min(bans_.max_ban_seconds, bans_.ban_seconds * std::exp2(double(std::min(e.ban_count, 30u))));
  e.banned_until = now + seconds;
  ++e.ban_count;
  e.score = 0;
  ++bans_total_;
  return true;
}

double AddressGuard::ban_seconds_for(const Address& a) const {
  auto it = entries_.find(a);
  if (it == entries_.end() || it->second.ban_count == 0) return 0;
  return std::min(bans_.max_ban_seconds, bans_.ban_seconds * std::exp2(double(std::min(it->second.ban_count - 1, 30u))));
}

bool AddressGuard::unban(const Address& a) {
  auto it = entries_.find(a);
  if (it == entries_.end() || it->second.banned_until == 0) return false;
  it->second.banned_until = 0;
  it->second.score = 0;
  return true;
}

std::vector<Address> AddressGuard::tick(double now) {
  std::vector<Address> ended;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    if (e.banned_until > 0 && e.banned_until <= now) {
      e.banned_until = 0;
      ended.push_back(it->first);
    }
    // Forget an address with no connection, no ban and nothing left of its
    // score, after an hour (so its ban count can escalate meanwhile).
    const bool quiet = e.connections == 0 && e.banned_until == 0 && decayed_score(e, now) < 1 &&
                       now - e.last_seen > std::max(3600.0, bans_.max_ban_seconds);
    it = quiet ? entries_.erase(it) : std::next(it);
  }
  return ended;
}

std::vector<AddressGuard::BanInfo> AddressGuard::bans(double now) const {
  std::vector<BanInfo> out;
  for (const auto& [a, e] : entries_)
    if (e.banned_until > now) out.push_back(BanInfo{a, e.banned_until, e.ban_count, violation_name(e.last)});
  std::sort(out.begin(), out.end(), [](const BanInfo& x, const BanInfo& y) { return x.until > y.until; });
  return out;
}

}  // namespace hashgate
