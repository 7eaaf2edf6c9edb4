#include "protocol/proxy_header.h"

#include <arpa/inet.h>

#include <cstring>

namespace hashgate {
namespace {

constexpr std::string_view kV1Signature = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr size_t kV2Fixed = 16;  // signature, version/command, family/transport, length

// True when `data` is a prefix of `sig` or begins with it.
bool prefix_match(std::string_view data, std::string_view sig) {
  const size_t n = std::min(data.size(), sig.size());
  return n > 0 && data.substr(0, n) == sig.substr(0, n);
}

ProxyParse fail(ProxyParse::Error e, std::string reason) {
  ProxyParse p;
  p.status = ProxyParse::Status::kError;
  p.error = e;
  p.reason = std::move(reason);
  return p;
}

// A decimal number without heading zeroes (the spec forbids them, so that
// nobody reads them as octal), at most `max`.
bool parse_decimal(std::string_view s, unsigned max, unsigned& out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + unsigned(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

bool parse_ipv4(std::string_view s, uint8_t* out) {
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return false;
    unsigned v = 0;
    if (!parse_decimal(s.substr(0, dot), 255, v)) return false;
    out[i] = uint8_t(v);
    s = i < 3 ? s.substr(dot + 1) : std::string_view();
  }
  return true;
}

bool parse_ipv6(std::string_view s, uint8_t* out) {
  // Hex groups and colons only: inet_pton also takes a dotted IPv4 tail,
  // which the spec's canonical form does not have.
  if (s.empty() || s.size() > 39) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':')) return false;
  char buf[40];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return inet_pton(AF_INET6, buf, out) == 1;
}

// "PROXY TCP4 src dst sport dport\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN...\r\n".
ProxyParse parse_v1(std::string_view data) {
  // The line ends at the first CRLF; a lone CR or LF is an error, not an end.
  size_t end = std::string_view::npos;
  for (size_t i = 0; i < data.size() && i + 1 < kMaxProxyV1Bytes; ++i) {
    if (data[i] == '\n') return fail(ProxyParse::Error::kMalformed, "v1 line has a LF without CR");
    if (data[i] == '\r') {
      if (i + 1 == data.size()) break;  // the LF may be in the next read
      if (data[i + 1] != '\n') return fail(ProxyParse::Error::kMalformed, "v1 line has a CR without LF");
      end = i;
      break;
    }
  }
  if (end == std::string_view::npos) {
    if (data.size() >= kMaxProxyV1Bytes)
      return fail(ProxyParse::Error::kTooLong, "v1 line has no CRLF within 107 bytes");
    return ProxyParse{};
  }
  ProxyParse p;
  p.status = ProxyParse::Status::kDone;
  p.header.version = 1;
  p.header.length = end + 2;
  std::string_view line = data.substr(kV1Signature.size(), end - kV1Signature.size());
  // Exactly one space between fields: split on every space, an empty field is an error.
  std::string_view f[6];
  size_t n = 0;
  while (true) {
    const size_t sp = line.find(' ');
    if (n == 6) return fail(ProxyParse::Error::kMalformed, "v1 line has more than 5 fields after PROXY");
    f[n++] = line.substr(0, sp);
    if (sp == std::string_view::npos) break;
    line = line.substr(sp + 1);
    if (f[0] == "UNKNOWN") break;  // the rest of an UNKNOWN line is ignored
  }
  if (f[0] == "UNKNOWN") {
    p.header.kind = "unknown";
    return p;
  }
  const bool v6 = f[0] == "TCP6";
  if (!v6 && f[0] != "TCP4")
    return fail(ProxyParse::Error::kMalformed,
                "v1 protocol '" + std::string(f[0].substr(0, 16)) + "' is not TCP4, TCP6 nor UNKNOWN");
  for (size_t i = 1; i < n; ++i)
    if (f[i].empty()) return fail(ProxyParse::Error::kMalformed, "v1 line has an empty field (two spaces in a row?)");
  if (n != 5) return fail(ProxyParse::Error::kMalformed, "v1 " + std::string(f[0]) + " line needs 4 fields separated by single spaces");
  uint8_t dst[16];
  const bool ok_src = v6 ? parse_ipv6(f[1], p.header.source.data()) : parse_ipv4(f[1], p.header.source.data());
  if (!ok_src)
    return fail(ProxyParse::Error::kMalformed, "v1 source '" + std::string(f[1]) + "' is not a canonical " +
                                                   (v6 ? "IPv6" : "IPv4") + " address");
  if (!(v6 ? parse_ipv6(f[2], dst) : parse_ipv4(f[2], dst)))
    return fail(ProxyParse::Error::kMalformed, "v1 destination '" + std::string(f[2]) + "' is not a canonical " +
                                                   (v6 ? "IPv6" : "IPv4") + " address");
  unsigned sport = 0, dport = 0;
  if (!parse_decimal(f[3], 65535, sport) || !parse_decimal(f[4], 65535, dport))
    return fail(ProxyParse::Error::kMalformed, "v1 ports must be 0..65535 in decimal without heading zeroes");
  p.header.has_source = true;
  p.header.v6 = v6;
  p.header.source_port = uint16_t(sport);
  p.header.kind = v6 ? "tcp6" : "tcp4";
  return p;
}

ProxyParse parse_v2(std::string_view data) {
  if (data.size() < kV2Fixed) return ProxyParse{};
  const auto* b = reinterpret_cast<const uint8_t*>(data.data());
  if ((b[12] >> 4) != 2) return fail(ProxyParse::Error::kMalformed, "v2 header with version " + std::to_string(b[12] >> 4));
  const unsigned command = b[12] & 0x0f, family = b[13] >> 4, transport = b[13] & 0x0f;
  if (command > 1) return fail(ProxyParse::Error::kMalformed, "v2 command " + std::to_string(command) + " is neither LOCAL nor PROXY");
  if (family > 3) return fail(ProxyParse::Error::kMalformed, "v2 address family " + std::to_string(family) + " is unassigned");
  if (transport > 2) return fail(ProxyParse::Error::kMalformed, "v2 transport " + std::to_string(transport) + " is unassigned");
  const size_t length = size_t(b[14]) << 8 | b[15];
  if (kV2Fixed + length > kMaxProxyHeaderBytes)
    return fail(ProxyParse::Error::kTooLong, "v2 header of " + std::to_string(kV2Fixed + length) + " bytes (limit " +
                                                 std::to_string(kMaxProxyHeaderBytes) + ")");
  if (data.size() < kV2Fixed + length) return ProxyParse{};
  ProxyParse p;
  p.status = ProxyParse::Status::kDone;
  p.header.version = 2;
  p.header.length = kV2Fixed + length;  // TLVs after the addresses are skipped with it
  if (command == 0) {
    p.header.kind = "local";  // the balancer's own connection: its address block is ignored
    return p;
  }
  // TCP over IPv4 or IPv6 carries the client's address; every other valid
  // combination falls back to the connection's own address, as the spec asks.
  if (transport != 1 || (family != 1 && family != 2)) {
    p.header.kind = "unspec";
    return p;
  }
  const bool v6 = family == 2;
  const size_t need = v6 ? 36 : 12, alen = v6 ? 16 : 4;
  if (length < need)
    return fail(ProxyParse::Error::kMalformed, "v2 " + std::string(v6 ? "TCP6" : "TCP4") + " address block of " +
                                                   std::to_string(length) + " bytes, needs " + std::to_string(need));
  std::memcpy(p.header.source.data(), b + kV2Fixed, alen);
  p.header.source_port = uint16_t(b[kV2Fixed + 2 * alen] << 8 | b[kV2Fixed + 2 * alen + 1]);
  p.header.has_source = true;
  p.header.v6 = v6;
  p.header.kind = v6 ? "tcp6" : "tcp4";
  return p;
}

}  // namespace

