// libFuzzer: the admin server's request-head reader (proxy/http_server.h,
// http_read_head) fed the input grown a chunk at a time, as a connection's
// reads grow its buffer. Checks what the server relies on: a parsed head is
// never longer than its input or the cap; it agrees with the answer for the
// whole input; a refusal stays a refusal when more bytes arrive; nothing is
// waited for past the cap; methods and header names are tokens, targets
// visible ASCII starting with '/', header values free of control
// characters; and a HEAD request's answer never carries a body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "proxy/http_server.h"

using namespace hashgate;

namespace {

bool tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}
bool token(const std::string& v) { return !v.empty() && std::all_of(v.begin(), v.end(), tchar); }
bool visible(const std::string& v) { return std::all_of(v.begin(), v.end(), [](char c) { return c > 0x20 && c < 0x7f; }); }
bool no_ctl(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f); });
}

void check_request(const HttpRequest& r) {
  if (!token(r.method)) __builtin_trap();
  if (r.path.empty() || r.path.front() != '/' || !visible(r.path) || r.path.find('?') != std::string::npos)
    __builtin_trap();
  if (!visible(r.query)) __builtin_trap();
  for (const auto& [k, v] : r.headers) {
    if (!token(k) || !no_ctl(v)) __builtin_trap();
    if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t')) __builtin_trap();
    if (r.header(k) == nullptr) __builtin_trap();
  }
  HttpResponse resp{200, "text/plain", "body-bytes", ""};
  const std::string wire = http_serialize(r, resp);
  const bool has_body = wire.size() >= resp.body.size() &&
                        wire.compare(wire.size() - resp.body.size(), resp.body.size(), resp.body) == 0;
  if ((r.method == "HEAD") == has_body) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = 64 + size_t(data[0]) * 32;  // 64 .. 8224 bytes
  const size_t step = data[1] % 29 + 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  HttpRequest last_req;
  HttpHead last;
  size_t fed = 0;
  while (fed < in.size()) {
    fed = std::min(in.size(), fed + step);
    last_req = HttpRequest{};
    last = http_read_head(in.substr(0, fed), cap, last_req);
    if (last.status != HttpHead::Status::kNeedMore) break;
    if (fed > cap) __builtin_trap();  // waited past the cap: the buffer would grow without bound
  }
  HttpRequest whole_req;
  const HttpHead whole = http_read_head(in, cap, whole_req);
  switch (last.status) {
    case HttpHead::Status::kDone:
      if (last.length == 0 || last.length > fed || last.length > cap) __builtin_trap();
      check_request(last_req);
      // The same head whatever follows it.
      if (whole.status != HttpHead::Status::kDone || whole.length != last.length ||
          whole_req.method != last_req.method || whole_req.path != last_req.path ||
          whole_req.query != last_req.query || whole_req.headers != last_req.headers)
        __builtin_trap();
      break;
    case HttpHead::Status::kBad:
    case HttpHead::Status::kTooLarge:
      if (whole.status != last.status) __builtin_trap();
      break;
    case HttpHead::Status::kNeedMore:
      if (in.size() > cap || whole.status != HttpHead::Status::kNeedMore) __builtin_trap();
      break;
  }
  return 0;
}
