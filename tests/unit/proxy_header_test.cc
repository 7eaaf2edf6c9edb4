// The PROXY protocol header parser (protocol/proxy_header.h): v1 text, v2
// binary, split reads, caps and every refusal reason.
#include <doctest/doctest.h>

#include <string>

#include "protocol/proxy_header.h"
#include "proxy/proxy_edge.h"

using namespace hashgate;
using Status = ProxyParse::Status;
using Error = ProxyParse::Error;

namespace {

std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& block) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += char(ver_cmd);
  h += char(fam);
  h += char(block.size() >> 8);
  h += char(block.size() & 0xff);
  return h + block;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += char(c);
  return s;
}

// 203.0.113.7:40001 -> 10.0.0.1:3333
const std::string kInet = bytes({203, 0, 113, 7, 10, 0, 0, 1, 0x9c, 0x41, 0x0d, 0x05});

std::string source_v4(const ProxyHeader& h) {
  return std::to_string(h.source[0]) + "." + std::to_string(h.source[1]) + "." + std::to_string(h.source[2]) + "." +
         std::to_string(h.source[3]);
}

}  // namespace

TEST_CASE("proxy v1: TCP4 line, then the client's bytes, at once or byte by byte") {
  const std::string line = "PROXY TCP4 198.51.100.22 10.0.0.1 35646 3333\r\n";
  const std::string all = line + "{\"id\":1}\n";
  auto p = parse_proxy_header(all, ProxyVersions::kAny);
  REQUIRE(p.status == Status::kDone);
  CHECK(p.header.version == 1);
  CHECK(p.header.has_source);
  CHECK_FALSE(p.header.v6);
  CHECK(source_v4(p.header) == "198.51.100.22");
  CHECK(p.header.source_port == 35646);
  CHECK(p.header.length == line.size());
  CHECK(std::string(p.header.kind) == "tcp4");
  for (size_t n = 1; n < line.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    CHECK(parse_proxy_header(line.substr(0, n), ProxyVersions::kV1).status == Status::kNeedMore);
  }
  CHECK(parse_proxy_header(line, ProxyVersions::kV1).status == Status::kDone);
}

TEST_CASE("proxy v1: TCP6 and UNKNOWN") {
  auto p = parse_proxy_header("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", ProxyVersions::kV1);
  REQUIRE(p.status == Status::kDone);
  CHECK(p.header.v6);
  CHECK(p.header.source[0] == 0x20);
  CHECK(p.header.source[1] == 0x01);
  CHECK(p.header.source[15] == 1);
  CHECK(p.header.source_port == 65535);
  auto u = parse_proxy_header("PROXY UNKNOWN\r\nrest", ProxyVersions::kV1);
  REQUIRE(u.status == Status::kDone);
  CHECK_FALSE(u.header.has_source);
  CHECK(u.header.length == 15);
  // Whatever follows UNKNOWN before the CRLF is ignored.
  auto u2 = parse_proxy_header("PROXY UNKNOWN ffff::1 ::2 1 2\r\n", ProxyVersions::kV1);
  REQUIRE(u2.status == Status::kDone);
  CHECK(std::string(u2.header.kind) == "unknown");
}

