// 256-bit targets and Stratum difficulty for both algorithms. A hash is
// read as a little-endian 256-bit number and meets a target when <= it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hashing/bytes.h"

namespace hashgate {

enum class Algorithm { kSha256d, kScrypt };

std::optional<Algorithm> parse_algorithm(std::string_view name);
const char* algorithm_name(Algorithm a);
// Hashes a share of difficulty 1 stands for: 2^32 for sha256d; scrypt's
// difficulty 1 is 65536 times easier.
inline double hashes_per_difficulty(Algorithm a) { return a == Algorithm::kScrypt ? 65536.0 : 4294967296.0; }

class U256 {
 public:
  U256() = default;
  static U256 from_le_bytes(const uint8_t bytes[32]);
  static U256 from_hash(const Hash256& h) { return from_le_bytes(h.data()); }
  static U256 max();
  // Bitcoin's compact form ("nbits"): mantissa * 256^(exponent-3).
  static U256 from_compact(uint32_t nbits);
  // Nearest representable value of a non-negative double, saturating.
  static U256 from_double(double v);

  double to_double() const;
  std::string to_hex() const;  // big-endian, 64 digits
  bool is_zero() const { return limb_[0] == 0 && limb_[1] == 0 && limb_[2] == 0 && limb_[3] == 0; }

  friend bool operator<=(const U256& a, const U256& b) { return !(b < a); }
  friend bool operator<(const U256& a, const U256& b) {
    for (int i = 3; i >= 0; --i) {
      if (a.limb_[i] != b.limb_[i]) return a.limb_[i] < b.limb_[i];
    }
    return false;
  }
  friend bool operator==(const U256& a, const U256& b) = default;

 private:
  std::array<uint64_t, 4> limb_ = {0, 0, 0, 0};  // least significant first
};

// Difficulty 1: 0xffff * 2^208 for sha256d, 65536 times easier (0xffff *
// 2^224) for scrypt, as scrypt pools and miners use.
double diff1_target(Algorithm a);
U256 target_from_difficulty(Algorithm a, double difficulty);
// The difficulty of a hash (how many difficulty-1 shares it is worth).
double hash_difficulty(Algorithm a, const Hash256& hash);
inline bool meets(const Hash256& hash, const U256& target) { return U256::from_hash(hash) <= target; }

}  // namespace hashgate
