#include "hashing/engine.h"

#include <cstdlib>
#include <cstring>

#include "hashing/cpu.h"
#include "hashing/scrypt.h"
#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

namespace hashgate {

void sha256d_headers_shani(const uint8_t* headers, uint8_t* out, size_t k);

const char* hash_path_name(HashPath p) {
  switch (p) {
    case HashPath::kPortable: return "portable";
    case HashPath::kSse2: return "sse2";
    case HashPath::kAvx2: return "avx2";
    case HashPath::kAvx512: return "avx512";
  }
  return "?";
}

std::optional<HashPath> parse_hash_path(std::string_view name) {
  for (HashPath p : {HashPath::kPortable, HashPath::kSse2, HashPath::kAvx2, HashPath::kAvx512})
    if (name == hash_path_name(p)) return p;
  return std::nullopt;
}

bool hash_path_supported(HashPath p) {
  const CpuFeatures& f = cpu_features();
  switch (p) {
    case HashPath::kPortable: return true;
    case HashPath::kSse2: return f.sse2;
    case HashPath::kAvx2: return f.avx2;
    case HashPath::kAvx512: return f.avx512;
  }
  return false;
}

HashPath best_hash_path() {
  for (HashPath p : {HashPath::kAvx512, HashPath::kAvx2, HashPath::kSse2})
    if (hash_path_supported(p)) return p;
  return HashPath::kPortable;
}

std::optional<HashPath> select_hash_path(std::optional<HashPath> configured) {
  if (const char* env = std::getenv("HASHGATE_HASH_PATH"); env && *env && std::string_view(env) != "auto") {
    auto p = parse_hash_path(env);
    if (!p || !hash_path_supported(*p)) return std::nullopt;
    return p;
  }
  if (configured) return hash_path_supported(*configured) ? configured : std::nullopt;
  return best_hash_path();
}

size_t hash_path_lanes(HashPath p) {
  switch (p) {
    case HashPath::kPortable: return 1;
    case HashPath::kSse2: return lanes::kSse2;
    case HashPath::kAvx2: return lanes::kAvx2;
    case HashPath::kAvx512: return lanes::kAvx512;
  }
  return 1;
}

namespace {

using LanesFn = void (*)(const uint8_t*, uint8_t*, bool);
using ShaLanesFn = void (*)(const uint8_t*, uint8_t*);

void run_groups(size_t L, const Header* headers, Hash256* out, size_t k, LanesFn scrypt_fn, ShaLanesFn sha_fn,
                bool scalar_sha) {
  alignas(64) uint8_t in[16 * 80];
  alignas(64) uint8_t res[16 * 32];
  for (size_t i = 0; i < k; i += L) {
    size_t n = std::min(L, k - i);
    for (size_t l = 0; l < L; ++l) std::memcpy(in + 80 * l, headers[i + std::min(l, n - 1)].data(), 80);
    if (scrypt_fn) {
      scrypt_fn(in, res, scalar_sha);
    } else {
      sha_fn(in, res);
    }
    for (size_t l = 0; l < n; ++l) std::memcpy(out[i + l].data(), res + 32 * l, 32);
  }
}

}  // namespace

void pow_batch(HashPath path, Algorithm algo, const Header* headers, Hash256* out, size_t k) {
  const bool shani = sha256_uses_shani();
  if (algo == Algorithm::kSha256d) {
    // With SHA-NI, two headers interleaved beat any vector lanes.
    if (shani) {
      static_assert(sizeof(Header) == 80 && sizeof(Hash256) == 32);
      return sha256d_headers_shani(headers[0].data(), out[0].data(), k);
    }
    if (path == HashPath::kPortable) {
      for (size_t i = 0; i < k; ++i) out[i] = sha256d_header(headers[i].data());
      return;
    }
    ShaLanesFn fn = path == HashPath::kAvx512 ? lanes::sha256d_avx512
                    : path == HashPath::kAvx2 ? lanes::sha256d_avx2
                                              : lanes::sha256d_sse2;
    return run_groups(hash_path_lanes(path), headers, out, k, nullptr, fn, false);
  }
  if (path == HashPath::kPortable) {
    for (size_t i = 0; i < k; ++i) out[i] = scrypt_1024_1_1(headers[i].data());
    return;
  }
  LanesFn fn = path == HashPath::kAvx512 ? lanes::scrypt_avx512
               : path == HashPath::kAvx2 ? lanes::scrypt_avx2
                                         : lanes::scrypt_sse2;
  run_groups(hash_path_lanes(path), headers, out, k, fn, nullptr, shani);
}

}  // namespace hashgate

namespace hashgate {

void pow_batch_adaptive(HashPath widest, Algorithm algo, const Header* headers, Hash256* out, size_t k) {
  const size_t lanes = hash_path_lanes(widest);
  const size_t full = k / lanes * lanes;
  if (full) pow_batch(widest, algo, headers, out, full);
  size_t rest = k - full;
  if (!rest) return;
  HashPath p = widest;
  for (HashPath narrower : {HashPath::kPortable, HashPath::kSse2, HashPath::kAvx2}) {
    if (int(narrower) < int(widest) && hash_path_supported(narrower) && rest <= hash_path_lanes(narrower)) {
      p = narrower;
      break;
    }
  }
  pow_batch(p, algo, headers + full, out + full, rest);
}

}  // namespace hashgate