TEST_CASE("proxy v1: what the spec does not allow is an error with its reason") {
  struct Case {
    const char* line;
    const char* reason_part;
  };
  const Case cases[] = {
      {"PROXY TCP4 198.51.100.022 10.0.0.1 1 2\r\n", "not a canonical IPv4"},  // heading zero
      {"PROXY TCP4 198.51.100.256 10.0.0.1 1 2\r\n", "not a canonical IPv4"},
      {"PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n", "not a canonical IPv4"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1.5 1 2\r\n", "destination"},
      {"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", "not a canonical IPv4"},  // family mismatch
      {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "not a canonical IPv6"},
      {"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", "not a canonical IPv6"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 65536 2\r\n", "ports"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 01 2\r\n", "ports"},
      {"PROXY TCP4 1.2.3.4  10.0.0.1 1 2\r\n", "empty field"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 1\r\n", "4 fields"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 1 2 3\r\n", "4 fields"},
      {"PROXY UDP4 1.2.3.4 10.0.0.1 1 2\r\n", "not TCP4, TCP6 nor UNKNOWN"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 1 2\n", "LF without CR"},
      {"PROXY TCP4 1.2.3.4 10.0.0.1 1 2\rx", "CR without LF"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.line));
    auto p = parse_proxy_header(c.line, ProxyVersions::kAny);
    REQUIRE(p.status == Status::kError);
    CHECK(p.error == Error::kMalformed);
    INFO(p.reason);
    CHECK(p.reason.find(c.reason_part) != std::string::npos);
  }
}

TEST_CASE("proxy v1: a line without CRLF is refused at 107 bytes, not buffered further") {
  std::string line = "PROXY UNKNOWN ";
  line.append(kMaxProxyV1Bytes - 1 - line.size(), 'a');
  CHECK(parse_proxy_header(line, ProxyVersions::kV1).status == Status::kNeedMore);  // 106 bytes
  line += 'a';
  auto p = parse_proxy_header(line, ProxyVersions::kV1);
  REQUIRE(p.status == Status::kError);
  CHECK(p.error == Error::kTooLong);
  // The longest line the spec allows (107 bytes with its CRLF) is taken.
  std::string longest = "PROXY UNKNOWN ";
  longest.append(kMaxProxyV1Bytes - 2 - longest.size(), 'f');
  longest += "\r\n";
  REQUIRE(longest.size() == kMaxProxyV1Bytes);
  CHECK(parse_proxy_header(longest, ProxyVersions::kV1).status == Status::kDone);
}

TEST_CASE("proxy v2: TCP over IPv4 and IPv6, TLVs skipped, split reads") {
  const std::string tlv = bytes({0x04, 0x00, 0x03, 0, 0, 0});  // a NOOP TLV
  const std::string h = v2(0x21, 0x11, kInet + tlv);
  const std::string all = h + "{\"id\":1}\n";
  auto p = parse_proxy_header(all, ProxyVersions::kV2);
  REQUIRE(p.status == Status::kDone);
  CHECK(p.header.version == 2);
  CHECK(source_v4(p.header) == "203.0.113.7");
  CHECK(p.header.source_port == 40001);
  CHECK(p.header.length == h.size());
  for (size_t n = 1; n < h.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    CHECK(parse_proxy_header(h.substr(0, n), ProxyVersions::kAny).status == Status::kNeedMore);
  }
  std::string block6(36, '\0');
  block6[0] = char(0x20);
  block6[1] = char(0x01);
  block6[15] = 9;
  block6[32] = char(0x12);
  block6[33] = char(0x34);
  auto p6 = parse_proxy_header(v2(0x21, 0x21, block6), ProxyVersions::kAny);
  REQUIRE(p6.status == Status::kDone);
  CHECK(p6.header.v6);
  CHECK(p6.header.source[15] == 9);
  CHECK(p6.header.source_port == 0x1234);
}

TEST_CASE("proxy v2: LOCAL and families without a usable source keep the connection's address") {
  auto local = parse_proxy_header(v2(0x20, 0x11, kInet), ProxyVersions::kV2);  // LOCAL with a block: skipped
  REQUIRE(local.status == Status::kDone);
  CHECK_FALSE(local.header.has_source);
  CHECK(local.header.length == 16 + kInet.size());
  CHECK(std::string(local.header.kind) == "local");
  for (uint8_t fam : {0x00, 0x12, 0x31, 0x10}) {
    INFO("family/transport " << int(fam));
    auto p = parse_proxy_header(v2(0x21, fam, std::string(fam >> 4 == 3 ? 216 : 12, 'x')), ProxyVersions::kV2);
    REQUIRE(p.status == Status::kDone);
    CHECK_FALSE(p.header.has_source);
  }
}

TEST_CASE("proxy v2: refusals") {
  struct Case {
    std::string in;
    Error error;
    const char* reason_part;
  };
  const Case cases[] = {
      {v2(0x11, 0x11, kInet), Error::kMalformed, "version 1"},
      {v2(0x22, 0x11, kInet), Error::kMalformed, "command 2"},
      {v2(0x21, 0x41, kInet), Error::kMalformed, "family 4"},
      {v2(0x21, 0x13, kInet), Error::kMalformed, "transport 3"},
      {v2(0x21, 0x11, kInet.substr(0, 11)), Error::kMalformed, "needs 12"},
      {v2(0x21, 0x21, std::string(35, '\0')), Error::kMalformed, "needs 36"},
      {v2(0x21, 0x11, std::string(kMaxProxyHeaderBytes - 15, '\0')), Error::kTooLong, "limit 4096"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.reason_part));
    auto p = parse_proxy_header(c.in, ProxyVersions::kAny);
    REQUIRE(p.status == Status::kError);
    CHECK(p.error == c.error);
    INFO(p.reason);
    CHECK(p.reason.find(c.reason_part) != std::string::npos);
  }
  // The cap is decided from the length field, before the bytes arrive.
  auto early = parse_proxy_header(v2(0x21, 0x11, std::string(kMaxProxyHeaderBytes, '\0')).substr(0, 16),
                                  ProxyVersions::kAny);
  CHECK(early.error == Error::kTooLong);
  // The largest header under the cap is taken.
  CHECK(parse_proxy_header(v2(0x21, 0x11, std::string(kMaxProxyHeaderBytes - 16, '\0')), ProxyVersions::kAny).status ==
        Status::kDone);
}

