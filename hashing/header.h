// Block header assembly from Stratum job fields and a submit.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "hashing/bytes.h"
#include "hashing/target.h"

namespace hashgate {

using Header = std::array<uint8_t, 80>;

// sha256d(coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2) without building
// the coinbase in one buffer.
Hash256 coinbase_hash(std::span<const uint8_t> coinb1, std::span<const uint8_t> extranonce1,
                      std::span<const uint8_t> extranonce2, std::span<const uint8_t> coinb2);

// root = sha256d(root ‖ branch) for each branch node, in internal byte order.
Hash256 merkle_root(Hash256 coinbase_hash, std::span<const Hash256> branch);

// version(LE) ‖ prevhash ‖ root ‖ ntime(LE) ‖ nbits(LE) ‖ nonce(LE).
// `prevhash_notify` is the 32 bytes as mining.notify carries them (each
// 4-byte word byte-swapped relative to the header); they are swapped back.
Header build_header(uint32_t version, const std::array<uint8_t, 32>& prevhash_notify,
                    const Hash256& merkle_root, uint32_t ntime, uint32_t nbits, uint32_t nonce);

// The proof-of-work hash of a header for `algo` (portable path).
Hash256 pow_hash(Algorithm algo, const Header& header);

}  // namespace hashgate
