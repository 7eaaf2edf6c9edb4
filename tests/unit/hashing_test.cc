#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <simdjson.h>

#include <random>
#include <string>
#include <vector>

#include "hashing/header.h"
#include "hashing/scrypt.h"
#include "hashing/sha256.h"
#include "hashing/target.h"
#include "tests/unit/vectors.h"

using namespace hashgate;

namespace {

Header header_from_hex(std::string_view hex) {
  Header h;
  REQUIRE(hex_decode(hex, h));
  return h;
}

std::string sv(simdjson::dom::element e) { return std::string(std::string_view(e)); }

}  // namespace

TEST_CASE("hex round trip and rejection of bad input") {
  auto b = hex_decode("00ff10Ab");
  REQUIRE(b);
  CHECK(hex_encode(*b) == "00ff10ab");
  CHECK_FALSE(hex_decode("abc"));
  CHECK_FALSE(hex_decode("zz"));
  CHECK(hex_u32("1d00ffff") == 0x1d00ffffu);
  CHECK_FALSE(hex_u32("1d00fff"));
}

TEST_CASE("sha256 of the FIPS examples") {
  std::string abc = "abc";
  CHECK(hex_encode(sha256({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()})) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(hex_encode(sha256({reinterpret_cast<const uint8_t*>(two.data()), two.size()})) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("every header vector: sha256d and scrypt match") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("headers.json"));
  int n = 0;
  for (const char* key : {"headers", "random_headers"}) {
    for (simdjson::dom::element v : doc[key].get_array()) {
      Header h = header_from_hex(sv(v["header_hex"]));
      CHECK(hex_reversed(pow_hash(Algorithm::kSha256d, h)) == sv(v["sha256d_display"]));
      CHECK(hex_reversed(pow_hash(Algorithm::kScrypt, h)) == sv(v["scrypt_display"]));
      ++n;
    }
  }
  CHECK(n == 67);
}

TEST_CASE("known headers meet the target of their own nbits under sha256d") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("headers.json"));
  for (simdjson::dom::element v : doc["headers"].get_array()) {
    Header h = header_from_hex(sv(v["header_hex"]));
    uint32_t nbits = *hex_u32(sv(v["nbits"]));
    U256 target = U256::from_compact(nbits);
    std::string name = sv(v["name"]);
    if (name.find("litecoin") != std::string::npos) {
      CHECK(meets(pow_hash(Algorithm::kScrypt, h), target));
    } else {
      CHECK(meets(pow_hash(Algorithm::kSha256d, h), target));
      CHECK_FALSE(meets(pow_hash(Algorithm::kScrypt, h), target));
    }
  }
}

TEST_CASE("RFC 7914 scrypt vectors on the portable path") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("scrypt_rfc7914.json"));
  int n = 0;
  for (simdjson::dom::element v : doc["rfc7914"].get_array()) {
    std::string pw = sv(v["password"]), salt = sv(v["salt"]);
    size_t dklen = uint64_t(v["dklen"]);
    std::vector<uint8_t> out(dklen);
    REQUIRE(scrypt({reinterpret_cast<const uint8_t*>(pw.data()), pw.size()},
                   {reinterpret_cast<const uint8_t*>(salt.data()), salt.size()}, uint64_t(v["N"]),
                   uint32_t(uint64_t(v["r"])), uint32_t(uint64_t(v["p"])), out));
    CHECK(hex_encode(out) == sv(v["derived_hex"]));
    ++n;
  }
  CHECK(n == 3);
  std::vector<uint8_t> out(32);
  CHECK_FALSE(scrypt({}, {}, 1000, 1, 1, out));  // N not a power of two
}

