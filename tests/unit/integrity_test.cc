// Pool job integrity (protocol/pool_integrity.h) on a virtual clock: tips,
// chains, the node as reference, coinbase rules and per-job sanity.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/address.h"
#include "protocol/pool_integrity.h"
#include "proxy/node_rpc.h"

using namespace hashgate;

namespace {

constexpr double kUnix = 1.7e9;
const Bytes kPayA = *hex_decode("76a914" "1111111111111111111111111111111111111111" "88ac");
const Bytes kPayB = *hex_decode("0014" "2222222222222222222222222222222222222222");

Hash256 hash_of(int n) {
  Hash256 h{};
  h[0] = uint8_t(n);
  h[31] = uint8_t(n >> 8);
  h[15] = 0x5a;
  return h;
}

void push_le(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

// A notify like a pool's: coinbase with a BIP34 height and the outputs,
// extranonce (4 + 8 bytes) inside the input script.
NotifyParams notify(const Hash256& prev, uint32_t height, const std::vector<std::pair<uint64_t, Bytes>>& outs,
                    uint32_t nbits = 0x1e0ffff0, uint32_t ntime = uint32_t(kUnix)) {
  NotifyParams n;
  n.prevhash = prev;
  n.version = 0x20000000;
  n.nbits = nbits;
  n.ntime = ntime;
  Bytes& c1 = n.coinb1;
  push_le(c1, 1, 4);
  c1.push_back(1);
  c1.insert(c1.end(), 32, 0);
  push_le(c1, 0xffffffff, 4);
  // BIP34: the height as a minimal push (what consensus requires).
  int n_bytes = 1;
  while (n_bytes < 4 && (height >> (8 * n_bytes - 1)) != 0) ++n_bytes;
  c1.push_back(uint8_t(1 + n_bytes + 1 + 12 + 1));  // script: height push, extranonce push, tag
  c1.push_back(uint8_t(n_bytes));
  push_le(c1, height, n_bytes);
  c1.push_back(12);
  Bytes& c2 = n.coinb2;
  c2.push_back(0);  // OP_0 tag
  push_le(c2, 0xffffffff, 4);
  c2.push_back(uint8_t(outs.size()));
  for (const auto& [v, s] : outs) {
    push_le(c2, v, 8);
    c2.push_back(uint8_t(s.size()));
    c2.insert(c2.end(), s.begin(), s.end());
  }
  push_le(c2, 0, 4);
  return n;
}

JobFacts facts(const Hash256& prev, uint32_t height, std::vector<std::pair<uint64_t, Bytes>> outs = {{625000000, kPayA}},
               uint32_t nbits = 0x1e0ffff0, uint32_t ntime = uint32_t(kUnix)) {
  return job_facts(notify(prev, height, outs, nbits, ntime), 4, 8);
}

PoolRules rules(std::string name, std::string chain = "") {
  PoolRules r;
  r.name = std::move(name);
  r.chain = std::move(chain);
  return r;
}

std::vector<IntegrityEvent> drain(IntegrityMonitor& m) {
  std::vector<IntegrityEvent> v;
  IntegrityEvent e;
  while (m.next_event(e)) v.push_back(e);
  return v;
}

std::string evidence(const IntegrityEvent& e, const std::string& key) {
  for (const auto& [k, v] : e.evidence)
    if (k == key) return v;
  return "(absent)";
}

bool flagged(const IntegrityMonitor& m, size_t pool, IntegrityCheck c, double now) {
  return m.view(pool, now).flags & (1u << unsigned(c));
}

}  // namespace

TEST_CASE("integrity: job facts from a notify (height, outputs, room for the extranonce)") {
  JobFacts f = facts(hash_of(1), 2801234, {{625000000, kPayA}, {1, kPayB}});
  REQUIRE(f.coinbase_ok);
  CHECK(*f.height == 2801234);
  REQUIRE(f.outputs.size() == 2);
  CHECK(f.outputs[1].script_pubkey == kPayB);
  CHECK(*f.extranonce_room == 100 - 6);  // height push (4 bytes for 2801234), extranonce push opcode and tag
  NotifyParams bad = notify(hash_of(1), 5, {{1, kPayA}});
  bad.coinb2.resize(bad.coinb2.size() - 6);
  JobFacts g = job_facts(bad, 4, 8);
  CHECK_FALSE(g.coinbase_ok);
  CHECK_FALSE(g.coinbase_error.empty());
}

TEST_CASE("integrity: a pool held on the old tip is flagged within the grace and failed past the move threshold") {
  IntegrityOptions o;
  o.stale_grace_seconds = 10;
  o.stale_move_seconds = 30;
  o.stale_move = true;
  IntegrityMonitor m(o, {rules("a"), rules("b")});
  REQUIRE(m.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix));
  REQUIRE(m.on_job(1, facts(hash_of(1), 101), 0, 0.5, kUnix));
  drain(m);
  // a moves on at t=5; b keeps sending work on the old tip.
  m.on_job(0, facts(hash_of(2), 102), 0, 5, kUnix);
  m.on_job(1, facts(hash_of(1), 101), 0, 6, kUnix);
  m.on_tick(14.9);
  CHECK_FALSE(flagged(m, 1, IntegrityCheck::kStaleTip, 14.9));
  CHECK(drain(m).empty());
  CHECK(m.view(1, 14.9).lag_seconds == doctest::Approx(9.9));
  CHECK(*m.view(1, 14.9).lag_blocks == 1);
  m.on_tick(15);
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].pool == 1);
  CHECK(ev[0].check == IntegrityCheck::kStaleTip);
  CHECK(ev[0].action == IntegrityAction::kFlag);
  CHECK(evidence(ev[0], "moved_on") == "pool a");
  CHECK(evidence(ev[0], "newer_height") == "101");
  CHECK(evidence(ev[0], "height") == "100");
  CHECK(flagged(m, 1, IntegrityCheck::kStaleTip, 15));
  CHECK_FALSE(flagged(m, 0, IntegrityCheck::kStaleTip, 15));
  CHECK(m.view(1, 15).events[size_t(IntegrityCheck::kStaleTip)] == 1);
  m.on_tick(34.9);
  CHECK(drain(m).empty());
  m.on_tick(35);
  ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].action == IntegrityAction::kFailPool);
  m.on_tick(36);
  CHECK(drain(m).empty());  // once per stale tip
  // b catches up: the flag clears.
  m.on_job(1, facts(hash_of(2), 102), 0, 37, kUnix);
  ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].action == IntegrityAction::kClear);
  CHECK_FALSE(flagged(m, 1, IntegrityCheck::kStaleTip, 37));
}

