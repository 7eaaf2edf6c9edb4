#include "hashing/sha256.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "hashing/cpu.h"

namespace hashgate {

alignas(16) const uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
namespace {



inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

}  // namespace

void sha256_compress_portable(Sha256State& s, const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) w[i] = get_be32(block + 4 * i);
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + S1 + ch + kSha256K[i] + w[i];
    uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  s[0] += a;
  s[1] += b;
  s[2] += c;
  s[3] += d;
  s[4] += e;
  s[5] += f;
  s[6] += g;
  s[7] += h;
}

void sha256_compress_shani(Sha256State& s, const uint8_t block[64]);

namespace {
using CompressFn = void (*)(Sha256State&, const uint8_t*);

CompressFn choose_compress() {
  const char* env = std::getenv("HASHGATE_SHA");
  bool allow = !(env && std::string_view(env) == "portable");
  return allow && cpu_features().sha_ni ? sha256_compress_shani : sha256_compress_portable;
}

// Chosen on first use (not at static initialization, whose order across
// files is unspecified).
CompressFn compress_fn() {
  static const CompressFn fn = choose_compress();
  return fn;
}
}  // namespace

void sha256_compress(Sha256State& s, const uint8_t block[64]) { compress_fn()(s, block); }
bool sha256_uses_shani() { return compress_fn() == sha256_compress_shani; }

Sha256& Sha256::update(std::span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  total_ += n;
  if (buf_len_) {
    size_t take = std::min(n, 64 - buf_len_);
    std::memcpy(buf_ + buf_len_, p, take);
    buf_len_ += take;
    p += take;
    n -= take;
    if (buf_len_ < 64) return *this;
    sha256_compress(state_, buf_);
    buf_len_ = 0;
  }
  for (; n >= 64; p += 64, n -= 64) sha256_compress(state_, p);
  std::memcpy(buf_, p, n);
  buf_len_ = n;
  return *this;
}

Hash256 Sha256::finish() {
  uint64_t bits = total_ * 8;
  uint8_t pad[72] = {0x80};
  size_t pad_len = (buf_len_ < 56) ? 56 - buf_len_ : 120 - buf_len_;
  for (int i = 0; i < 8; ++i) pad[pad_len + i] = uint8_t(bits >> (56 - 8 * i));
  update(std::span<const uint8_t>(pad, pad_len + 8));
  Hash256 out;
  for (int i = 0; i < 8; ++i) put_be32(out.data() + 4 * i, state_[i]);
  return out;
}

Hash256 sha256(std::span<const uint8_t> data) { return Sha256().update(data).finish(); }

Hash256 sha256d(std::span<const uint8_t> data) {
  Hash256 first = sha256(data);
  return sha256(first);
}

Hash256 sha256d_header(const uint8_t header[80]) {
  Sha256State st = kSha256Init;
  sha256_compress(st, header);
  uint8_t block[64] = {};
  std::memcpy(block, header + 64, 16);
  block[16] = 0x80;
  block[62] = (80 * 8) >> 8;
  block[63] = (80 * 8) & 0xff;
  sha256_compress(st, block);
  uint8_t second[64] = {};
  for (int i = 0; i < 8; ++i) put_be32(second + 4 * i, st[i]);
  second[32] = 0x80;
  second[62] = (32 * 8) >> 8;
  second[63] = (32 * 8) & 0xff;
  Sha256State st2 = kSha256Init;
  sha256_compress(st2, second);
  Hash256 out;
  for (int i = 0; i < 8; ++i) put_be32(out.data() + 4 * i, st2[i]);
  return out;
}

Hash256 sha256d_pair(const Hash256& left, const Hash256& right) {
  uint8_t buf[64];
  std::memcpy(buf, left.data(), 32);
  std::memcpy(buf + 32, right.data(), 32);
  return sha256d(buf);
}

void pbkdf2_sha256(std::span<const uint8_t> password, std::span<const uint8_t> salt,
                   uint32_t iterations, std::span<uint8_t> out) {
  // Key the inner and outer hashes once; every block and iteration reuses
  // the two keyed states.
  uint8_t k[64] = {};
  if (password.size() > 64) {
    Hash256 kh = sha256(password);
    std::memcpy(k, kh.data(), 32);
  } else {
    std::memcpy(k, password.data(), password.size());
  }
  uint8_t ipad[64], opad[64];
  for (int i = 0; i < 64; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  Sha256 inner_keyed, outer_keyed;
  inner_keyed.update(ipad);
  outer_keyed.update(opad);

  size_t done = 0;
  for (uint32_t block = 1; done < out.size(); ++block) {
    uint8_t counter[4];
    put_be32(counter, block);
    Sha256 in = inner_keyed;
    in.update(salt).update(counter);
    Hash256 u = in.finish();
    Sha256 o = outer_keyed;
    u = o.update(u).finish();
    Hash256 t = u;
    for (uint32_t it = 1; it < iterations; ++it) {
      Sha256 i2 = inner_keyed;
      u = i2.update(u).finish();
      Sha256 o2 = outer_keyed;
      u = o2.update(u).finish();
      for (int j = 0; j < 32; ++j) t[j] ^= u[j];
    }
    size_t take = std::min<size_t>(32, out.size() - done);
    std::memcpy(out.data() + done, t.data(), take);
    done += take;
  }
}

}  // namespace hashgate
