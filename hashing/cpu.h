// What this CPU can run: SSE2, AVX2, AVX-512 (F+VL), SHA-NI, with the OS's
// consent for the wide registers (XGETBV).
#pragma once

namespace hashgate {

struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;
  bool avx512 = false;  // AVX-512 F and VL, zmm state enabled by the OS
  bool sha_ni = false;
};

const CpuFeatures& cpu_features();

}  // namespace hashgate
