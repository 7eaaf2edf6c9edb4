// libFuzzer: the config loader. Any text must give a Config or a
// ConfigError, never a crash (operators' files are input too).
#include <cstddef>
#include <cstdint>
#include <string>

#include "conf/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    (void)hashgate::conf::load_string(yaml, "fuzz.yaml");
  } catch (const hashgate::conf::ConfigError&) {
  }
  return 0;
}
