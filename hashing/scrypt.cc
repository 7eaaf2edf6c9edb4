#include "hashing/scrypt.h"

#include <cstring>
#include <memory>
#include <vector>

#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

namespace hashgate {
namespace {

inline uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

// Salsa20/8 core applied in place to B ^= X (the scrypt BlockMix step).
void salsa20_8_xor(uint32_t B[16], const uint32_t X[16]) {
  uint32_t x[16];
  for (int i = 0; i < 16; ++i) x[i] = B[i] ^= X[i];
  for (int i = 0; i < 8; i += 2) {
    x[4] ^= rotl(x[0] + x[12], 7);
    x[8] ^= rotl(x[4] + x[0], 9);
    x[12] ^= rotl(x[8] + x[4], 13);
    x[0] ^= rotl(x[12] + x[8], 18);
    x[9] ^= rotl(x[5] + x[1], 7);
    x[13] ^= rotl(x[9] + x[5], 9);
    x[1] ^= rotl(x[13] + x[9], 13);
    x[5] ^= rotl(x[1] + x[13], 18);
    x[14] ^= rotl(x[10] + x[6], 7);
    x[2] ^= rotl(x[14] + x[10], 9);
    x[6] ^= rotl(x[2] + x[14], 13);
    x[10] ^= rotl(x[6] + x[2], 18);
    x[3] ^= rotl(x[15] + x[11], 7);
    x[7] ^= rotl(x[3] + x[15], 9);
    x[11] ^= rotl(x[7] + x[3], 13);
    x[15] ^= rotl(x[11] + x[7], 18);
    x[1] ^= rotl(x[0] + x[3], 7);
    x[2] ^= rotl(x[1] + x[0], 9);
    x[3] ^= rotl(x[2] + x[1], 13);
    x[0] ^= rotl(x[3] + x[2], 18);
    x[6] ^= rotl(x[5] + x[4], 7);
    x[7] ^= rotl(x[6] + x[5], 9);
    x[4] ^= rotl(x[7] + x[6], 13);
    x[5] ^= rotl(x[4] + x[7], 18);
    x[11] ^= rotl(x[10] + x[9], 7);
    x[8] ^= rotl(x[11] + x[10], 9);
    x[9] ^= rotl(x[8] + x[11], 13);
    x[10] ^= rotl(x[9] + x[8], 18);
    x[12] ^= rotl(x[15] + x[14], 7);
    x[13] ^= rotl(x[12] + x[15], 9);
    x[14] ^= rotl(x[13] + x[12], 13);
    x[15] ^= rotl(x[14] + x[13], 18);
  }
  for (int i = 0; i < 16; ++i) B[i] += x[i];
}

// BlockMix_{Salsa20/8, r}: `in` and `out` are 2r 64-byte blocks as words.
void block_mix(const uint32_t* in, uint32_t* out, uint32_t r) {
  uint32_t X[16];
  std::memcpy(X, in + (2 * r - 1) * 16, 64);
  for (uint32_t i = 0; i < 2 * r; ++i) {
    uint32_t T[16];
    std::memcpy(T, X, 64);
    salsa20_8_xor(T, in + i * 16);
    std::memcpy(X, T, 64);
    // Even blocks go to the first half, odd ones to the second.
    uint32_t dst = (i % 2 == 0) ? (i / 2) : (r + i / 2);
    std::memcpy(out + dst * 16, X, 64);
  }
}

// ROMix on one 128*r-byte block B (little-endian words), scratch V of N blocks.
void ro_mix(uint32_t* B, uint64_t N, uint32_t r, uint32_t* V, uint32_t* tmp) {
  const size_t words = 32 * size_t(r);
  uint32_t* X = B;
  for (uint64_t i = 0; i < N; ++i) {
    std::memcpy(V + i * words, X, words * 4);
    block_mix(X, tmp, r);
    std::memcpy(X, tmp, words * 4);
  }
  for (uint64_t i = 0; i < N; ++i) {
    uint64_t j = X[(2 * r - 1) * 16] & (N - 1);
    const uint32_t* Vj = V + j * words;
    for (size_t k = 0; k < words; ++k) X[k] ^= Vj[k];
    block_mix(X, tmp, r);
    std::memcpy(X, tmp, words * 4);
  }
}

void load_words(const uint8_t* bytes, uint32_t* words, size_t n) {
  for (size_t i = 0; i < n; ++i) words[i] = get_le32(bytes + 4 * i);
}
void store_words(const uint32_t* words, uint8_t* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) put_le32(bytes + 4 * i, words[i]);
}

}  // namespace

