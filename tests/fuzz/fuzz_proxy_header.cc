// libFuzzer: the PROXY protocol header parser (protocol/proxy_header.h) fed
// the input grown a chunk at a time, as a connection's reads would grow the
// edge's buffer. Checks what the gateway relies on: a header never claims
// more bytes than it was given or than the caps, the answer for the whole
// input agrees with the answer reached chunk by chunk, and an error stays an
// error when more bytes arrive.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/proxy_header.h"

using namespace hashgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto versions = ProxyVersions(1 + data[0] % 3);
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)starts_like_proxy_header(in);
  const size_t step = (data[0] / 3) % 23 + 1;
  ProxyParse last;
  size_t fed = 0;
  while (fed < in.size()) {
    fed = std::min(in.size(), fed + step);
    last = parse_proxy_header(in.substr(0, fed), versions);
    if (last.status != ProxyParse::Status::kNeedMore) break;
  }
  if (last.status == ProxyParse::Status::kDone) {
    const ProxyHeader& h = last.header;
    if (h.length == 0 || h.length > fed || h.length > kMaxProxyHeaderBytes) __builtin_trap();
    if (h.version == 1 && h.length > kMaxProxyV1Bytes) __builtin_trap();
    // The same header, whatever follows it.
    const ProxyParse whole = parse_proxy_header(in, versions);
    if (whole.status != ProxyParse::Status::kDone || whole.header.length != h.length ||
        whole.header.source != h.source || whole.header.source_port != h.source_port)
      __builtin_trap();
  } else if (last.status == ProxyParse::Status::kError) {
    if (last.reason.empty() || last.error == ProxyParse::Error::kNone) __builtin_trap();
    if (parse_proxy_header(in, versions).status != ProxyParse::Status::kError) __builtin_trap();
  } else if (fed >= kMaxProxyHeaderBytes) {
    __builtin_trap();  // waited past the cap: the buffer would grow without bound
  }
  return 0;
}
