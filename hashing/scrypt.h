// scrypt (RFC 7914). The general form serves the RFC vectors; the header
// form is Litecoin's proof of work: scrypt(header, salt=header, N=1024,
// r=1, p=1, 32 bytes).
#pragma once

#include <cstdint>
#include <span>

#include "hashing/bytes.h"

namespace hashgate {

// General scrypt; r*p must be < 2^30 and N a power of two > 1. Allocates
// its scratch (128*r*N bytes). Returns false for invalid parameters.
bool scrypt(std::span<const uint8_t> password, std::span<const uint8_t> salt, uint64_t N,
            uint32_t r, uint32_t p, std::span<uint8_t> out);

// scrypt(1024,1,1) of an 80-byte header on the portable path. Uses a
// 128 KiB scratch allocated once per thread.
Hash256 scrypt_1024_1_1(const uint8_t header[80]);

}  // namespace hashgate
