// 16 lanes in AVX-512 registers, with native rotates (vprold). Built with
// -mavx512f -mavx512vl; called only on CPUs with both.
#include <immintrin.h>

#include <memory>

#include "hashing/bytes.h"
#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

namespace hashgate::lanes {
namespace avx512 {

struct V {
  __m512i v;
};
constexpr int L = 16;
inline V add(V a, V b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline V xor_(V a, V b) { return {_mm512_xor_si512(a.v, b.v)}; }
inline V and_(V a, V b) { return {_mm512_and_si512(a.v, b.v)}; }
inline V or_(V a, V b) { return {_mm512_or_si512(a.v, b.v)}; }
inline V andnot(V a, V b) { return {_mm512_andnot_si512(a.v, b.v)}; }
template <int n>
inline V shl(V a) { return {_mm512_slli_epi32(a.v, n)}; }
template <int n>
inline V shr(V a) { return {_mm512_srli_epi32(a.v, n)}; }
template <int n>
inline V rotl(V a) { return {_mm512_rol_epi32(a.v, n)}; }
inline V set1(uint32_t x) { return {_mm512_set1_epi32(int(x))}; }
inline V load(const uint32_t* p) { return {_mm512_load_si512(p)}; }
inline void store(uint32_t* p, V a) { _mm512_store_si512(p, a.v); }
inline void store_v(V* p, V a) { _mm512_store_si512(&p->v, a.v); }
inline V mul_by_32L(V a) { return {_mm512_slli_epi32(a.v, 9)}; }
inline void transpose4(V& a, V& b, V& c, V& d) {
  __m512i t0 = _mm512_unpacklo_epi32(a.v, b.v), t1 = _mm512_unpackhi_epi32(a.v, b.v);
  __m512i t2 = _mm512_unpacklo_epi32(c.v, d.v), t3 = _mm512_unpackhi_epi32(c.v, d.v);
  a.v = _mm512_unpacklo_epi64(t0, t2);
  b.v = _mm512_unpackhi_epi64(t0, t2);
  c.v = _mm512_unpacklo_epi64(t1, t3);
  d.v = _mm512_unpackhi_epi64(t1, t3);
}
// T_p of group `off`: sub-lane q from lane p+4q's row.
inline V load_chunks(const uint32_t* w, const uint32_t* rows, uint32_t off, int p) {
  const uint32_t at = off + 16 * p;
  __m512i v = _mm512_castsi128_si512(_mm_load_si128(reinterpret_cast<const __m128i*>(w + rows[p] + at)));
  v = _mm512_inserti32x4(v, _mm_load_si128(reinterpret_cast<const __m128i*>(w + rows[p + 4] + at + 4)), 1);
  v = _mm512_inserti32x4(v, _mm_load_si128(reinterpret_cast<const __m128i*>(w + rows[p + 8] + at + 8)), 2);
  v = _mm512_inserti32x4(v, _mm_load_si128(reinterpret_cast<const __m128i*>(w + rows[p + 12] + at + 12)), 3);
  return {v};
}

#include "hashing/scrypt_lanes.inc"

}  // namespace avx512

// One group of lanes per call: interleaving two or three independent groups
// (8 or 12 add-rotate-xor chains) measured no faster here (bench/README.md).
constexpr int kGroups = 1;

void scrypt_avx512(const uint8_t* headers, uint8_t* out, bool scalar_sha) {
  thread_local std::unique_ptr<avx512::V[]> scratch(new avx512::V[kGroups * 1024 * 32]);
  avx512::scrypt_lanes<kGroups>(headers, out, scratch.get(), scalar_sha);
}

void sha256d_avx512(const uint8_t* headers, uint8_t* out) { avx512::sha256d_lanes(headers, out); }

}  // namespace hashgate::lanes
