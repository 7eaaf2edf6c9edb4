// HTTP CONNECT, the way miners behind an HTTP proxy reach a pool: parsed
// sans-I/O with hard limits, so a peer can neither grow memory nor stall
// the parser. After the request the same socket carries Stratum.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hashgate {

struct ConnectRequest {
  std::string host;  // lower-cased; IPv6 without brackets
  uint16_t port = 0;
  std::string proxy_authorization;  // the header's value, if any
};

class ConnectParser {
 public:
  static constexpr size_t kMaxRequestLine = 1024;
  static constexpr size_t kMaxHeaderBytes = 8192;
  static constexpr size_t kMaxHeaders = 64;

  enum class State { kNeedMore, kDone, kError };

  // Feeds bytes; on kDone, `consumed` tells how many of them belonged to the
  // request (the rest is already the tunnel's payload).
  State feed(std::string_view bytes, size_t& consumed);
  const ConnectRequest& request() const { return req_; }
  // On kError: the HTTP status to answer (400, 405, 414, 431) and why.
  int error_status() const { return error_status_; }
  const std::string& error() const { return error_; }

 private:
  State fail(int status, std::string why);
  State line(std::string_view l);

  std::string buf_;  // the current line
  size_t total_ = 0;
  size_t headers_ = 0;
  bool request_line_done_ = false;
  ConnectRequest req_;
  State state_ = State::kNeedMore;
  int error_status_ = 0;
  std::string error_;
};

// "Basic base64(user:password)" against the configured pair (constant time in
// the secret's length).
bool check_basic_auth(std::string_view header_value, std::string_view user, std::string_view password);

// The byte sequence a client opens with, to route a new connection.
enum class Sniffed { kUnknown, kStratum, kHttpConnect, kTlsClientHello, kNeedMore };
Sniffed sniff_protocol(std::string_view first_bytes);

}  // namespace hashgate
