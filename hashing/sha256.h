// Portable SHA-256 (FIPS 180-4) with an exposed compression function, so
// that callers can keep midstates (the first 64 bytes of a block header are
// hashed once per header, not once per nonce).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "hashing/bytes.h"

namespace hashgate {

using Sha256State = std::array<uint32_t, 8>;

// The 64 round constants (FIPS 180-4), 16-byte aligned for SIMD loads.
alignas(16) extern const uint32_t kSha256K[64];

inline constexpr Sha256State kSha256Init = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                            0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// Applies one 64-byte block to `state`: SHA-NI when the CPU has it (unless
// HASHGATE_SHA=portable), the portable code otherwise.
void sha256_compress(Sha256State& state, const uint8_t block[64]);
void sha256_compress_portable(Sha256State& state, const uint8_t block[64]);
bool sha256_uses_shani();

class Sha256 {
 public:
  Sha256() = default;
  Sha256& update(std::span<const uint8_t> data);
  Hash256 finish();
  // State after a whole number of blocks; valid only when size() % 64 == 0.
  const Sha256State& midstate() const { return state_; }
  uint64_t size() const { return total_; }

 private:
  Sha256State state_ = kSha256Init;
  uint8_t buf_[64] = {};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

Hash256 sha256(std::span<const uint8_t> data);
// SHA-256 applied twice: Bitcoin's hash for headers, transactions, merkle nodes.
Hash256 sha256d(std::span<const uint8_t> data);
// sha256d of an 80-byte header: three compressions, no buffering.
Hash256 sha256d_header(const uint8_t header[80]);
// sha256d of the concatenation of two 32-byte nodes (one merkle step).
Hash256 sha256d_pair(const Hash256& left, const Hash256& right);

// PBKDF2-HMAC-SHA256 (RFC 8018) writing out.size() bytes.
void pbkdf2_sha256(std::span<const uint8_t> password, std::span<const uint8_t> salt,
                   uint32_t iterations, std::span<uint8_t> out);

}  // namespace hashgate