const char* proxy_error_name(ProxyParse::Error e) {
  switch (e) {
    case ProxyParse::Error::kNone: return "none";
    case ProxyParse::Error::kMissing: return "missing";
    case ProxyParse::Error::kWrongVersion: return "wrong_version";
    case ProxyParse::Error::kMalformed: return "malformed";
    case ProxyParse::Error::kTooLong: return "too_long";
  }
  return "?";
}

bool starts_like_proxy_header(std::string_view data) {
  return prefix_match(data, kV1Signature) || prefix_match(data, kV2Signature);
}

ProxyParse parse_proxy_header(std::string_view data, ProxyVersions accept) {
  if (data.empty()) return ProxyParse{};
  const bool v1 = prefix_match(data, kV1Signature), v2 = prefix_match(data, kV2Signature);
  if (!v1 && !v2) return fail(ProxyParse::Error::kMissing, "no PROXY protocol header (first bytes are no v1 or v2 signature)");
  const bool want_v1 = (unsigned(accept) & unsigned(ProxyVersions::kV1)) != 0;
  const bool want_v2 = (unsigned(accept) & unsigned(ProxyVersions::kV2)) != 0;
  if (v1) {
    if (data.size() < kV1Signature.size()) return ProxyParse{};
    if (!want_v1) return fail(ProxyParse::Error::kWrongVersion, "PROXY v1 header where only v2 is accepted");
    return parse_v1(data);
  }
  if (data.size() < kV2Signature.size()) return ProxyParse{};
  if (!want_v2) return fail(ProxyParse::Error::kWrongVersion, "PROXY v2 header where only v1 is accepted");
  return parse_v2(data);
}

}  // namespace hashgate