bool scrypt(std::span<const uint8_t> password, std::span<const uint8_t> salt, uint64_t N,
            uint32_t r, uint32_t p, std::span<uint8_t> out) {
  if (N < 2 || (N & (N - 1)) != 0 || r == 0 || p == 0) return false;
  if (uint64_t(r) * p >= (uint64_t(1) << 30)) return false;
  const size_t block_bytes = 128 * size_t(r);
  std::vector<uint8_t> B(block_bytes * p);
  pbkdf2_sha256(password, salt, 1, B);
  std::vector<uint32_t> V(N * 32 * r), X(32 * r), tmp(32 * r);
  for (uint32_t i = 0; i < p; ++i) {
    load_words(B.data() + i * block_bytes, X.data(), 32 * r);
    ro_mix(X.data(), N, r, V.data(), tmp.data());
    store_words(X.data(), B.data() + i * block_bytes, 32 * r);
  }
  pbkdf2_sha256(password, B, 1, out);
  return true;
}

namespace {

struct HmacKeys {
  Sha256State istate;
  Sha256State ostate;
};

// HMAC-SHA256 keyed with an 80-byte header: the key is longer than a block,
// so it is sha256(header) first.
HmacKeys header_keys(const uint8_t header[80]) {
  Hash256 k = sha256(std::span<const uint8_t>(header, 80));
  uint8_t ipad[64], opad[64];
  for (int i = 0; i < 64; ++i) {
    uint8_t b = i < 32 ? k[i] : 0;
    ipad[i] = b ^ 0x36;
    opad[i] = b ^ 0x5c;
  }
  HmacKeys keys{kSha256Init, kSha256Init};
  sha256_compress(keys.istate, ipad);
  sha256_compress(keys.ostate, opad);
  return keys;
}

// Finishes a message of `total` bytes whose last `n` (< 56) bytes are in
// block[0..n): padding and length, then one compression.
void finish_block(Sha256State& st, uint8_t block[64], size_t n, uint64_t total) {
  block[n] = 0x80;
  std::memset(block + n + 1, 0, 55 - n);
  uint64_t bits = total * 8;
  for (int i = 0; i < 8; ++i) block[56 + i] = uint8_t(bits >> (56 - 8 * i));
  sha256_compress(st, block);
}

void outer(const HmacKeys& k, const Sha256State& inner, uint8_t out[32]) {
  uint8_t block[64];
  for (int i = 0; i < 8; ++i) put_be32(block + 4 * i, inner[i]);
  Sha256State st = k.ostate;
  finish_block(st, block, 32, 64 + 32);
  for (int i = 0; i < 8; ++i) put_be32(out + 4 * i, st[i]);
}

}  // namespace

void pbkdf2_header_first(const uint8_t header[80], uint8_t out[128]) {
  HmacKeys k = header_keys(header);
  // The salt is the header: its first 64 bytes are hashed once for all four
  // output blocks (the midstate).
  Sha256State mid = k.istate;
  sha256_compress(mid, header);
  for (uint32_t n = 1; n <= 4; ++n) {
    uint8_t block[64];
    std::memcpy(block, header + 64, 16);
    put_be32(block + 16, n);
    Sha256State st = mid;
    finish_block(st, block, 20, 64 + 84);
    outer(k, st, out + 32 * (n - 1));
  }
}

void pbkdf2_header_final(const uint8_t header[80], const uint8_t B[128], uint8_t out[32]) {
  HmacKeys k = header_keys(header);
  Sha256State st = k.istate;
  sha256_compress(st, B);
  sha256_compress(st, B + 64);
  uint8_t block[64];
  put_be32(block, 1);
  finish_block(st, block, 4, 64 + 132);
  outer(k, st, out);
}

Hash256 scrypt_1024_1_1(const uint8_t header[80]) {
  // 128 KiB of V per thread, allocated on first use and kept: the hot path
  // never allocates.
  thread_local std::unique_ptr<uint32_t[]> V(new uint32_t[1024 * 32]);
  uint8_t b[128];
  pbkdf2_header_first(header, b);
  uint32_t X[32], tmp[32];
  load_words(b, X, 32);
  ro_mix(X, 1024, 1, V.get(), tmp);
  store_words(X, b, 32);
  Hash256 out;
  pbkdf2_header_final(header, b, out.data());
  return out;
}

}  // namespace hashgate