TEST_CASE("integrity: flag-only mode never fails the pool") {
  IntegrityOptions o;
  o.stale_grace_seconds = 10;
  o.stale_move_seconds = 30;
  IntegrityMonitor m(o, {rules("a"), rules("b")});
  m.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix);
  m.on_job(1, facts(hash_of(1), 101), 0, 0, kUnix);
  m.on_job(0, facts(hash_of(2), 102), 0, 1, kUnix);
  for (double t = 2; t < 200; t += 1) m.on_tick(t);
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].action == IntegrityAction::kFlag);
}

TEST_CASE("integrity: pools moving together within the grace are never flagged, heights or not") {
  IntegrityOptions o;
  o.stale_grace_seconds = 10;
  IntegrityMonitor m(o, {rules("a"), rules("b")});
  double t = 0;
  for (int block = 1; block < 30; ++block) {
    m.on_job(0, facts(hash_of(block), 100 + block), 0, t, kUnix);
    m.on_job(1, facts(hash_of(block), 100 + block), 0, t + 9, kUnix);  // 9 s later every time
    for (int i = 0; i < 30; ++i) m.on_tick(t + i);
    t += 30;
  }
  CHECK(drain(m).empty());
  CHECK(m.view(1, t).events[size_t(IntegrityCheck::kStaleTip)] == 0);
  // Without BIP34 heights the lineage (a pool leaving a hash) says the same.
  IntegrityMonitor n(o, {rules("a"), rules("b")});
  auto noheight = [](int block) {
    JobFacts f = facts(hash_of(block), 5);
    f.height.reset();  // as from a pool that leaves BIP34's height out
    return f;
  };
  n.on_job(0, noheight(1), 0, 0, kUnix);
  n.on_job(1, noheight(1), 0, 0, kUnix);
  n.on_job(0, noheight(2), 0, 1, kUnix);
  n.on_job(1, noheight(2), 0, 5, kUnix);
  n.on_tick(60);
  CHECK(drain(n).empty());
  n.on_job(0, noheight(3), 0, 61, kUnix);
  n.on_tick(71);
  auto ev = drain(n);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].pool == 1);
  CHECK(ev[0].check == IntegrityCheck::kStaleTip);
}

