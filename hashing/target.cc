#include "hashing/target.h"

#include <cmath>

namespace hashgate {

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  if (name == "sha256d") return Algorithm::kSha256d;
  if (name == "scrypt") return Algorithm::kScrypt;
  return std::nullopt;
}

const char* algorithm_name(Algorithm a) { return a == Algorithm::kScrypt ? "scrypt" : "sha256d"; }

U256 U256::from_le_bytes(const uint8_t bytes[32]) {
  U256 v;
  for (int i = 0; i < 4; ++i) {
    uint64_t limb = 0;
    for (int j = 7; j >= 0; --j) limb = limb << 8 | bytes[8 * i + j];
    v.limb_[i] = limb;
  }
  return v;
}

U256 U256::max() {
  U256 v;
  v.limb_ = {~0ull, ~0ull, ~0ull, ~0ull};
  return v;
}

U256 U256::from_compact(uint32_t nbits) {
  U256 v;
  uint32_t exponent = nbits >> 24;
  uint64_t mantissa = nbits & 0x007fffff;  // the sign bit makes a negative target: zero
  if (nbits & 0x00800000) return v;
  // value = mantissa << 8*(exponent-3)
  int shift = 8 * (int(exponent) - 3);
  if (shift < 0) {
    mantissa >>= -shift;
    shift = 0;
  }
  if (shift >= 256) return max();
  int limb = shift / 64, bit = shift % 64;
  v.limb_[limb] = mantissa << bit;
  if (bit && limb + 1 < 4) v.limb_[limb + 1] = mantissa >> (64 - bit);
  return v;
}

U256 U256::from_double(double d) {
  if (!(d > 0)) return U256();
  if (d >= std::ldexp(1.0, 256)) return max();
  int exp = 0;
  double mant = std::frexp(d, &exp);  // d = mant * 2^exp, mant in [0.5, 1)
  uint64_t m = uint64_t(std::ldexp(mant, 53));  // exact: 53 significant bits
  int shift = exp - 53;  // d ~= m * 2^shift
  U256 v;
  if (shift < 0) {
    if (shift <= -64) return v;
    v.limb_[0] = m >> -shift;
    return v;
  }
  int limb = shift / 64, bit = shift % 64;
  v.limb_[limb] = m << bit;
  if (bit && limb + 1 < 4) v.limb_[limb + 1] = m >> (64 - bit);
  return v;
}

double U256::to_double() const {
  double d = 0;
  for (int i = 3; i >= 0; --i) d = d * 18446744073709551616.0 + double(limb_[i]);
  return d;
}

std::string U256::to_hex() const {
  uint8_t be[32];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 8; ++j) be[31 - (8 * i + j)] = uint8_t(limb_[i] >> (8 * j));
  return hex_encode(be);
}

double diff1_target(Algorithm a) {
  return 65535.0 * std::ldexp(1.0, a == Algorithm::kScrypt ? 224 : 208);
}

U256 target_from_difficulty(Algorithm a, double difficulty) {
  if (!(difficulty > 0)) return U256::max();
  return U256::from_double(diff1_target(a) / difficulty);
}

double hash_difficulty(Algorithm a, const Hash256& hash) {
  double h = U256::from_hash(hash).to_double();
  if (h == 0) return std::ldexp(1.0, 256);
  return diff1_target(a) / h;
}

}  // namespace hashgate
