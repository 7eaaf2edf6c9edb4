#include "protocol/address.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "hashing/sha256.h"

namespace hashgate {
namespace {

constexpr std::string_view kBase58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kBech32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
// Version bytes: Bitcoin main/test, Litecoin main/test(P2SH), Dogecoin main/test.
constexpr std::array<uint8_t, 5> kP2pkh = {0x00, 0x6f, 0x30, 0x1e, 0x71};
constexpr std::array<uint8_t, 5> kP2sh = {0x05, 0xc4, 0x32, 0x3a, 0x16};

std::optional<Bytes> base58check(std::string_view s, std::string& error) {
  if (s.size() > 64) return error = "too long for an address", std::nullopt;
  Bytes num;  // big-endian
  for (char c : s) {
    auto d = kBase58.find(c);
    if (d == std::string_view::npos) return error = std::string("character '") + c + "' is not base58", std::nullopt;
    unsigned carry = unsigned(d);
    for (auto it = num.rbegin(); it != num.rend(); ++it) {
      carry += unsigned(*it) * 58;
      *it = uint8_t(carry);
      carry >>= 8;
    }
    while (carry) {
      num.insert(num.begin(), uint8_t(carry));
      carry >>= 8;
    }
  }
  size_t zeros = 0;
  while (zeros < s.size() && s[zeros] == '1') ++zeros;
  num.insert(num.begin(), zeros, 0);
  if (num.size() != 25) return error = "not a 25-byte base58check address", std::nullopt;
  const Hash256 check = sha256d(std::span<const uint8_t>(num.data(), 21));
  if (!std::equal(check.begin(), check.begin() + 4, num.begin() + 21)) return error = "bad checksum", std::nullopt;
  const uint8_t v = num[0];
  Bytes script;
  if (std::find(kP2pkh.begin(), kP2pkh.end(), v) != kP2pkh.end()) {
    script = {0x76, 0xa9, 0x14};
    script.insert(script.end(), num.begin() + 1, num.begin() + 21);
    script.insert(script.end(), {0x88, 0xac});
  } else if (std::find(kP2sh.begin(), kP2sh.end(), v) != kP2sh.end()) {
    script = {0xa9, 0x14};
    script.insert(script.end(), num.begin() + 1, num.begin() + 21);
    script.push_back(0x87);
  } else {
    return error = "unknown address version byte " + std::to_string(v), std::nullopt;
  }
  return script;
}

uint32_t polymod(const Bytes& v) {
  constexpr uint32_t kGen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t chk = 1;
  for (uint8_t x : v) {
    const uint32_t top = chk >> 25;
    chk = (chk & 0x1ffffff) << 5 ^ x;
    for (int i = 0; i < 5; ++i)
      if ((top >> i) & 1) chk ^= kGen[i];
  }
  return chk;
}

std::optional<Bytes> segwit(std::string_view s, std::string& error) {
  std::string low(s);
  std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  const auto sep = low.rfind('1');
  if (sep == std::string::npos || sep == 0 || sep + 7 > low.size() || low.size() > 90)
    return error = "not a bech32 address", std::nullopt;
  Bytes v;
  for (size_t i = 0; i < sep; ++i) v.push_back(uint8_t(low[i]) >> 5);
  v.push_back(0);
  for (size_t i = 0; i < sep; ++i) v.push_back(uint8_t(low[i]) & 31);
  Bytes data;
  for (size_t i = sep + 1; i < low.size(); ++i) {
    auto d = kBech32.find(low[i]);
    if (d == std::string_view::npos) return error = std::string("character '") + low[i] + "' is not bech32", std::nullopt;
    data.push_back(uint8_t(d));
  }
  v.insert(v.end(), data.begin(), data.end());
  const uint32_t c = polymod(v);
  const uint8_t wv = data[0];
  if (c != (wv == 0 ? 1u : 0x2bc830a3u)) return error = "bad checksum", std::nullopt;
  Bytes program;
  unsigned acc = 0, bits = 0;
  for (size_t i = 1; i + 6 < data.size(); ++i) {
    acc = acc << 5 | data[i];
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      program.push_back(uint8_t(acc >> bits));
    }
  }
  if (bits >= 5 || (acc & ((1u << bits) - 1))) return error = "bad padding", std::nullopt;
  if (wv > 16 || program.size() < 2 || program.size() > 40 || (wv == 0 && program.size() != 20 && program.size() != 32))
    return error = "not a valid witness program", std::nullopt;
  Bytes script{uint8_t(wv == 0 ? 0 : 0x50 + wv), uint8_t(program.size())};
  script.insert(script.end(), program.begin(), program.end());
  return script;
}

}  // namespace

std::optional<Bytes> address_script(std::string_view text, std::string& error) {
  if (text.rfind("script:", 0) == 0) {
    auto b = hex_decode(text.substr(7));
    if (!b || b->empty() || b->size() > 10000) return error = "script: needs hex bytes", std::nullopt;
    return b;
  }
  if (text.find('1') != std::string_view::npos && std::any_of(text.begin(), text.end(), [](char c) {
        return c == '0';  // '0' is not base58: only a bech32 address has one
      }))
    return segwit(text, error);
  std::string e58;
  if (auto s = base58check(text, e58)) return s;
  std::string e32;
  if (auto s = segwit(text, e32)) return s;
  error = "neither a base58check address (" + e58 + ") nor a segwit address (" + e32 + ")";
  return std::nullopt;
}

}  // namespace hashgate