TEST_CASE("proxy: missing header and the wrong version are told apart") {
  auto m = parse_proxy_header("{\"id\":1,\"method\":\"mining.subscribe\"}\n", ProxyVersions::kAny);
  CHECK(m.status == Status::kError);
  CHECK(m.error == Error::kMissing);
  CHECK(parse_proxy_header("PROX{", ProxyVersions::kAny).error == Error::kMissing);
  CHECK(parse_proxy_header("\r\n\r\n{", ProxyVersions::kAny).error == Error::kMissing);
  CHECK(parse_proxy_header("", ProxyVersions::kAny).status == Status::kNeedMore);
  auto w1 = parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyVersions::kV2);
  CHECK(w1.error == Error::kWrongVersion);
  auto w2 = parse_proxy_header(v2(0x21, 0x11, kInet), ProxyVersions::kV1);
  CHECK(w2.error == Error::kWrongVersion);
  CHECK(std::string(proxy_error_name(w2.error)) == "wrong_version");
}

TEST_CASE("proxy: recognising a header sent where none is accepted") {
  CHECK(starts_like_proxy_header("P"));
  CHECK(starts_like_proxy_header("PROXY TCP4 1.2.3.4"));
  CHECK(starts_like_proxy_header(std::string("\r\n\r\n\0", 5)));
  CHECK(starts_like_proxy_header(v2(0x21, 0x11, kInet)));
  CHECK_FALSE(starts_like_proxy_header(""));
  CHECK_FALSE(starts_like_proxy_header("{\"id\":1}"));
  CHECK_FALSE(starts_like_proxy_header("PROXIMA"));
  CHECK_FALSE(starts_like_proxy_header("\r\n{"));
}

TEST_CASE("proxy edge: only trusted balancers on an enabled listener must send a header") {
  hashgate::conf::Listener l;
  l.trusted_proxies = {"10.0.0.0/8", "fd00::/8"};
  CHECK_FALSE(ProxyEdge(l).expects_header(*Address::parse("10.1.2.3")));  // off: nobody
  l.proxy_protocol = hashgate::conf::ProxyProtocol::kV1;
  const ProxyEdge edge(l);
  CHECK(edge.enabled());
  CHECK(edge.expects_header(*Address::parse("10.1.2.3")));
  CHECK(edge.expects_header(*Address::parse("fd00::7")));
  CHECK_FALSE(edge.expects_header(*Address::parse("11.1.2.3")));
  CHECK_FALSE(edge.expects_header(*Address::parse("fe80::1")));
  // The listener's versions apply.
  CHECK(edge.parse(v2(0x21, 0x11, kInet)).error == Error::kWrongVersion);
  auto p = edge.parse("PROXY TCP4 198.51.100.22 10.0.0.1 35646 3333\r\n");
  REQUIRE(p.status == Status::kDone);
  const Address conn = *Address::parse("10.1.2.3");
  CHECK(proxied_address(p.header, conn).to_string() == "198.51.100.22");
  CHECK(proxied_peer(p.header, "10.1.2.3:5000") == "198.51.100.22:35646");
  auto p6 = edge.parse("PROXY TCP6 2001:db8::1 ::1 443 3333\r\n");
  CHECK(proxied_peer(p6.header, "x") == "[2001:db8::1]:443");
  // No source (UNKNOWN, v2 LOCAL): the connection's own address.
  auto u = edge.parse("PROXY UNKNOWN\r\n");
  CHECK(proxied_address(u.header, conn) == conn);
  CHECK(proxied_peer(u.header, "10.1.2.3:5000") == "10.1.2.3:5000");
}
