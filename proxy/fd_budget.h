// Miners stop short of the process's descriptor limit (issue 17.11). At the
// limit itself libuv's accept takes its emergency descriptor, accepts and
// closes every waiting connection and says nothing; pool connections, the
// ledger and the admin server then fail too. So hashgate refuses miners
// itself a reserve short of the limit (logged, counted) and keeps that
// reserve for everything else.
//
// No descriptor count is kept: Linux gives a new socket the lowest free
// number, so when a miner's descriptor is N, every number below N is open
// (N + 1 in use at least). A miner whose number reaches limit - reserve is
// refused.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>

namespace hashgate {

class FdBudget {
 public:
  explicit FdBudget(uint64_t limit)
      : limit_(limit), reserve_(std::clamp<uint64_t>(limit / 64, 16, 1024)) {}
  // The soft RLIMIT_NOFILE now (main raises it to the hard limit first).
  static FdBudget from_rlimit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return FdBudget(uint64_t(1) << 20);
    return FdBudget(uint64_t(r.rlim_cur));
  }
  // Whether a miner's freshly accepted descriptor reaches into the reserve.
  bool in_reserve(int fd) const { return fd >= 0 && uint64_t(fd) + reserve_ >= limit_; }
  uint64_t limit() const { return limit_; }
  uint64_t reserve() const { return reserve_; }

 private:
  uint64_t limit_;
  uint64_t reserve_;
};

}  // namespace hashgate
