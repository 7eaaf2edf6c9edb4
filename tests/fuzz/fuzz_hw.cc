// Board replies are device input: a flaky USB adapter or a broken chip can
// send anything. The first byte picks a driver; the rest is cut into reads
// fed to it after start(), with the clock moving; every nonce event must
// name a work id the driver handed out.
#include <cstddef>
#include <cstdint>
#include <set>

#include "hw/driver.h"

using namespace hashgate;
using namespace hashgate::hw;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* kDrivers[] = {"bm1370", "bm1366", "gc3355", "zeus"};
  const char* name = kDrivers[data[0] % 4];
  unsigned chips = 1 + data[1] % 8;
  auto d = make_driver({name, chips, 0, data[0] & 0x80 ? 1000000u : 115200u});
  double now = 0;
  d->start(now);
  std::set<uint8_t> ids;
  BoardWork w;
  w.target = target_from_difficulty(d->algorithm(), 1);
  size_t pos = 2;
  while (pos < size) {
    size_t n = 1 + data[pos] % 32;
    ++pos;
    if (pos + n > size) n = size - pos;
    d->on_bytes({data + pos, n}, now);
    pos += n;
    now += 0.3;
    d->on_tick(now);
    if (d->ready()) ids.insert(d->send_work(w));
    d->take_actions();
    for (const DriverEvent& e : d->take_events()) {
      if (e.kind != DriverEvent::kNonce) continue;
      if (e.work_ids.empty()) __builtin_trap();
      if (e.chip >= 256) __builtin_trap();
      if (e.core >= 128) __builtin_trap();  // seven core bits at most (Zeus: three)
    }
  }
  return 0;
}
