// libFuzzer: pool jobs into the integrity checks (protocol/pool_integrity.h).
// Each input line is a pool's mining.notify; its first byte picks the pool
// (of three: two recognised, one with coinbase rules) and the rest is the
// JSON line. A line starting with 'N' is a node tip instead. The clock moves
// one second per line so that stale flags and moves are reached too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/pool_integrity.h"
#include "protocol/stratum_codec.h"

using namespace hashgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static StratumParser parser(65536);
  PoolRules ruled;
  ruled.name = "ruled";
  ruled.required_outputs.push_back({Bytes{0x51}, "script:51"});
  ruled.lock_outputs = true;
  PoolRules a, b;
  a.name = "a";
  b.name = "b";
  IntegrityOptions o;
  o.stale_grace_seconds = 2;
  o.stale_move_seconds = 4;
  o.stale_move = true;
  IntegrityMonitor m(o, {a, b, ruled});
  std::string_view in(reinterpret_cast<const char*>(data), size);
  double now = 0;
  while (!in.empty()) {
    const size_t eol = in.find('\n');
    std::string_view line = in.substr(0, eol);
    in = eol == std::string_view::npos ? std::string_view() : in.substr(eol + 1);
    now += 1;
    if (line.size() < 2) continue;
    if (line[0] == 'N' && line.size() >= 34) {
      Hash256 h{};
      for (size_t i = 0; i < 32; ++i) h[i] = uint8_t(line[1 + i]);
      m.on_node_tip(h, uint32_t(uint8_t(line[33])) * 1000, now);
    } else {
      const size_t pool = uint8_t(line[0]) % 3;
      auto msg = parser.parse(line.substr(1));
      if (!msg) continue;
      auto n = decode_notify(*msg);
      if (!n) continue;
      m.on_job(pool, job_facts(*n, 4, 8), uint32_t(n->version), now, 1.7e9);
      m.on_set_extranonce(pool, size_t(uint8_t(line[0])) % 40, uint32_t(uint8_t(line[0]) % 17));
    }
    m.on_tick(now);
    IntegrityEvent e;
    while (m.next_event(e)) {
    }
    (void)m.view(0, now);
  }
  return 0;
}
