#include "hashing/header.h"

#include <cstring>

#include "hashing/scrypt.h"
#include "hashing/sha256.h"

namespace hashgate {

Hash256 coinbase_hash(std::span<const uint8_t> coinb1, std::span<const uint8_t> extranonce1,
                      std::span<const uint8_t> extranonce2, std::span<const uint8_t> coinb2) {
  Hash256 first = Sha256().update(coinb1).update(extranonce1).update(extranonce2).update(coinb2).finish();
  return sha256(first);
}

Hash256 merkle_root(Hash256 root, std::span<const Hash256> branch) {
  for (const Hash256& node : branch) root = sha256d_pair(root, node);
  return root;
}

Header build_header(uint32_t version, const std::array<uint8_t, 32>& prevhash_notify,
                    const Hash256& root, uint32_t ntime, uint32_t nbits, uint32_t nonce) {
  Header h;
  put_le32(h.data(), version);
  for (int w = 0; w < 8; ++w) {
    const uint8_t* src = prevhash_notify.data() + 4 * w;
    uint8_t* dst = h.data() + 4 + 4 * w;
    dst[0] = src[3];
    dst[1] = src[2];
    dst[2] = src[1];
    dst[3] = src[0];
  }
  std::memcpy(h.data() + 36, root.data(), 32);
  put_le32(h.data() + 68, ntime);
  put_le32(h.data() + 72, nbits);
  put_le32(h.data() + 76, nonce);
  return h;
}

Hash256 pow_hash(Algorithm algo, const Header& header) {
  if (algo == Algorithm::kScrypt) return scrypt_1024_1_1(header.data());
  return sha256d_header(header.data());
}

}  // namespace hashgate
