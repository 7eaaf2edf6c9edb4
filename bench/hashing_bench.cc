// bench/hashing: hashes per second of every hashing path this CPU supports,
// on one thread and on all cores, against baselines measured in the same
// run: OpenSSL's scrypt (EVP_PBE_scrypt) and OpenSSL's SHA-256 done twice
// (SHA256_Init/Update/Final). Prints a table and, with --json FILE, JSON.
//   hashing_bench [--seconds S] [--threads N] [--json FILE]
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hashing/cpu.h"
#include "hashing/engine.h"
#include "hashing/scrypt_lanes.h"
#include "hashing/sha256.h"

using namespace hashgate;
using Clock = std::chrono::steady_clock;

namespace {

struct Row {
  std::string name;
  std::string algorithm;
  unsigned threads;
  double rate;         // hashes per second, all threads together
  double baseline;     // the OpenSSL baseline with the same thread count
};

std::vector<Header> headers(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Header> hs(n);
  for (auto& h : hs)
    for (auto& b : h) b = uint8_t(rng());
  return hs;
}

// Runs `batch(thread_index, headers, out)` in a loop on `threads` threads for
// `seconds`; returns hashes per second over all threads.
double measure(unsigned threads, double seconds, size_t batch_size,
               const std::function<void(const Header*, Hash256*, size_t)>& fn) {
  std::atomic<bool> go{false}, stop{false};
  std::vector<uint64_t> done(threads * 16, 0);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<Header> hs = headers(batch_size, 1000 + t);
      std::vector<Hash256> out(batch_size);
      while (!go.load()) std::this_thread::yield();
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        fn(hs.data(), out.data(), batch_size);
        n += batch_size;
        hs[0][76]++;  // keep the work real
      }
      done[t * 16] = n;
    });
  }
  auto t0 = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t total = 0;
  for (unsigned t = 0; t < threads; ++t) total += done[t * 16];
  return double(total) / dt;
}

void openssl_scrypt(const Header* hs, Hash256* out, size_t k) {
  for (size_t i = 0; i < k; ++i)
    EVP_PBE_scrypt(reinterpret_cast<const char*>(hs[i].data()), 80, hs[i].data(), 80, 1024, 1, 1, 0, out[i].data(), 32);
}

