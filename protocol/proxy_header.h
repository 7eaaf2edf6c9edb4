// The PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1 and
// 2) that a load balancer puts in front of a connection to say who the real
// client is. Sans-I/O: the caller hands in every byte received so far and
// gets back "need more", the header (and how many bytes it took), or an error
// with its reason. Which peers may send one is the caller's business.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hashgate {

// Which versions a listener accepts.
enum class ProxyVersions : uint8_t { kV1 = 1, kV2 = 2, kAny = 3 };

// Larger headers are refused. v1 lines are at most 107 bytes by the spec; a
// v2 header carries TLVs (AWS and GCP add a few dozen bytes, a client
// certificate may add more), 4 KiB leaves room without letting a peer park
// 64 KiB per connection before it is admitted.
inline constexpr size_t kMaxProxyHeaderBytes = 4096;
inline constexpr size_t kMaxProxyV1Bytes = 107;

struct ProxyHeader {
  uint8_t version = 0;  // 1 or 2
  // False for v2 LOCAL (the balancer's own health check), v1 UNKNOWN and the
  // families hashgate cannot use (unspecified, AF_UNIX, datagram): the spec
  // says to use the connection's own addresses then.
  bool has_source = false;
  bool v6 = false;
  std::array<uint8_t, 16> source{};  // network byte order, IPv4 in the first 4 bytes
  uint16_t source_port = 0;
  size_t length = 0;            // bytes the header took; the client's data follows
  const char* kind = "";        // "tcp4", "tcp6", "local", "unknown", "unspec"
};

struct ProxyParse {
  enum class Status : uint8_t {
    kNeedMore,  // a valid beginning: wait for more bytes
    kDone,      // `header` is complete
    kError,     // not a valid header: close the connection
  };
  enum class Error : uint8_t {
    kNone,
    kMissing,       // the first bytes are no PROXY signature at all
    kWrongVersion,  // a valid signature of a version this listener does not take
    kMalformed,     // a signature, then something the spec does not allow
    kTooLong,       // longer than the caps above
  };
  Status status = Status::kNeedMore;
  Error error = Error::kNone;
  ProxyHeader header;
  std::string reason;  // for the log line, when status is kError
};

const char* proxy_error_name(ProxyParse::Error e);  // "missing", "wrong_version", ...

// Parses the header at the start of `data` (all bytes received so far on the
// connection). Never reads past the header, never keeps state: call it again
// with the longer buffer after kNeedMore.
ProxyParse parse_proxy_header(std::string_view data, ProxyVersions accept);

// True when `data` (at least one byte) begins like a PROXY header of either
// version, or is the beginning of one: how the edge recognises a peer that
// sends a header where none is accepted from it.
bool starts_like_proxy_header(std::string_view data);

}  // namespace hashgate
