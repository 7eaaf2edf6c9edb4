#include "protocol/http_connect.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace hashgate {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':' || c == '_')) return false;
  return true;
}

}  // namespace

ConnectParser::State ConnectParser::fail(int status, std::string why) {
  state_ = State::kError;
  error_status_ = status;
  error_ = std::move(why);
  return state_;
}

ConnectParser::State ConnectParser::feed(std::string_view bytes, size_t& consumed) {
  consumed = 0;
  if (state_ != State::kNeedMore) return state_;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (++total_ > kMaxHeaderBytes) return fail(431, "request headers larger than 8192 bytes");
    if (c != '\n') {
      if (buf_.size() >= (request_line_done_ ? kMaxHeaderBytes : kMaxRequestLine))
        return fail(request_line_done_ ? 431 : 414, request_line_done_ ? "header line too long"
                                                                       : "request line longer than 1024 bytes");
      buf_.push_back(c);
      continue;
    }
    std::string_view l(buf_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    State s = line(l);
    buf_.clear();
    if (s != State::kNeedMore) {
      consumed = i + 1;
      return s;
    }
  }
  consumed = bytes.size();
  return state_;
}

ConnectParser::State ConnectParser::line(std::string_view l) {
  if (!request_line_done_) {
    // CONNECT host:port HTTP/1.x
    auto sp1 = l.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : l.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || l.find(' ', sp2 + 1) != std::string_view::npos)
      return fail(400, "malformed request line");
    std::string_view method = l.substr(0, sp1), target = l.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = l.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return fail(400, "unsupported HTTP version");
    if (method != "CONNECT") return fail(405, "only CONNECT is served here");
    std::string_view host;
    std::string_view port;
    if (!target.empty() && target.front() == '[') {
      auto close = target.find(']');
      if (close == std::string_view::npos || close + 1 >= target.size() || target[close + 1] != ':')
        return fail(400, "malformed CONNECT target");
      host = target.substr(1, close - 1);
      port = target.substr(close + 2);
    } else {
      auto colon = target.rfind(':');
      if (colon == std::string_view::npos) return fail(400, "CONNECT target needs host:port");
      host = target.substr(0, colon);
      port = target.substr(colon + 1);
    }
    unsigned p = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || p == 0 || p > 65535 || !valid_host(host))
      return fail(400, "malformed CONNECT target");
    req_.host.clear();
    for (char c : host) req_.host.push_back(char(std::tolower(static_cast<unsigned char>(c))));
    req_.port = uint16_t(p);
    request_line_done_ = true;
    return State::kNeedMore;
  }
  if (l.empty()) return state_ = State::kDone;  // end of headers
  if (++headers_ > kMaxHeaders) return fail(431, "more than 64 headers");
  auto colon = l.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail(400, "malformed header line");
  std::string_view name = l.substr(0, colon);
  for (char c : name)
    if (std::isspace(static_cast<unsigned char>(c))) return fail(400, "malformed header name");
  if (iequals(name, "Proxy-Authorization")) req_.proxy_authorization = std::string(trim(l.substr(colon + 1)));
  return State::kNeedMore;
}

bool check_basic_auth(std::string_view value, std::string_view user, std::string_view password) {
  constexpr std::string_view kScheme = "Basic ";
  if (value.size() <= kScheme.size() || !iequals(value.substr(0, kScheme.size()), kScheme)) return false;
  std::string_view b64 = trim(value.substr(kScheme.size()));
  if (b64.size() > 1024 || b64.size() % 4 != 0) return false;
  std::string decoded(b64.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), int(b64.size()));
  if (n < 0) return false;
  size_t len = size_t(n);
  if (b64.size() >= 1 && b64[b64.size() - 1] == '=') --len;  // EVP_DecodeBlock counts padding bytes
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') --len;
  decoded.resize(len);
  const std::string expected = std::string(user) + ":" + std::string(password);
  return decoded.size() == expected.size() && CRYPTO_memcmp(decoded.data(), expected.data(), expected.size()) == 0;
}

Sniffed sniff_protocol(std::string_view b) {
  size_t i = 0;
  while (i < b.size() && (b[i] == ' ' || b[i] == '\r' || b[i] == '\n' || b[i] == '\t')) ++i;
  if (i == b.size()) return Sniffed::kNeedMore;
  const unsigned char c = static_cast<unsigned char>(b[i]);
  if (c == '{') return Sniffed::kStratum;
  if (c == 0x16 && i == 0) return Sniffed::kTlsClientHello;  // TLS handshake record
  constexpr std::string_view kConnect = "CONNECT ";
  std::string_view rest = b.substr(i);
  const size_t n = std::min(rest.size(), kConnect.size());
  if (rest.substr(0, n) == kConnect.substr(0, n)) return n == kConnect.size() ? Sniffed::kHttpConnect : Sniffed::kNeedMore;
  return Sniffed::kUnknown;
}

}  // namespace hashgate
