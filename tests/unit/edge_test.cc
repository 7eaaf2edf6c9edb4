// The edge's pure pieces: HTTP CONNECT parsing, protocol sniffing, proxy
// credentials, and the per-address guard (limits, scores, bans).
#include <doctest/doctest.h>

#include <string>

#include "protocol/http_connect.h"
#include "proxy/guard.h"

using namespace hashgate;

namespace {
ConnectParser::State parse_all(ConnectParser& p, std::string_view in, size_t& consumed) {
  return p.feed(in, consumed);
}
}  // namespace

TEST_CASE("CONNECT: a request, byte by byte or at once, leaves the tunnel's bytes") {
  const std::string req =
      "CONNECT Pool.Example.com:3333 HTTP/1.1\r\nHost: pool.example.com:3333\r\n"
      "Proxy-Authorization: Basic bWluZXI6c2VjcmV0\r\n\r\n{\"id\":1}";
  ConnectParser whole;
  size_t used = 0;
  REQUIRE(parse_all(whole, req, used) == ConnectParser::State::kDone);
  CHECK(req.substr(used) == "{\"id\":1}");
  CHECK(whole.request().host == "pool.example.com");
  CHECK(whole.request().port == 3333);
  CHECK(whole.request().proxy_authorization == "Basic bWluZXI6c2VjcmV0");
  ConnectParser bytewise;
  ConnectParser::State st = ConnectParser::State::kNeedMore;
  size_t i = 0;
  for (; i < req.size() && st == ConnectParser::State::kNeedMore; ++i) st = bytewise.feed(req.substr(i, 1), used);
  CHECK(st == ConnectParser::State::kDone);
  CHECK(i == req.find('{'));
  ConnectParser v6;
  CHECK(v6.feed("CONNECT [::1]:3333 HTTP/1.0\n\n", used) == ConnectParser::State::kDone);
  CHECK(v6.request().host == "::1");
}

