// 4 lanes in SSE2 registers (every x86-64 CPU has them).
#include <emmintrin.h>

#include <memory>

#include "hashing/bytes.h"
#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

namespace hashgate::lanes {
namespace sse2 {

struct V {
  __m128i v;
};
constexpr int L = 4;
inline V add(V a, V b) { return {_mm_add_epi32(a.v, b.v)}; }
inline V xor_(V a, V b) { return {_mm_xor_si128(a.v, b.v)}; }
inline V and_(V a, V b) { return {_mm_and_si128(a.v, b.v)}; }
inline V or_(V a, V b) { return {_mm_or_si128(a.v, b.v)}; }
inline V andnot(V a, V b) { return {_mm_andnot_si128(a.v, b.v)}; }
template <int n>
inline V shl(V a) { return {_mm_slli_epi32(a.v, n)}; }
template <int n>
inline V shr(V a) { return {_mm_srli_epi32(a.v, n)}; }
template <int n>
inline V rotl(V a) { return {_mm_or_si128(_mm_slli_epi32(a.v, n), _mm_srli_epi32(a.v, 32 - n))}; }
inline V set1(uint32_t x) { return {_mm_set1_epi32(int(x))}; }
inline V load(const uint32_t* p) { return {_mm_load_si128(reinterpret_cast<const __m128i*>(p))}; }
inline void store(uint32_t* p, V a) { _mm_store_si128(reinterpret_cast<__m128i*>(p), a.v); }
inline void store_v(V* p, V a) { _mm_store_si128(&p->v, a.v); }
inline V mul_by_32L(V a) { return {_mm_slli_epi32(a.v, 7)}; }
inline void transpose4(V& a, V& b, V& c, V& d) {
  __m128i t0 = _mm_unpacklo_epi32(a.v, b.v), t1 = _mm_unpackhi_epi32(a.v, b.v);
  __m128i t2 = _mm_unpacklo_epi32(c.v, d.v), t3 = _mm_unpackhi_epi32(c.v, d.v);
  a.v = _mm_unpacklo_epi64(t0, t2);
  b.v = _mm_unpackhi_epi64(t0, t2);
  c.v = _mm_unpacklo_epi64(t1, t3);
  d.v = _mm_unpackhi_epi64(t1, t3);
}
// T_p of group `off`: lane p's four words at its own row.
inline V load_chunks(const uint32_t* w, const uint32_t* rows, uint32_t off, int p) {
  return {_mm_load_si128(reinterpret_cast<const __m128i*>(w + rows[p] + off + 4 * p))};
}

#include "hashing/scrypt_lanes.inc"

}  // namespace sse2

// One group of lanes per call: interleaving two or three independent groups
// (8 or 12 add-rotate-xor chains) measured no faster here (bench/README.md).
constexpr int kGroups = 1;

void scrypt_sse2(const uint8_t* headers, uint8_t* out, bool scalar_sha) {
  thread_local std::unique_ptr<sse2::V[]> scratch(new sse2::V[kGroups * 1024 * 32]);
  sse2::scrypt_lanes<kGroups>(headers, out, scratch.get(), scalar_sha);
}

void sha256d_sse2(const uint8_t* headers, uint8_t* out) { sse2::sha256d_lanes(headers, out); }

}  // namespace hashgate::lanes