TEST_CASE("integrity: chains are compared only within themselves") {
  IntegrityOptions o;
  o.stale_grace_seconds = 5;
  // ltc (declared) and a pool recognised from its heights as another chain.
  IntegrityMonitor m(o, {rules("ltc1", "ltc"), rules("ltc2", "ltc"), rules("doge")});
  m.on_job(0, facts(hash_of(1), 2800001), 0, 0, kUnix);
  m.on_job(1, facts(hash_of(1), 2800001), 0, 0, kUnix);
  m.on_job(2, facts(hash_of(9), 5400001), 0, 0, kUnix);
  m.on_job(0, facts(hash_of(2), 2800002), 0, 1, kUnix);
  m.on_job(1, facts(hash_of(2), 2800002), 0, 2, kUnix);
  for (double t = 3; t < 100; ++t) m.on_tick(t);
  CHECK(drain(m).empty());
  CHECK(m.view(2, 100).chain == "auto:doge");
  CHECK(m.view(0, 100).chain == "ltc");
  // An undeclared pool sharing a block hash with ltc joins it, and lags.
  IntegrityMonitor n(o, {rules("ltc1", "ltc"), rules("x")});
  n.on_job(0, facts(hash_of(1), 2800001), 0, 0, kUnix);
  n.on_job(1, facts(hash_of(1), 2800001), 0, 0, kUnix);
  n.on_job(0, facts(hash_of(2), 2800002), 0, 1, kUnix);
  n.on_tick(6);
  CHECK(n.view(1, 6).chain == "ltc");
  CHECK(flagged(n, 1, IntegrityCheck::kStaleTip, 6));
}

TEST_CASE("integrity: a pool far ahead is flagged and makes no one stale") {
  IntegrityOptions o;
  o.stale_grace_seconds = 5;
  o.ahead_blocks = 3;
  IntegrityMonitor m(o, {rules("a"), rules("b")});
  m.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix);
  m.on_job(1, facts(hash_of(1), 101), 0, 0, kUnix);
  m.on_job(1, facts(hash_of(7), 151), 0, 1, kUnix);  // 50 blocks above a
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].pool == 1);
  CHECK(ev[0].check == IntegrityCheck::kAhead);
  CHECK(evidence(ev[0], "highest_other") == "100");
  m.on_tick(60);
  CHECK(drain(m).empty());
  CHECK_FALSE(flagged(m, 0, IntegrityCheck::kStaleTip, 60));
  // Three blocks is within bounds: a is superseded, b is not ahead.
  IntegrityMonitor n(o, {rules("a"), rules("b")});
  n.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix);
  n.on_job(1, facts(hash_of(4), 104), 0, 0, kUnix);
  n.on_tick(6);
  ev = drain(n);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].pool == 0);
  CHECK(ev[0].check == IntegrityCheck::kStaleTip);
}

TEST_CASE("integrity: the node is the reference; the lag is given in blocks with its height") {
  IntegrityOptions o;
  o.stale_grace_seconds = 5;
  IntegrityMonitor m(o, {rules("a")});
  // The node's best block, as getbestblockhash shows it (display order).
  Hash256 display = hash_of(3);
  Hash256 notify_form = prevhash_from_display(display);
  CHECK(prevhash_display_hex(notify_form) == hex_encode(display));
  m.on_node_tip(display, 200, 0);
  m.on_job(0, facts(notify_form, 201), 0, 0, kUnix);
  m.on_tick(50);
  CHECK(drain(m).empty());
  // Two blocks later the pool still sends work on 200.
  m.on_node_tip(hash_of(4), 201, 60);
  m.on_node_tip(hash_of(5), 202, 61);
  m.on_job(0, facts(notify_form, 201), 0, 62, kUnix);
  m.on_tick(64.9);
  CHECK(drain(m).empty());
  m.on_tick(65);
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(evidence(ev[0], "node_height") == "202");
  CHECK(evidence(ev[0], "lag_blocks") == "2");
  CHECK(evidence(ev[0], "moved_on") == "node");
  CHECK(*m.view(0, 65).lag_blocks == 2);
  // A node far above the pools still supersedes them: it is the reference.
  IntegrityMonitor k(o, {rules("a")});
  k.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix);
  k.on_node_tip(hash_of(2), 150, 1);
  k.on_tick(6);
  CHECK(flagged(k, 0, IntegrityCheck::kStaleTip, 6));
  CHECK(*k.view(0, 6).lag_blocks == 50);
  // A pool on a sibling at the node's height is behind too: the node decides.
  IntegrityMonitor n(o, {rules("a")});
  n.on_job(0, facts(hash_of(8), 301), 0, 0, kUnix);
  n.on_node_tip(hash_of(9), 300, 1);
  n.on_tick(7);
  CHECK(flagged(n, 0, IntegrityCheck::kStaleTip, 7));
}

