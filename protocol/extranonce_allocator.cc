#include "protocol/extranonce_allocator.h"

#include <algorithm>

namespace hashgate {

PrefixAllocator::PrefixAllocator(uint32_t prefix_bytes, uint64_t max_sessions)
    : prefix_bytes_(std::min<uint32_t>(prefix_bytes, 4)) {
  uint64_t space = uint64_t(1) << (8 * prefix_bytes_);
  capacity_ = std::max<uint64_t>(1, std::min(space, max_sessions));
}

std::optional<uint32_t> PrefixAllocator::allocate() {
  uint32_t p;
  if (!free_.empty()) {
    p = free_.back();
    free_.pop_back();
  } else if (next_ < capacity_) {
    p = uint32_t(next_++);
  } else {
    return std::nullopt;
  }
  ++in_use_;
  return p;
}

bool PrefixAllocator::take(uint32_t prefix) {
  if (prefix >= capacity_) return false;
  if (prefix < next_) {
    auto it = std::find(free_.begin(), free_.end(), prefix);
    if (it == free_.end()) return false;  // in use or quarantined
    free_.erase(it);
  } else {
    for (uint64_t p = next_; p < prefix; ++p) free_.push_back(uint32_t(p));
    next_ = uint64_t(prefix) + 1;
  }
  ++in_use_;
  return true;
}

void PrefixAllocator::release(uint32_t prefix) {
  quarantine_.push_back(prefix);
  --in_use_;
}

void PrefixAllocator::on_clean_job() {
  free_.insert(free_.end(), quarantine_.begin(), quarantine_.end());
  quarantine_.clear();
}

uint32_t choose_prefix_bytes(int configured, uint32_t n2, uint32_t min_miner_bytes, uint64_t sessions_per_upstream) {
  uint32_t room = n2 > min_miner_bytes ? n2 - min_miner_bytes : 0;
  // Miners keep at least min_miner_bytes: a smaller prefix means fewer
  // sessions per connection, so more upstream connections, never less space.
  if (configured >= 0) return std::min({uint32_t(configured), room, 4u});
  uint32_t want = 0;
  while (want < 4 && (uint64_t(1) << (8 * want)) < sessions_per_upstream) ++want;
  return std::min({want, room, 4u});
}

}  // namespace hashgate
