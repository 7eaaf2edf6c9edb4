// The two clocks of the process, in seconds as doubles: the wall clock (what
// logs, the ledger and operators' timestamps use) and the monotonic clock
// (ages and intervals, immune to the wall clock being set). The event loop
// has its own time (uv_now); these are for the code that runs outside it or
// needs a calendar time.
#pragma once

#include <chrono>

namespace hashgate {

inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline double mono_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace hashgate