TEST_CASE("CONNECT: malformed and oversized requests get their status") {
  auto status_of = [](const std::string& in) {
    ConnectParser p;
    size_t used = 0;
    return p.feed(in, used) == ConnectParser::State::kError ? p.error_status() : 0;
  };
  CHECK(status_of("GET / HTTP/1.1\r\n\r\n") == 405);
  CHECK(status_of("CONNECT pool HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("CONNECT pool:0 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("CONNECT pool:99999 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("CONNECT po/ol:1 HTTP/1.1\r\n\r\n") == 400);
  CHECK(status_of("CONNECT pool:1 HTTP/2\r\n\r\n") == 400);
  CHECK(status_of("CONNECT pool:1 HTTP/1.1\r\nno colon here\r\n\r\n") == 400);
  CHECK(status_of("CONNECT " + std::string(2000, 'a') + ":1 HTTP/1.1\r\n") == 414);
  std::string many = "CONNECT pool:1 HTTP/1.1\r\n";
  for (int i = 0; i < 70; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(status_of(many + "\r\n") == 431);
  CHECK(status_of("CONNECT pool:1 HTTP/1.1\r\nX: " + std::string(9000, 'v') + "\r\n") == 431);
  CHECK(status_of("CONNECT pool:1 HTTP/1.1\r\nHost: pool\r\n") == 0);  // not finished: needs more
}

TEST_CASE("proxy credentials and protocol sniffing") {
  CHECK(check_basic_auth("Basic bWluZXI6c2VjcmV0", "miner", "secret"));  // miner:secret
  CHECK(check_basic_auth("basic bWluZXI6c2VjcmV0", "miner", "secret"));
  CHECK_FALSE(check_basic_auth("Basic bWluZXI6c2VjcmV0", "miner", "secreT"));
  CHECK_FALSE(check_basic_auth("Basic bWluZXI6c2VjcmV", "miner", "secret"));
  CHECK_FALSE(check_basic_auth("Bearer bWluZXI6c2VjcmV0", "miner", "secret"));
  CHECK_FALSE(check_basic_auth("", "miner", "secret"));
  CHECK(sniff_protocol("{\"id\":1") == Sniffed::kStratum);
  CHECK(sniff_protocol("\r\n {") == Sniffed::kStratum);
  CHECK(sniff_protocol("CONNECT pool:1") == Sniffed::kHttpConnect);
  CHECK(sniff_protocol("CONN") == Sniffed::kNeedMore);
  CHECK(sniff_protocol("  ") == Sniffed::kNeedMore);
  CHECK(sniff_protocol(std::string("\x16\x03\x01", 3)) == Sniffed::kTlsClientHello);
  CHECK(sniff_protocol("GET / HTTP/1.1") == Sniffed::kUnknown);
  CHECK(sniff_protocol("CONNEXION") == Sniffed::kUnknown);
}

TEST_CASE("guard: connection limits, decaying scores, escalating bans, allowlist") {
  conf::Bans bans;
  bans.allowlist = {"10.1.0.0/16"};
  conf::Limits limits;
  limits.max_connections_per_address = 3;
  limits.new_connections_per_second = 2;  // burst of 10
  AddressGuard g(bans, limits);
  const Address a = *Address::parse("192.0.2.7"), rack = *Address::parse("10.1.2.3");
  double t = 1000;
  for (int i = 0; i < 3; ++i) CHECK(g.admit(a, t) == AddressGuard::Admit::kOk);
  CHECK(g.admit(a, t) == AddressGuard::Admit::kTooManyConnections);
  for (int i = 0; i < 3; ++i) g.on_close(a);
  // 3 of the burst of 10 are spent: 7 more now, then 2 per second.
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    if (g.admit(a, t) == AddressGuard::Admit::kOk) ++ok;
    g.on_close(a);
  }
  CHECK(ok == 7);
  CHECK(g.admit(a, t + 1) == AddressGuard::Admit::kOk);
  g.on_close(a);
  // Ten malformed lines ban; the score decays with a 60 s half-life.
  for (int i = 0; i < 9; ++i) CHECK_FALSE(g.violate(a, Violation::kMalformed, t));
  CHECK_FALSE(g.violate(a, Violation::kMalformed, t + 120));  // 90 -> 22.5 + 10
  for (int i = 0; i < 6; ++i) CHECK_FALSE(g.violate(a, Violation::kMalformed, t + 120));
  CHECK(g.violate(a, Violation::kMalformed, t + 120));  // 102.5: banned
  CHECK(g.banned(a, t + 121));
  CHECK(g.admit(a, t + 121) == AddressGuard::Admit::kBanned);
  CHECK(g.ban_seconds_for(a) == 60);
  CHECK(g.bans(t + 121).size() == 1);
  CHECK(g.tick(t + 179).empty());
  auto ended = g.tick(t + 181);
  REQUIRE(ended.size() == 1);
  CHECK(ended[0] == a);
  // The second ban lasts twice as long.
  CHECK(g.violate(a, Violation::kOversizedLine, t + 200) == false);
  CHECK(g.violate(a, Violation::kOversizedLine, t + 200) == true);
  CHECK(g.ban_seconds_for(a) == 120);
  CHECK(g.unban(a));
  CHECK_FALSE(g.banned(a, t + 201));
  // The farm's racks: never limited, never banned.
  for (int i = 0; i < 50; ++i) CHECK(g.admit(rack, t) == AddressGuard::Admit::kOk);
  for (int i = 0; i < 50; ++i) CHECK_FALSE(g.violate(rack, Violation::kOversizedLine, t));
  CHECK(g.allowlisted(rack));
  CHECK_FALSE(g.allowlisted(a));
  auto c6 = Cidr::parse("fd00::/8");
  REQUIRE(c6);
  CHECK(c6->contains(*Address::parse("fd12::1")));
  CHECK_FALSE(c6->contains(*Address::parse("fe80::1")));
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("10.0.0/8"));
}
