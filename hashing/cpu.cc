#include "hashing/cpu.h"

#include <cpuid.h>
#include <cstdint>

namespace hashgate {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return uint64_t(edx) << 32 | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse2 = d & (1u << 26);
  bool osxsave = c & (1u << 27);
  bool avx = c & (1u << 28);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  bool ymm_ok = (xcr0 & 0x6) == 0x6;
  bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = avx && ymm_ok && (b & (1u << 5));
  f.avx512 = zmm_ok && (b & (1u << 16)) && (b & (1u << 31));
  f.sha_ni = (b & (1u << 29)) && f.sse2;
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

}  // namespace hashgate
