// The accept path allocates nothing: once a miner is subscribed and
// authorized, a share's line in, its event, its hash check and its answer
// out reuse storage that already exists (issue: "no per-share heap
// allocation on the accept path"). Every operator new in this binary is
// counted, so a string that outgrows its small buffer or a vector that is
// rebuilt per share makes the count move.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "proxy/ledger_buckets.h"
#include "tests/unit/session_pair.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}

// These operators pair malloc with free by design; gcc's
// -Wmismatched-new-delete sees only "free on a pointer from operator new".
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t al = std::size_t(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

using namespace hashgate;
using namespace hashgate::testing;


TEST_CASE("a share accepted and answered allocates nothing once the session is set up") {
  // The pool's jobs at difficulty 1e-3, the miner's fixed at 1e-6.
  Pair r(1e-3, 7, VardiffConfig{1e-6, 1e-6, 1e-6, 1e9});
  SessionSpares spares;
  r.ctx.spares = &spares;
  REQUIRE(r.jobs.latest(1));
  DownstreamSession s(r.ctx, 1, 0);
  std::vector<OutChunk> sent;  // what the gateway's flush holds, reused
  auto flush = [&] {
    s.take_output(sent);
    std::string all;
    for (const OutChunk& c : sent) all += c.view();
    s.recycle(sent);
    return all;
  };
  s.receive("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"bmminer/2.0.0\"]}\n", 0);
  SessionEvent ev;
  REQUIRE(s.next_event(ev));
  Binding b;
  b.link_id = 1;
  b.extranonce1 = r.up.subscription().extranonce1;
  b.prefix_offset = uint32_t(b.extranonce1.size());
  b.extranonce1.push_back(0x2a);
  b.extranonce2_size = 7;
  b.version_mask = r.up.version_mask();
  s.bind(b, 0);
  flush();
  // A worker name longer than any small-string buffer, as farms name them.
  const std::string worker = "farm-west.rack-12.antminer-s19j-0042";
  s.receive("{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"" + worker + "\",\"x\"]}\n", 0);
  REQUIRE(s.next_event(ev));
  REQUIRE(ev.kind == SessionEventKind::kAuthorize);
  s.authorize_result(ev.id, ev.auth.user, true, {});
  const std::string welcome = flush();
  REQUIRE(welcome.find("mining.notify") != std::string::npos);

  // Shares for the current job, each with its own extranonce2 (so none is a
  // duplicate), made before counting.
  JobRef job = r.jobs.latest(1);
  std::vector<std::string> lines;
  for (int i = 0; i < 800; ++i) {
    uint8_t e2[7] = {0, 0, 0, 0, 0, uint8_t(i >> 8), uint8_t(i)};
    lines.push_back(find_submit(*job, b, 1e-6, true, 1000 + i, hex_encode(std::span<const uint8_t>(e2 + 0, 7)), worker));
  }

  uint64_t accepted = 0, answered = 0;
  std::string answers;
  answers.reserve(1 << 17);
  auto one = [&](const std::string& line) {
    s.receive(line, 0);
    while (s.next_event(ev)) {
      REQUIRE(ev.kind == SessionEventKind::kShare);
      ShareVerdict v = s.complete_share(ev.share, sha256d(ev.share.header), 0);
      accepted += v.accepted;
    }
    s.take_output(sent);
    for (const OutChunk& c : sent) {
      answers += c.view();
      ++answered;
    }
    s.recycle(sent);
  };
  // Warm-up: the first shares size the spares and the parser.
  for (int i = 0; i < 400; ++i) one(lines[size_t(i)]);
  const uint64_t before = g_allocations.load();
  for (int i = 400; i < 800; ++i) one(lines[size_t(i)]);
  const uint64_t allocations = g_allocations.load() - before;

  CHECK(accepted == 800);
  CHECK(answered == 800);
  CHECK(answers.find("\"id\":1799,\"result\":true") != std::string::npos);
  CHECK(answers.find("\"error\":[") == std::string::npos);
  // 400 shares, and at most one allocation: the job's duplicate set doubles
  // its table as shares for the job accumulate (amortized, once per doubling;
  // never per share).
  CHECK(allocations <= 1);
  // And the session holds nothing between shares: its buffers went back.
  CHECK_FALSE(s.holds_buffers());
}

TEST_CASE("the ledger's counting allocates nothing while its reserve is kept ahead") {
  // As the gateway uses it: reserve() when workers join and after each
  // flush; at() on the share path, for 2,000 active workers on two pools.
  hashgate::LedgerBuckets b;
  std::vector<hashgate::LedgerBuckets::Row> out;
  b.reserve(2000, 2000);
  for (int round = 0; round < 2; ++round) {  // the second interval reuses the first one's storage
    const uint64_t before = g_allocations.load();
    for (uint32_t i = 0; i < 8000; ++i) {
      hashgate::LedgerCounts& c = b.at(i % 2000, (i / 2000) % 2);
      ++c.accepted;
      c.accepted_difficulty += 1;
    }
    const uint64_t allocations = g_allocations.load() - before;
    CHECK(b.rows() == 4000);
    CHECK(allocations == 0);
    b.take(out);
    CHECK(out.size() == 4000);
    CHECK(out[0].c.accepted == 2);
    b.reserve(2000, 2000);
  }
}