TEST_CASE("integrity: coinbase rules refuse a job that drops the payout or changes the outputs") {
  PoolRules solo = rules("solo");
  solo.required_outputs.push_back({kPayA, "Lpay"});
  PoolRules locked = rules("locked");
  locked.lock_outputs = true;
  IntegrityMonitor m({}, {solo, locked, rules("free")});
  CHECK(m.on_job(0, facts(hash_of(1), 101, {{625000000, kPayA}}), 0, 0, kUnix));
  CHECK(drain(m).empty());
  CHECK_FALSE(m.on_job(0, facts(hash_of(1), 101, {{625000000, kPayB}}), 0, 1, kUnix));
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].action == IntegrityAction::kRefuseJob);
  CHECK(ev[0].check == IntegrityCheck::kCoinbasePayout);
  CHECK(evidence(ev[0], "missing") == "Lpay");
  CHECK(evidence(ev[0], "outputs") == "6.25000000->p2wpkh:2222222222222222222222222222222222222222");
  // A zero-value output to the address does not count as paying it.
  CHECK_FALSE(m.on_job(0, facts(hash_of(1), 101, {{0, kPayA}, {625000000, kPayB}}), 0, 1, kUnix));
  drain(m);
  // Lock: the first outputs seen stay; values and OP_RETURNs may change.
  const Bytes commit = *hex_decode("6a24aa21a9ed" + std::string(64, '1'));
  CHECK(m.on_job(1, facts(hash_of(1), 101, {{600000000, kPayA}, {0, commit}}), 0, 0, kUnix));
  CHECK(m.on_job(1, facts(hash_of(1), 101, {{700000000, kPayA}}), 0, 1, kUnix));
  CHECK_FALSE(m.on_job(1, facts(hash_of(1), 101, {{600000000, kPayA}, {1, kPayB}}), 0, 2, kUnix));
  ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].check == IntegrityCheck::kCoinbaseChanged);
  CHECK(evidence(ev[0], "expected") == "p2pkh:1111111111111111111111111111111111111111");
  // No rules: any outputs pass.
  CHECK(m.on_job(2, facts(hash_of(1), 101, {{1, kPayB}}), 0, 0, kUnix));
  CHECK(m.on_job(2, facts(hash_of(1), 101, {{1, kPayA}}), 0, 0, kUnix));
  CHECK(drain(m).empty());
}

TEST_CASE("integrity: ntime, nbits, version and a malformed coinbase are counted per job") {
  IntegrityOptions o;
  o.ntime_window_seconds = 600;
  PoolRules ruled = rules("ruled");
  ruled.lock_outputs = true;
  IntegrityMonitor m(o, {rules("a"), rules("b"), ruled});
  CHECK(m.on_job(0, facts(hash_of(1), 101, {{1, kPayA}}, 0x1e0ffff0, uint32_t(kUnix) + 599), 0, 0, kUnix));
  CHECK(drain(m).empty());
  CHECK(m.on_job(0, facts(hash_of(1), 101, {{1, kPayA}}, 0x1e0ffff0, uint32_t(kUnix) + 3600), 0, 0, kUnix));
  CHECK(m.on_job(0, facts(hash_of(1), 101, {{1, kPayA}}, 0x1e0ffff0, uint32_t(kUnix) - 3600), 0, 0, kUnix));
  auto ev = drain(m);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].check == IntegrityCheck::kNtime);
  CHECK(evidence(ev[0], "offset_seconds") == "3600.0");
  CHECK(m.view(0, 0).events[size_t(IntegrityCheck::kNtime)] == 2);
  CHECK(flagged(m, 0, IntegrityCheck::kNtime, 0));
  // b on the same tip with other nbits.
  CHECK(m.on_job(1, facts(hash_of(1), 101, {{1, kPayA}}, 0x1d00ffff), 0, 0, kUnix));
  ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].check == IntegrityCheck::kNbits);
  CHECK(evidence(ev[0], "expected") == "1e0ffff0");
  CHECK(evidence(ev[0], "from_pool") == "a");
  // A mask reaching outside BIP320's bits, and a version outside BIP9.
  NotifyParams v = notify(hash_of(1), 101, {{1, kPayA}});
  v.version = 0x60000000;
  CHECK(m.on_job(0, job_facts(v, 4, 8), 0x1fffe000, 0, kUnix));
  CHECK(m.on_job(0, facts(hash_of(1), 101, {{1, kPayA}}), 0xffffffff, 0, kUnix));
  CHECK(m.view(0, 0).events[size_t(IntegrityCheck::kVersion)] == 2);
  drain(m);
  // Malformed: counted and flagged, refused only where rules need it parsed.
  NotifyParams bad = notify(hash_of(1), 101, {{1, kPayA}});
  bad.coinb1.resize(20);
  CHECK(m.on_job(0, job_facts(bad, 4, 8), 0, 0, kUnix));
  CHECK_FALSE(m.on_job(2, job_facts(bad, 4, 8), 0, 0, kUnix));
  ev = drain(m);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].action == IntegrityAction::kFlag);
  CHECK(ev[1].action == IntegrityAction::kRefuseJob);
  CHECK(ev[1].check == IntegrityCheck::kCoinbaseMalformed);
  CHECK(m.view(0, 0).events[size_t(IntegrityCheck::kCoinbaseMalformed)] == 1);
}

