#include "hw/driver.h"

#include "hw/bm13xx.h"
#include "hw/gc3355.h"
#include "hw/zeus.h"

namespace hashgate::hw {

bool known_driver(const std::string& d) {
  return d == "bm1366" || d == "bm1368" || d == "bm1370" || d == "gc3355" || d == "zeus";
}

uint32_t initial_baud(const std::string& d) { (void)d; return 115200; }  // every supported chip resets to 115200

std::unique_ptr<Driver> make_driver(const DriverOptions& o) {
  if (o.driver == "bm1366" || o.driver == "bm1368" || o.driver == "bm1370")
    return std::make_unique<bm13xx::Bm13xxDriver>(o.driver, o.chips, o.frequency, o.baud);
  if (o.driver == "gc3355") return std::make_unique<gc3355::Gc3355Driver>(o.chips, o.frequency);
  if (o.driver == "zeus") return std::make_unique<zeus::ZeusDriver>(o.chips, o.frequency);
  return nullptr;
}

}  // namespace hashgate::hw
