// Byte and hex helpers shared by every layer. No allocation unless a
// std::string or std::vector is returned.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hashgate {

using Bytes = std::vector<uint8_t>;
using Hash256 = std::array<uint8_t, 32>;

// Decodes lowercase or uppercase hex into `out`; false on odd length, a
// non-hex character or a size mismatch with `out`.
bool hex_decode(std::string_view hex, std::span<uint8_t> out);
std::optional<Bytes> hex_decode(std::string_view hex);
// Parses exactly 8 hex digits as a big-endian 32-bit number (Stratum's
// form for version, nbits, ntime and nonce).
std::optional<uint32_t> hex_u32(std::string_view hex);

std::string hex_encode(std::span<const uint8_t> bytes);
void hex_encode_to(std::span<const uint8_t> bytes, char* out);  // writes 2*size chars
std::string hex_u32_string(uint32_t v);
std::string hex_reversed(const Hash256& h);  // "display" order of a hash

inline void put_le32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}
inline uint32_t get_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void put_be32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
inline uint32_t get_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace hashgate