TEST_CASE("integrity: set_extranonce handing out an unusable space is refused") {
  IntegrityMonitor m({}, {rules("a")});
  CHECK(m.on_set_extranonce(0, 4, 8));   // nothing known yet
  CHECK(m.on_set_extranonce(0, 90, 8));  // no coinbase seen: no room known, nothing to hold it against
  CHECK(m.on_set_extranonce(0, 4, 2));   // small, but a space the gateway re-splits
  m.on_job(0, facts(hash_of(1), 101), 0, 0, kUnix);  // room 96
  drain(m);
  CHECK(m.on_set_extranonce(0, 8, 16));
  CHECK_FALSE(m.on_set_extranonce(0, 90, 8));
  auto ev = drain(m);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].check == IntegrityCheck::kExtranonce);
  CHECK(evidence(ev[0], "room") == "96");
  CHECK(m.view(0, 0).events[size_t(IntegrityCheck::kExtranonce)] == 1);
}

TEST_CASE("address: base58check and bech32/bech32m to scripts") {
  std::string err;
  auto p2pkh = address_script("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", err);
  REQUIRE(p2pkh);
  CHECK(hex_encode(*p2pkh) == "76a91477bff20c60e522dfaa3350c39b030a5d004e839a88ac");
  auto p2sh = address_script("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", err);
  REQUIRE(p2sh);
  CHECK(hex_encode(*p2sh) == "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87");
  auto wpkh = address_script("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", err);
  REQUIRE(wpkh);
  CHECK(hex_encode(*wpkh) == "0014751e76e8199196d454941c45d1b3a323f1433bd6");
  auto tr = address_script("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", err);
  REQUIRE(tr);
  CHECK(hex_encode(*tr) == "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
  auto raw = address_script("script:51", err);
  REQUIRE(raw);
  CHECK(hex_encode(*raw) == "51");
  CHECK_FALSE(address_script("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", err));  // checksum
  CHECK(err.find("checksum") != std::string::npos);
  CHECK_FALSE(address_script("bc1qw508d6qejxtdg4c5r3zarvary0c5xw7kv8f3t5", err));
  CHECK_FALSE(address_script("script:zz", err));
  CHECK_FALSE(address_script("", err));
}

TEST_CASE("node rpc: the request and Litecoin Core's answers, read without a node") {
  conf::NodeRpc cfg;
  cfg.endpoint = {"127.0.0.1", 19332};
  const std::string req = node_rpc_request(cfg, "__cookie__:abc", "getblockcount");
  CHECK(req.rfind("POST / HTTP/1.1\r\nHost: 127.0.0.1:19332\r\n", 0) == 0);
  CHECK(req.find("Authorization: Basic X19jb29raWVfXzphYmM=\r\n") != std::string::npos);
  CHECK(req.find("\r\n\r\n{\"jsonrpc\":\"1.0\",\"id\":\"hashgate\",\"method\":\"getblockcount\",\"params\":[]}") !=
        std::string::npos);
  std::string err;
  auto ok = node_rpc_result("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
                            "{\"result\":2801234,\"error\":null,\"id\":\"hashgate\"}\n",
                            err);
  REQUIRE(ok);
  CHECK(*ok == "2801234");
  auto hash = node_rpc_result("HTTP/1.1 200 OK\r\n\r\n{\"result\":\"00ab\",\"error\":null,\"id\":1}", err);
  REQUIRE(hash);
  CHECK(*hash == "\"00ab\"");
  // Warming up: HTTP 500 with the RPC error object.
  CHECK_FALSE(node_rpc_result("HTTP/1.1 500 Internal Server Error\r\n\r\n"
                              "{\"result\":null,\"error\":{\"code\":-28,\"message\":\"Loading block index...\"},\"id\":1}",
                              err));
  CHECK(err == "RPC error -28: Loading block index...");
  CHECK_FALSE(node_rpc_result("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"jsonrpc\"\r\n\r\n", err));
  CHECK(err == "HTTP 401 (credentials refused)");
  CHECK_FALSE(node_rpc_result("garbage", err));
  CHECK(err == "not an HTTP response");
}
