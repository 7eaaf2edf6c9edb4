// An open-addressing set of 64-bit share fingerprints. Grows by doubling,
// so inserts are amortized allocation-free; one lives with each job and
// dies with it.
#pragma once

#include <cstdint>
#include <vector>

namespace hashgate {

class DedupSet {
 public:
  // Inserts `fp`; false when it was already present.
  bool insert(uint64_t fp) {
    if (fp == 0) fp = 1;  // 0 marks an empty slot
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = fp & mask;; i = (i + 1) & mask) {
      if (slots_[i] == fp) return false;
      if (slots_[i] == 0) {
        slots_[i] = fp;
        ++size_;
        return true;
      }
    }
  }
  size_t size() const { return size_; }

 private:
  void grow() {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, 0);
    size_ = 0;
    for (uint64_t v : old)
      if (v) insert(v);
  }
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

// A keyed 64-bit hash for fingerprints (FNV-1a over the bytes, then a
// murmur finalizer). The key is random per process so fingerprints cannot
// be aimed at each other.
inline uint64_t fingerprint_mix(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
inline uint64_t fingerprint_finish(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

}  // namespace hashgate
