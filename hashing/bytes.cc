#include "hashing/bytes.h"

namespace hashgate {
namespace {

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

bool hex_decode(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = uint8_t(hi << 4 | lo);
  }
  return true;
}

std::optional<Bytes> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  Bytes out(hex.size() / 2);
  if (!hex_decode(hex, out)) return std::nullopt;
  return out;
}

std::optional<uint32_t> hex_u32(std::string_view hex) {
  uint8_t b[4];
  if (!hex_decode(hex, b)) return std::nullopt;
  return get_be32(b);
}

void hex_encode_to(std::span<const uint8_t> bytes, char* out) {
  for (uint8_t b : bytes) {
    *out++ = kHexDigits[b >> 4];
    *out++ = kHexDigits[b & 15];
  }
}

std::string hex_encode(std::span<const uint8_t> bytes) {
  std::string s(bytes.size() * 2, '\0');
  hex_encode_to(bytes, s.data());
  return s;
}

std::string hex_u32_string(uint32_t v) {
  uint8_t b[4];
  put_be32(b, v);
  return hex_encode(b);
}

std::string hex_reversed(const Hash256& h) {
  Hash256 r;
  for (size_t i = 0; i < 32; ++i) r[i] = h[31 - i];
  return hex_encode(r);
}

}  // namespace hashgate