TEST_CASE("Litecoin Core regtest block rebuilt from its Stratum fields") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("litecoin_regtest_block.json"));
  simdjson::dom::element notify = doc["notify"];
  auto coinb1 = *hex_decode(sv(notify["coinb1"]));
  auto coinb2 = *hex_decode(sv(notify["coinb2"]));
  auto en1 = *hex_decode(sv(doc["extranonce1"]));
  auto en2 = *hex_decode(sv(doc["submit"]["extranonce2"]));
  std::vector<Hash256> branch;
  for (simdjson::dom::element b : notify["merkle_branch"].get_array()) {
    Hash256 node;
    REQUIRE(hex_decode(sv(b), node));
    branch.push_back(node);
  }
  Hash256 cb = coinbase_hash(coinb1, en1, en2, coinb2);
  CHECK(hex_reversed(cb) == sv(doc["coinbase_txid_display"]));
  Hash256 root = merkle_root(cb, branch);
  CHECK(hex_encode(root) == sv(doc["merkle_root_internal_hex"]));
  std::array<uint8_t, 32> prev;
  REQUIRE(hex_decode(sv(notify["prevhash"]), prev));
  Header h = build_header(*hex_u32(sv(notify["version"])), prev, root, *hex_u32(sv(doc["submit"]["ntime"])),
                          *hex_u32(sv(notify["nbits"])), *hex_u32(sv(doc["submit"]["nonce"])));
  CHECK(hex_encode(h) == sv(doc["header_hex"]));
  CHECK(hex_reversed(pow_hash(Algorithm::kSha256d, h)) == sv(doc["block_hash_display"]));
  Hash256 pow = pow_hash(Algorithm::kScrypt, h);
  CHECK(hex_reversed(pow) == sv(doc["scrypt_pow_display"]));
  U256 network = U256::from_compact(*hex_u32(sv(notify["nbits"])));
  CHECK(network.to_hex() == sv(doc["network_target_hex"]));
  CHECK(meets(pow, network));
  CHECK_FALSE(meets(pow_hash(Algorithm::kSha256d, h), network));
}

TEST_CASE("portable scrypt equals OpenSSL's EVP_PBE_scrypt on random headers") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    Header h;
    for (auto& b : h) b = uint8_t(rng());
    uint8_t ref[32];
    REQUIRE(EVP_PBE_scrypt(reinterpret_cast<const char*>(h.data()), 80, h.data(), 80, 1024, 1, 1, 0, ref, 32) == 1);
    Hash256 ours = scrypt_1024_1_1(h.data());
    CHECK(std::equal(ours.begin(), ours.end(), ref));
  }
}

TEST_CASE("difficulty and target math for both algorithms") {
  CHECK(target_from_difficulty(Algorithm::kSha256d, 1).to_hex() ==
        "00000000ffff0000000000000000000000000000000000000000000000000000");
  CHECK(target_from_difficulty(Algorithm::kScrypt, 1).to_hex() ==
        "0000ffff00000000000000000000000000000000000000000000000000000000");
  CHECK(target_from_difficulty(Algorithm::kScrypt, 65536).to_hex() ==
        "00000000ffff0000000000000000000000000000000000000000000000000000");
  // Fractional difficulties make easier targets.
  CHECK(target_from_difficulty(Algorithm::kSha256d, 0.5).to_hex() ==
        "00000001fffe0000000000000000000000000000000000000000000000000000");
  CHECK(target_from_difficulty(Algorithm::kScrypt, 1e-30) == U256::max());
  CHECK(U256::from_compact(0x1d00ffff).to_hex() ==
        "00000000ffff0000000000000000000000000000000000000000000000000000");
  CHECK(U256::from_compact(0x1a44b9f2).to_hex() ==
        "00000000000044b9f20000000000000000000000000000000000000000000000");
  // A hash exactly at the target meets it; one above does not.
  Hash256 h{};
  h[29] = 0xff;
  h[28] = 0xff;  // 0x0000ffff00..: LE bytes 28,29 are the top of the 4th-from-top word
  U256 t = target_from_difficulty(Algorithm::kScrypt, 1);
  CHECK(U256::from_hash(h) == t);
  CHECK(meets(h, t));
  h[0] = 1;
  CHECK_FALSE(meets(h, t));
  CHECK(hash_difficulty(Algorithm::kSha256d, Hash256{}) > 1e70);
  Hash256 d1{};
  d1[26] = 0xff;
  d1[27] = 0xff;
  CHECK(hash_difficulty(Algorithm::kSha256d, d1) == doctest::Approx(1.0));
}
