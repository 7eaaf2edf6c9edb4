// Every hashing path the CPU supports, against OpenSSL: scrypt against
// EVP_PBE_scrypt and sha256d against SHA-256 done twice, on random headers,
// partial batches (1..k-1) and a different header in every lane.
// HASHGATE_PATH_TEST_COUNT sets the number of random headers (100000 by
// default; the sanitizer build uses fewer, as its hashing is ~10x slower).
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "hashing/cpu.h"
#include "hashing/engine.h"
#include "hashing/sha256.h"

using namespace hashgate;

namespace {

size_t test_count() {
  const char* env = std::getenv("HASHGATE_PATH_TEST_COUNT");
  return env ? std::strtoull(env, nullptr, 10) : 100000;
}

std::vector<Header> random_headers(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Header> hs(n);
  for (auto& h : hs)
    for (auto& b : h) b = uint8_t(rng());
  return hs;
}

Hash256 openssl_scrypt(const Header& h) {
  Hash256 out;
  REQUIRE(EVP_PBE_scrypt(reinterpret_cast<const char*>(h.data()), 80, h.data(), 80, 1024, 1, 1, 0, out.data(), 32) == 1);
  return out;
}

Hash256 openssl_sha256d(const Header& h) {
  Hash256 a, b;
  SHA256(h.data(), 80, a.data());
  SHA256(a.data(), 32, b.data());
  return b;
}

// The reference results are computed once, shared by every path.
const std::vector<Header>& headers() {
  static const std::vector<Header> hs = random_headers(test_count(), 20261122);
  return hs;
}
const std::vector<Hash256>& scrypt_refs() {
  static const std::vector<Hash256> r = [] {
    std::vector<Hash256> v;
    v.reserve(headers().size());
    for (const Header& h : headers()) v.push_back(openssl_scrypt(h));
    return v;
  }();
  return r;
}

std::vector<HashPath> supported_paths() {
  std::vector<HashPath> v;
  for (HashPath p : {HashPath::kPortable, HashPath::kSse2, HashPath::kAvx2, HashPath::kAvx512})
    if (hash_path_supported(p)) v.push_back(p);
  return v;
}

}  // namespace

TEST_CASE("every supported scrypt path equals OpenSSL on random headers") {
  const auto& hs = headers();
  const auto& ref = scrypt_refs();
  for (HashPath p : supported_paths()) {
    std::string path = hash_path_name(p);
    CAPTURE(path);
    // The portable path is the slow reference implementation: a tenth will do.
    size_t n = p == HashPath::kPortable ? hs.size() / 10 : hs.size();
    std::vector<Hash256> out(n);
    pow_batch(p, Algorithm::kScrypt, hs.data(), out.data(), n);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += out[i] != ref[i];
    CHECK(bad == 0);
    MESSAGE(std::string(hash_path_name(p)) << ": " << n << " headers compared");
  }
}

TEST_CASE("partial batches and a different header in every lane") {
  const auto& hs = headers();
  const auto& ref = scrypt_refs();
  for (HashPath p : supported_paths()) {
    std::string path = hash_path_name(p);
    CAPTURE(path);
    size_t lanes = hash_path_lanes(p);
    for (size_t k = 1; k <= lanes + 1; ++k) {
      std::vector<Hash256> out(k);
      pow_batch(p, Algorithm::kScrypt, hs.data() + 7 * k, out.data(), k);
      for (size_t i = 0; i < k; ++i) CHECK(out[i] == ref[7 * k + i]);
    }
    // Lanes are independent: the same header in one lane, others changed.
    std::vector<Header> batch(lanes, hs[0]);
    for (size_t l = 1; l < lanes; ++l) batch[l] = hs[100 + l];
    std::vector<Hash256> out(lanes);
    pow_batch(p, Algorithm::kScrypt, batch.data(), out.data(), lanes);
    CHECK(out[0] == ref[0]);
    for (size_t l = 1; l < lanes; ++l) CHECK(out[l] == ref[100 + l]);
  }
}

TEST_CASE("sha256d on every path (multi-buffer and SHA-NI) equals OpenSSL") {
  const auto& hs = headers();
  for (HashPath p : supported_paths()) {
    std::string path = hash_path_name(p);
    CAPTURE(path);
    for (size_t k : {size_t(1), size_t(3), size_t(17), hs.size()}) {
      std::vector<Hash256> out(k);
      pow_batch(p, Algorithm::kSha256d, hs.data(), out.data(), k);
      size_t bad = 0;
      for (size_t i = 0; i < k; ++i) bad += out[i] != openssl_sha256d(hs[i]);
      CHECK(bad == 0);
    }
  }
  // Both compression functions agree with each other on every header.
  if (cpu_features().sha_ni) {
    for (size_t i = 0; i < 1000; ++i) {
      Sha256State a = kSha256Init, b = kSha256Init;
      sha256_compress(a, hs[i].data());
      sha256_compress_portable(b, hs[i].data());
      CHECK(a == b);
    }
  }
}

TEST_CASE("path selection honours the override and refuses what the CPU lacks") {
  unsetenv("HASHGATE_HASH_PATH");
  CHECK(select_hash_path(std::nullopt) == best_hash_path());
  CHECK(select_hash_path(HashPath::kPortable) == HashPath::kPortable);
  setenv("HASHGATE_HASH_PATH", "sse2", 1);
  CHECK(select_hash_path(HashPath::kPortable) == HashPath::kSse2);
  setenv("HASHGATE_HASH_PATH", "nonsense", 1);
  CHECK_FALSE(select_hash_path(std::nullopt));
  unsetenv("HASHGATE_HASH_PATH");
  if (!hash_path_supported(HashPath::kAvx512)) CHECK_FALSE(select_hash_path(HashPath::kAvx512));
}

TEST_CASE("adaptive batches: full groups on the widest path, the rest on a narrower one, same results") {
  const auto& hs = headers();
  const auto& ref = scrypt_refs();
  HashPath widest = best_hash_path();
  for (size_t k : {size_t(1), size_t(3), size_t(5), size_t(9), hash_path_lanes(widest) + 3}) {
    std::vector<Hash256> out(k);
    pow_batch_adaptive(widest, Algorithm::kScrypt, hs.data() + 50, out.data(), k);
    for (size_t i = 0; i < k; ++i) CHECK(out[i] == ref[50 + i]);
  }
}
