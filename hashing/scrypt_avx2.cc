// 8 lanes in AVX2 registers. Built with -mavx2; called only on CPUs with AVX2.
#include <immintrin.h>

#include <memory>

#include "hashing/bytes.h"
#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

namespace hashgate::lanes {
namespace avx2 {

struct V {
  __m256i v;
};
constexpr int L = 8;
inline V add(V a, V b) { return {_mm256_add_epi32(a.v, b.v)}; }
inline V xor_(V a, V b) { return {_mm256_xor_si256(a.v, b.v)}; }
inline V and_(V a, V b) { return {_mm256_and_si256(a.v, b.v)}; }
inline V or_(V a, V b) { return {_mm256_or_si256(a.v, b.v)}; }
inline V andnot(V a, V b) { return {_mm256_andnot_si256(a.v, b.v)}; }
template <int n>
inline V shl(V a) { return {_mm256_slli_epi32(a.v, n)}; }
template <int n>
inline V shr(V a) { return {_mm256_srli_epi32(a.v, n)}; }
template <int n>
inline V rotl(V a) { return {_mm256_or_si256(_mm256_slli_epi32(a.v, n), _mm256_srli_epi32(a.v, 32 - n))}; }
inline V set1(uint32_t x) { return {_mm256_set1_epi32(int(x))}; }
inline V load(const uint32_t* p) { return {_mm256_load_si256(reinterpret_cast<const __m256i*>(p))}; }
inline void store(uint32_t* p, V a) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), a.v); }
inline void store_v(V* p, V a) { _mm256_store_si256(&p->v, a.v); }
inline V mul_by_32L(V a) { return {_mm256_slli_epi32(a.v, 8)}; }
inline void transpose4(V& a, V& b, V& c, V& d) {
  __m256i t0 = _mm256_unpacklo_epi32(a.v, b.v), t1 = _mm256_unpackhi_epi32(a.v, b.v);
  __m256i t2 = _mm256_unpacklo_epi32(c.v, d.v), t3 = _mm256_unpackhi_epi32(c.v, d.v);
  a.v = _mm256_unpacklo_epi64(t0, t2);
  b.v = _mm256_unpackhi_epi64(t0, t2);
  c.v = _mm256_unpacklo_epi64(t1, t3);
  d.v = _mm256_unpackhi_epi64(t1, t3);
}
// T_p of group `off`: sub-lane 0 from lane p's row, sub-lane 1 from lane p+4's.
inline V load_chunks(const uint32_t* w, const uint32_t* rows, uint32_t off, int p) {
  const uint32_t at = off + 8 * p;
  return {_mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(w + rows[p + 4] + at + 4),
                              reinterpret_cast<const __m128i*>(w + rows[p] + at))};
}

#include "hashing/scrypt_lanes.inc"

}  // namespace avx2

// One group of lanes per call: interleaving two or three independent groups
// (8 or 12 add-rotate-xor chains) measured no faster here (bench/README.md).
constexpr int kGroups = 1;

void scrypt_avx2(const uint8_t* headers, uint8_t* out, bool scalar_sha) {
  thread_local std::unique_ptr<avx2::V[]> scratch(new avx2::V[kGroups * 1024 * 32]);
  avx2::scrypt_lanes<kGroups>(headers, out, scratch.get(), scalar_sha);
}

void sha256d_avx2(const uint8_t* headers, uint8_t* out) { avx2::sha256d_lanes(headers, out); }

}  // namespace hashgate::lanes
