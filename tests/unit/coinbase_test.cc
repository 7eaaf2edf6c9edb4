// The coinbase parser against the Litecoin Core regtest block (Stratum form
// and the block's own segwit form), hand-built scripts, and every kind of
// malformed input.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

#include "hashing/bytes.h"
#include "protocol/coinbase.h"
#include "tests/unit/vectors.h"

using namespace hashgate;

namespace {

Bytes hx(std::string_view s) {
  auto b = hex_decode(s);
  REQUIRE(b.has_value());
  return *b;
}

struct RegtestJob {
  Bytes coinb1, coinb2, en1, en2;
  uint32_t en2_size = 0;
  Bytes block;
};

RegtestJob regtest_job() {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("litecoin_regtest_block.json"));
  RegtestJob j;
  j.coinb1 = hx(std::string_view(doc["notify"]["coinb1"]));
  j.coinb2 = hx(std::string_view(doc["notify"]["coinb2"]));
  j.en1 = hx(std::string_view(doc["extranonce1"]));
  j.en2 = hx(std::string_view(doc["submit"]["extranonce2"]));
  j.en2_size = uint32_t(int64_t(doc["extranonce2_size"]));
  j.block = hx(std::string_view(doc["block_hex"]));
  return j;
}

Bytes concat(std::initializer_list<const Bytes*> parts) {
  Bytes out;
  for (auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

// A minimal legacy coinbase: version 1, script `script_hex`, one output.
Bytes tx_with_script(std::string_view script_hex, std::string_view value_le = "00f2052a01000000") {
  Bytes script = hx(script_hex);
  std::string h = "01000000" "01" + std::string(64, '0') + "ffffffff";
  h += hex_encode(std::span<const uint8_t>(Bytes{uint8_t(script.size())}));
  h += std::string(script_hex) + "ffffffff" "01" + std::string(value_le) + "0151" "00000000";
  return hx(h);
}

CoinbaseError error_of(const Bytes& tx) {
  auto r = parse_coinbase(tx);
  REQUIRE_FALSE(r);
  return r.error().code;
}

}  // namespace

TEST_CASE("coinbase: the Litecoin Core regtest block's coinbase, from its Stratum job") {
  RegtestJob j = regtest_job();
  auto r = parse_job_coinbase(j.coinb1, j.en1, j.en2, j.en2_size, j.coinb2);
  REQUIRE(r);
  const Coinbase& cb = r->coinbase;
  CHECK(r->extranonce_in_script);
  CHECK(cb.version == 1);
  CHECK_FALSE(cb.segwit);
  // coinb1 ends "22 01 68 08": a 34-byte script whose first push is 0x68.
  REQUIRE(cb.height.has_value());
  CHECK(*cb.height == 104);
  CHECK(cb.script_sig.size() == 34);
  CHECK(cb.script_sig_offset == 42);  // 4 version + 1 count + 36 prevout + 1 size
  CHECK(cb.sequence == 0xffffffffu);
  REQUIRE(cb.outputs.size() == 2);
  // Hand calculation: output 0's value is the little-endian 1a14062a01000000
  // = 0x012a06141a = 4,294,967,296 + 705,041,434 = 5,000,008,730 litoshis:
  // the 50 LTC regtest subsidy at height 104 (halving every 150 blocks) plus
  // 8,730 litoshis of fees from the block's five other transactions.
  CHECK(cb.outputs[0].value == 5'000'008'730ull);
  CHECK(cb.outputs[0].value == 50ull * 100'000'000 + 8'730);
  CHECK(hex_encode(cb.outputs[0].script_pubkey) == "76a9145552aeb999b67294dc374f3a68cf262fbe2b254a88ac");
  CHECK(cb.outputs[1].value == 0);
  CHECK(cb.outputs[1].script_pubkey.size() == 38);
  CHECK(cb.total_value == 5'000'008'730ull);
  REQUIRE(cb.witness_commitment_output.has_value());
  CHECK(*cb.witness_commitment_output == 1);
  CHECK(hex_encode(cb.witness_commitment) == "adfecb56c3f6ff639428877258cae51364db23af9d9f0ab8f0584e4f1948118c");
  CHECK(cb.lock_time == 0);
  CHECK(cb.size == j.coinb1.size() + 4 + 4 + j.coinb2.size());

  // Any extranonce2 of the right size (and none: zeros) gives the same value.
  Bytes other = {0xde, 0xad, 0xbe, 0xef};
  auto r2 = parse_job_coinbase(j.coinb1, j.en1, other, j.en2_size, j.coinb2);
  REQUIRE(r2);
  CHECK(r2->coinbase.total_value == cb.total_value);
  auto r3 = parse_job_coinbase(j.coinb1, j.en1, {}, j.en2_size, j.coinb2);
  REQUIRE(r3);
  CHECK(r3->coinbase.total_value == cb.total_value);
  CHECK(r3->coinbase.script_sig[3] == 0xf0);  // extranonce1 starts after "01 68 08"
}

TEST_CASE("coinbase: the same transaction in the block's segwit serialization") {
  RegtestJob j = regtest_job();
  Bytes legacy = concat({&j.coinb1, &j.en1, &j.en2, &j.coinb2});
  // The block: 80-byte header, a one-byte transaction count, then the
  // coinbase with marker and flag (2 bytes) and a witness of one 32-byte
  // item (1 + 1 + 32 bytes).
  REQUIRE(j.block[80] == 6);
  size_t size = legacy.size() + 2 + 34;
  Bytes tx(j.block.begin() + 81, j.block.begin() + 81 + size);
  auto r = parse_coinbase(tx);
  REQUIRE(r);
  CHECK(r->segwit);
  CHECK(r->total_value == 5'000'008'730ull);
  CHECK(*r->height == 104);
  REQUIRE(r->witness.size() == 1);
  CHECK(r->witness[0] == Bytes(32, 0));
  CHECK(r->outputs[0].script_pubkey == parse_coinbase(legacy)->outputs[0].script_pubkey);
  // One byte more (the next transaction's version) is not a coinbase.
  Bytes longer(j.block.begin() + 81, j.block.begin() + 82 + size);
  auto bad = parse_coinbase(longer);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == CoinbaseError::kTrailingBytes);
  CHECK(bad.error().offset == size);
}

// (Cut after the output count, the count itself is larger than the bytes
// left can hold: that is reported first.)
TEST_CASE("coinbase: every strict prefix is truncated, never a crash") {
  RegtestJob j = regtest_job();
  Bytes tx = concat({&j.coinb1, &j.en1, &j.en2, &j.coinb2});
  for (size_t n = 0; n < tx.size(); ++n) {
    auto r = parse_coinbase(std::span<const uint8_t>(tx.data(), n));
    REQUIRE_FALSE(r);
    CHECK_MESSAGE((r.error().code == CoinbaseError::kTruncated || r.error().code == CoinbaseError::kTooManyOutputs), "prefix ", n, ": ", r.error().message);
    CHECK(r.error().offset <= n);
  }
}

TEST_CASE("coinbase: BIP34 heights as Core writes them") {
  CHECK(*parse_coinbase(tx_with_script("0000"))->height == 0);        // OP_0
  CHECK(*parse_coinbase(tx_with_script("5100"))->height == 1);        // OP_1
  CHECK(*parse_coinbase(tx_with_script("6000"))->height == 16);       // OP_16
  CHECK(*parse_coinbase(tx_with_script("0111"))->height == 17);
  CHECK(*parse_coinbase(tx_with_script("028000"))->height == 128);    // 0x80 needs a sign byte
  CHECK(*parse_coinbase(tx_with_script("03a0bb0d"))->height == 900'000);
  CHECK(*parse_coinbase(tx_with_script("04ffffff7f"))->height == 0x7fffffffu);
  CHECK_FALSE(parse_coinbase(tx_with_script("0105"))->height);        // 5 must be OP_5
  CHECK_FALSE(parse_coinbase(tx_with_script("020100"))->height);      // not minimal
  CHECK_FALSE(parse_coinbase(tx_with_script("0181"))->height);        // negative
  CHECK_FALSE(parse_coinbase(tx_with_script("03a0bb"))->height);      // push runs past the script
  CHECK_FALSE(parse_coinbase(tx_with_script("6a6a"))->height);        // not a push
}

TEST_CASE("coinbase: malformed transactions name the error and the offset") {
  Bytes good = tx_with_script("03a0bb0d");
  REQUIRE(parse_coinbase(good));
  CHECK(parse_coinbase(good)->total_value == 5'000'000'000ull);

  Bytes t = good;
  t[4] = 0x02;  // two inputs
  CHECK(error_of(t) == CoinbaseError::kInputCount);
  t = good;
  t[5] = 0x01;  // prevout hash not zero
  CHECK(error_of(t) == CoinbaseError::kNotCoinbaseInput);
  t = good;
  t[37] = 0xfe;  // prevout index not 0xffffffff
  CHECK(error_of(t) == CoinbaseError::kNotCoinbaseInput);
  // Marker with flag 2.
  t = good;
  t.insert(t.begin() + 4, {0x00, 0x02});
  auto r = parse_coinbase(t);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == CoinbaseError::kBadSegwitFlag);
  CHECK(r.error().offset == 5);
  // Input count 1 written as fd 01 00.
  t = good;
  t[4] = 0xfd;
  t.insert(t.begin() + 5, {0x01, 0x00});
  CHECK(error_of(t) == CoinbaseError::kNonCanonicalSize);
  // Script of 1 and of 101 bytes.
  CHECK(error_of(tx_with_script("51")) == CoinbaseError::kScriptSigSize);
  CHECK(error_of(tx_with_script(std::string(202, '5'))) == CoinbaseError::kScriptSigSize);
  CHECK(parse_coinbase(tx_with_script(std::string(200, '5'))));  // 100 is fine
  // Zero outputs; an output count the bytes cannot hold.
  size_t count_at = 4 + 1 + 36 + 1 + 4 + 4;
  REQUIRE(good[count_at] == 1);
  t = good;
  t[count_at] = 0;
  CHECK(error_of(t) == CoinbaseError::kNoOutputs);
  t = good;
  t[count_at] = 0xfd;
  t.insert(t.begin() + count_at + 1, {0xff, 0xff});
  r = parse_coinbase(t);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == CoinbaseError::kTooManyOutputs);
  CHECK(r.error().offset == count_at);
  // 84,000,000 coins is the maximum; one litoshi more is not.
  CHECK(parse_coinbase(tx_with_script("03a0bb0d", "00001d68c1d71d00"))->total_value == kMaxMoney);
  CHECK(error_of(tx_with_script("03a0bb0d", "01001d68c1d71d00")) == CoinbaseError::kValueRange);
  CHECK(error_of(tx_with_script("03a0bb0d", "ffffffffffffffff")) == CoinbaseError::kValueRange);
  // Trailing byte.
  t = good;
  t.push_back(0);
  CHECK(error_of(t) == CoinbaseError::kTrailingBytes);
  // Too large, before any parsing.
  CHECK(error_of(Bytes(kMaxCoinbaseBytes + 1, 0)) == CoinbaseError::kTooLarge);
  CHECK(std::string(coinbase_error_name(CoinbaseError::kValueRange)) == "value_range");
}

TEST_CASE("coinbase: two outputs that each fit but sum above the maximum") {
  // Two outputs of 42e6 coins + 1 litoshi each.
  std::string h = "01000000" "01" + std::string(64, '0') + "ffffffff" "04" "03a0bb0d" "ffffffff" "02";
  h += "01800eb4e0eb0e00" "0151" "01800eb4e0eb0e00" "0151" "00000000";
  auto r = parse_coinbase(hx(h));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == CoinbaseError::kValueRange);
  CHECK(r.error().offset == 4 + 1 + 36 + 1 + 4 + 4 + 1 + 10);  // the second output
}

TEST_CASE("coinbase: segwit witness bounds") {
  // Marker and flag, then a witness claiming 17 items.
  std::string h = "01000000" "0001" "01" + std::string(64, '0') + "ffffffff" "04" "03a0bb0d" "ffffffff" "01";
  h += "00f2052a01000000" "0151";
  CHECK(error_of(hx(h + "11" + std::string(34, '0') + "00000000")) == CoinbaseError::kWitness);
  auto r = parse_coinbase(hx(h + "0120" + std::string(64, '0') + "00000000"));
  REQUIRE(r);
  CHECK(r->segwit);
  CHECK(r->witness.size() == 1);
  // A witness item longer than what is left.
  CHECK(error_of(hx(h + "0121" + std::string(64, '0') + "00000000")) == CoinbaseError::kTruncated);
}

TEST_CASE("coinbase: the extranonce must sit inside the input's script") {
  RegtestJob j = regtest_job();
  Bytes tx = concat({&j.coinb1, &j.en1, &j.en2, &j.coinb2});
  // A "job" whose extranonce is the lock time: it parses, but the flag says
  // the extranonce is outside the script.
  Bytes c1(tx.begin(), tx.end() - 4), lock(tx.end() - 4, tx.end());
  auto r = parse_job_coinbase(c1, lock, {}, 0, {});
  REQUIRE(r);
  CHECK_FALSE(r->extranonce_in_script);
  CHECK(r->coinbase.total_value == 5'000'008'730ull);
  // extranonce2 of the wrong size.
  Bytes en2(3, 0);
  auto bad = parse_job_coinbase(j.coinb1, j.en1, en2, j.en2_size, j.coinb2);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == CoinbaseError::kExtranonceSize);
  // A too-large extranonce2 size is refused before allocating it.
  auto huge = parse_job_coinbase(j.coinb1, j.en1, {}, 0xffffffffu, j.coinb2);
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == CoinbaseError::kTooLarge);
}