void openssl_sha256d(const Header* hs, Hash256* out, size_t k) {
  for (size_t i = 0; i < k; ++i) {
    SHA256_CTX c;
    uint8_t first[32];
    SHA256_Init(&c);
    SHA256_Update(&c, hs[i].data(), 80);
    SHA256_Final(first, &c);
    SHA256_Init(&c);
    SHA256_Update(&c, first, 32);
    SHA256_Final(out[i].data(), &c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  unsigned all = std::max(1u, std::thread::hardware_concurrency());
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) all = unsigned(std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--threads N] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  const CpuFeatures& f = cpu_features();
  std::printf("cpu: sse2=%d avx2=%d avx512=%d sha_ni=%d; threads: 1 and %u; %.2f s per figure\n", f.sse2, f.avx2,
              f.avx512, f.sha_ni, all, seconds);

  std::vector<unsigned> thread_counts = {1};
  if (all > 1) thread_counts.push_back(all);
  std::vector<Row> rows;
  for (unsigned t : thread_counts) {
    double base_scrypt = measure(t, seconds, 4, openssl_scrypt);
    double base_sha = measure(t, seconds, 256, openssl_sha256d);
    rows.push_back({"openssl-evp-scrypt", "scrypt", t, base_scrypt, base_scrypt});
    for (HashPath p : {HashPath::kPortable, HashPath::kSse2, HashPath::kAvx2, HashPath::kAvx512}) {
      if (!hash_path_supported(p)) continue;
      size_t batch = hash_path_lanes(p) * 4;
      double r = measure(t, seconds, batch, [p](const Header* h, Hash256* o, size_t k) {
        pow_batch(p, Algorithm::kScrypt, h, o, k);
      });
      rows.push_back({hash_path_name(p), "scrypt", t, r, base_scrypt});
    }
    rows.push_back({"openssl-sha256-twice", "sha256d", t, base_sha, base_sha});
    double ours = measure(t, seconds, 256, [](const Header* h, Hash256* o, size_t k) {
      pow_batch(best_hash_path(), Algorithm::kSha256d, h, o, k);
    });
    rows.push_back({sha256_uses_shani() ? "sha-ni-x2 (batch)" : "best (batch)", "sha256d", t, ours, base_sha});
    double one = measure(t, seconds, 256, [](const Header* h, Hash256* o, size_t k) {
      for (size_t i = 0; i < k; ++i) o[i] = sha256d_header(h[i].data());
    });
    rows.push_back({sha256_uses_shani() ? "sha-ni-single" : "portable-single", "sha256d", t, one, base_sha});
    double port = measure(t, seconds, 256, [](const Header* h, Hash256* o, size_t k) {
      for (size_t i = 0; i < k; ++i) {
        Sha256State a = kSha256Init;
        uint8_t blk[64] = {};
        sha256_compress_portable(a, h[i].data());
        std::memcpy(blk, h[i].data() + 64, 16);
        blk[16] = 0x80;
        blk[62] = 0x02;
        blk[63] = 0x80;
        sha256_compress_portable(a, blk);
        uint8_t second[64] = {};
        for (int w = 0; w < 8; ++w) put_be32(second + 4 * w, a[w]);
        second[32] = 0x80;
        second[62] = 0x01;
        Sha256State b = kSha256Init;
        sha256_compress_portable(b, second);
        for (int w = 0; w < 8; ++w) put_be32(o[i].data() + 4 * w, b[w]);
      }
    });
    rows.push_back({"portable-sha", "sha256d", t, port, base_sha});
    for (HashPath p : {HashPath::kSse2, HashPath::kAvx2, HashPath::kAvx512}) {
      if (!hash_path_supported(p)) continue;
      // The lanes' multi-buffer SHA-256 (what runs without SHA-NI).
      void (*fn)(const uint8_t*, uint8_t*) = p == HashPath::kAvx512 ? lanes::sha256d_avx512
                                             : p == HashPath::kAvx2 ? lanes::sha256d_avx2
                                                                    : lanes::sha256d_sse2;
      size_t L = hash_path_lanes(p);
      double r = measure(t, seconds, 256, [fn, L](const Header* h, Hash256* o, size_t k) {
        alignas(64) uint8_t in[16 * 80];
        alignas(64) uint8_t res[16 * 32];
        for (size_t i = 0; i + L <= k; i += L) {
          std::memcpy(in, h[i].data(), 80 * L);
          fn(in, res);
          std::memcpy(o[i].data(), res, 32 * L);
        }
      });
      rows.push_back({std::string("multibuffer-") + hash_path_name(p), "sha256d", t, r, base_sha});
    }
  }

  std::printf("\n%-22s %-8s %7s %14s %10s\n", "path", "algo", "threads", "hashes/s", "x openssl");
  for (const Row& r : rows)
    std::printf("%-22s %-8s %7u %14.0f %10.2f\n", r.name.c_str(), r.algorithm.c_str(), r.threads, r.rate,
                r.rate / r.baseline);
  std::printf("\nscaling (all threads / one thread):\n");
  for (const Row& r : rows) {
    if (r.threads != 1 || all == 1) continue;
    for (const Row& q : rows)
      if (q.threads == all && q.name == r.name && q.algorithm == r.algorithm)
        std::printf("  %-22s %-8s %.2fx\n", r.name.c_str(), r.algorithm.c_str(), q.rate / r.rate);
  }
  if (json_path) {
    FILE* out = std::fopen(json_path, "w");
    if (!out) {
      std::perror(json_path);
      return 1;
    }
    std::fprintf(out, "{\"cpu\":{\"sse2\":%s,\"avx2\":%s,\"avx512\":%s,\"sha_ni\":%s},\"seconds\":%g,\"results\":[",
                 f.sse2 ? "true" : "false", f.avx2 ? "true" : "false", f.avx512 ? "true" : "false",
                 f.sha_ni ? "true" : "false", seconds);
    for (size_t i = 0; i < rows.size(); ++i)
      std::fprintf(out, "%s{\"path\":\"%s\",\"algorithm\":\"%s\",\"threads\":%u,\"hashes_per_second\":%.1f,\"ratio_to_openssl\":%.4f}",
                   i ? "," : "", rows[i].name.c_str(), rows[i].algorithm.c_str(), rows[i].threads, rows[i].rate,
                   rows[i].rate / rows[i].baseline);
    std::fprintf(out, "]}\n");
    std::fclose(out);
  }
  return 0;
}
