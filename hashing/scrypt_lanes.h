// The SIMD-lane scrypt and multi-buffer sha256d entry points, one per
// instruction set. Call only what cpu_features() allows; engine.h does.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hashgate {

// PBKDF2 halves of scrypt(header, header, 1024, 1, 1) on one header, with
// the salt's first 64 bytes hashed once (the midstate). Shared by every path.
void pbkdf2_header_first(const uint8_t header[80], uint8_t out[128]);
void pbkdf2_header_final(const uint8_t header[80], const uint8_t B[128], uint8_t out[32]);

namespace lanes {
constexpr size_t kSse2 = 4, kAvx2 = 8, kAvx512 = 16;
// headers: L consecutive 80-byte headers; out: L consecutive 32-byte hashes.
// scalar_sha: run PBKDF2 one lane at a time (SHA-NI) instead of in vectors.
void scrypt_sse2(const uint8_t* headers, uint8_t* out, bool scalar_sha);
void scrypt_avx2(const uint8_t* headers, uint8_t* out, bool scalar_sha);
void scrypt_avx512(const uint8_t* headers, uint8_t* out, bool scalar_sha);
void sha256d_sse2(const uint8_t* headers, uint8_t* out);
void sha256d_avx2(const uint8_t* headers, uint8_t* out);
void sha256d_avx512(const uint8_t* headers, uint8_t* out);
}  // namespace lanes

}  // namespace hashgate
