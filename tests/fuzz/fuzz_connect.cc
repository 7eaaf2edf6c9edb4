// libFuzzer: the edge's first bytes — protocol sniffing, the HTTP CONNECT
// parser fed in arbitrary chunks, and proxy credentials.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/http_connect.h"

using namespace hashgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)sniff_protocol(in.substr(0, 64));
  ConnectParser p;
  // Chunk sizes come from the input itself, so splits are explored too.
  size_t pos = 0, step = size ? (data[0] % 17) + 1 : 1;
  while (pos < in.size()) {
    size_t used = 0;
    auto st = p.feed(in.substr(pos, step), used);
    if (st != ConnectParser::State::kNeedMore) {
      if (st == ConnectParser::State::kDone) {
        (void)check_basic_auth(p.request().proxy_authorization, "miner", "secret");
        if (used > step) __builtin_trap();  // consumed more than it was given
      }
      break;
    }
    pos += step;
  }
  return 0;
}
