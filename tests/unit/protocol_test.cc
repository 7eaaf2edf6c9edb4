#include <doctest/doctest.h>

#include <set>

#include <string>

#include "hashing/header.h"
#include "protocol/extranonce_allocator.h"
#include "protocol/job.h"
#include "protocol/line_framer.h"
#include "protocol/stratum_codec.h"
#include "protocol/vardiff.h"

using namespace hashgate;

TEST_CASE("line framer: split reads, CRLF, and the length cap") {
  LineFramer f(16);
  std::string_view line;
  f.feed("{\"a\":");
  CHECK(f.next_line(line) == LineFramer::Status::kNeedMore);
  f.feed("1}\r\n{}\n{");
  REQUIRE(f.next_line(line) == LineFramer::Status::kLine);
  CHECK(line == "{\"a\":1}");
  REQUIRE(f.next_line(line) == LineFramer::Status::kLine);
  CHECK(line == "{}");
  CHECK(f.next_line(line) == LineFramer::Status::kNeedMore);
  CHECK(f.buffered() == 1);
  f.feed(std::string(40, 'x'));
  CHECK(f.next_line(line) == LineFramer::Status::kTooLong);
  // Stays refused: a session that overflowed is closed, never resynchronized.
  f.feed("\n{}\n");
  CHECK(f.next_line(line) == LineFramer::Status::kTooLong);
  CHECK(f.buffered() == 0);

  LineFramer g(8);
  g.feed("123456789\n");  // 9 bytes before the newline: over the cap even though complete
  CHECK(g.next_line(line) == LineFramer::Status::kTooLong);
}

TEST_CASE("codec: ids are echoed exactly, errors are precise") {
  StratumParser p(1024);
  auto m = p.parse(R"({"id":"abc\"d","method":"mining.subscribe","params":["x/1"]})");
  REQUIRE(m);
  std::string out;
  write_result_true(out, m->id);
  CHECK(out == "{\"id\":\"abc\\\"d\",\"result\":true,\"error\":null}\n");

  auto bad = p.parse("{\"id\":1,\"method\":");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::kParseError);
  auto arr = p.parse("[1,2]");
  REQUIRE_FALSE(arr);
  CHECK(arr.error().code == ErrorCode::kInvalidRequest);
  CHECK_FALSE(p.parse(R"({"id":{"x":1},"method":"a"})"));

  auto s = p.parse(R"({"id":4,"method":"mining.submit","params":["w","1","00","zz000000","00000000"]})");
  REQUIRE(s);
  auto sub = decode_submit(*s);
  REQUIRE_FALSE(sub);
  CHECK(sub.error().code == ErrorCode::kInvalidParams);
  CHECK(sub.error().message.find("ntime") != std::string::npos);
  auto few = p.parse(R"({"id":4,"method":"mining.submit","params":["w","1"]})");
  CHECK_FALSE(decode_submit(*few));
  auto ok = p.parse(R"({"id":4,"method":"mining.submit","params":["w","1","00ff","6b033c4e","9e3779bb","00002000"]})");
  auto good = decode_submit(*ok);
  REQUIRE(good);
  CHECK(good->ntime == 0x6b033c4e);
  CHECK(good->nonce == 0x9e3779bb);
  CHECK(good->version_bits == 0x00002000u);
}

TEST_CASE("codec: notify survives a write and a parse unchanged") {
  NotifyParams n;
  n.job_id = "1f";
  for (size_t i = 0; i < 32; ++i) n.prevhash[i] = uint8_t(i);
  n.coinb1 = {1, 2, 3};
  n.coinb2 = {4, 5};
  Hash256 h{};
  h[0] = 9;
  n.merkle_branch = {h, h};
  n.version = 0x20000000;
  n.nbits = 0x1d00ffff;
  n.ntime = 0x6b033c4e;
  std::string line;
  write_notify(line, "1f", n, true);
  StratumParser p(4096);
  auto m = p.parse(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(m);
  auto d = decode_notify(*m);
  REQUIRE(d);
  CHECK(d->prevhash == n.prevhash);
  CHECK(d->coinb1 == n.coinb1);
  CHECK(d->coinb2 == n.coinb2);
  CHECK(d->merkle_branch.size() == 2);
  CHECK(d->version == n.version);
  CHECK(d->nbits == n.nbits);
  CHECK(d->ntime == n.ntime);
  CHECK(d->clean_jobs);
}

TEST_CASE("codec: subscribe results in both of the shapes pools send") {
  StratumParser p(4096);
  auto a = p.parse(R"({"id":2,"result":[[["mining.set_difficulty","d"],["mining.notify","sess42"]],"f000000d",4],"error":null})");
  auto r = decode_subscribe_result(*a);
  REQUIRE(r);
  CHECK(hex_encode(r->extranonce1) == "f000000d");
  CHECK(r->extranonce2_size == 4);
  CHECK(r->session_id == "sess42");
  auto b = p.parse(R"({"id":2,"result":[["mining.notify","s1"],"00",8],"error":null})");
  auto r2 = decode_subscribe_result(*b);
  REQUIRE(r2);
  CHECK(r2->session_id == "s1");
  auto c = p.parse(R"({"id":2,"result":[[],"00",99],"error":null})");
  CHECK_FALSE(decode_subscribe_result(*c));
}

TEST_CASE("prefix allocator: capacity, quarantine until the next clean job") {
  PrefixAllocator a(1, 1000);
  CHECK(a.capacity() == 256);
  for (int i = 0; i < 256; ++i) CHECK(a.allocate() == uint32_t(i));
  CHECK_FALSE(a.allocate());
  CHECK(a.full());
  a.release(7);
  CHECK_FALSE(a.allocate());  // not before a clean job
  a.on_clean_job();
  CHECK(a.allocate() == 7u);

  // A resumed session takes back given prefixes; the rest stay allocatable.
  PrefixAllocator t(1, 1000);
  CHECK(t.take(5));
  CHECK_FALSE(t.take(5));   // taken
  CHECK(t.take(2));         // below the high-water mark, still free
  CHECK_FALSE(t.take(256)); // out of range
  CHECK(t.in_use() == 2);
  std::set<uint32_t> rest;
  while (auto p = t.allocate()) rest.insert(*p);
  CHECK(rest.size() == 254);
  CHECK(rest.count(5) == 0);
  CHECK(rest.count(2) == 0);
  CHECK(rest.count(4) == 1);

  PrefixAllocator z(0, 1000);
  CHECK(z.capacity() == 1);
  CHECK(z.allocate() == 0u);
  CHECK_FALSE(z.allocate());

  CHECK(choose_prefix_bytes(-1, 8, 4, 4096) == 2);
  CHECK(choose_prefix_bytes(-1, 8, 4, 256) == 1);
  CHECK(choose_prefix_bytes(-1, 5, 4, 4096) == 1);   // miners keep at least 4
  CHECK(choose_prefix_bytes(-1, 4, 4, 4096) == 0);
  CHECK(choose_prefix_bytes(3, 8, 4, 4096) == 3);
  CHECK(choose_prefix_bytes(3, 6, 4, 4096) == 2);    // configured, but capped by the minimum
}

TEST_CASE("job book: gateway ids, clean jobs retire a connection's older jobs") {
  JobBook book(Algorithm::kScrypt);
  NotifyParams n;
  n.job_id = "pool-a";
  n.nbits = 0x1e0ffff0;
  JobRef j1 = book.add(1, n, {1, 2}, 4, 0.5);
  JobRef j2 = book.add(2, n, {3, 4}, 4, 0.5);
  CHECK(j1->id == "1");
  CHECK(j2->id == "2");
  CHECK(book.find("1"));
  CHECK(book.find("zz") == nullptr);
  CHECK(j1->notify_line->find("\"1\"") != std::string::npos);
  CHECK(j1->notify_line->find("false]") != std::string::npos);
  CHECK(j1->notify_line_clean->find("true]") != std::string::npos);
  n.clean_jobs = true;
  JobRef j3 = book.add(1, n, {1, 2}, 4, 0.5);
  CHECK(book.find(j1->seq) == nullptr);  // retired by the clean job on its connection
  CHECK(book.find(j2->seq) != nullptr);  // another connection's job stays
  CHECK(book.latest(1) == j3);
  n.clean_jobs = false;
  for (int i = 0; i < 10; ++i) book.add(2, n, {3, 4}, 4, 0.5);
  CHECK(book.find(j2->seq) == nullptr);  // beyond the window
  book.retire_link(2);
  CHECK(book.latest(2) == nullptr);
}

#include "protocol/circuit_breaker.h"

TEST_CASE("circuit breaker: opens after N failures, backs off exponentially, one probe, closes") {
  BreakerConfig cfg{3, 1, 8, 0.0};
  CircuitBreaker b(cfg);
  CHECK(b.allow_attempt(0));
  b.on_failure(0, 0.5);
  b.on_failure(1, 0.5);
  CHECK(b.state() == CircuitBreaker::State::kClosed);
  b.on_failure(2, 0.5);
  CHECK(b.state() == CircuitBreaker::State::kOpen);
  CHECK_FALSE(b.allow_attempt(2.5));
  CHECK(b.retry_at() == doctest::Approx(3));  // 1 s after the first opening
  CHECK(b.allow_attempt(3));
  CHECK(b.state() == CircuitBreaker::State::kHalfOpen);
  b.on_attempt(3);
  CHECK_FALSE(b.allow_attempt(3.1));  // one probe at a time
  b.on_failure(4, 0.5);               // the probe failed: open for longer
  CHECK(b.retry_at() == doctest::Approx(6));
  CHECK(b.allow_attempt(6));
  b.on_attempt(6);
  b.on_failure(7, 0.5);
  CHECK(b.retry_at() == doctest::Approx(11));
  b.allow_attempt(11);
  b.on_attempt(11);
  b.on_failure(11, 0.5);
  CHECK(b.retry_at() == doctest::Approx(19));  // capped at 8 s
  b.allow_attempt(19);
  b.on_attempt(19);
  b.on_success(20);
  CHECK(b.state() == CircuitBreaker::State::kClosed);
  CHECK(b.healthy_since() == 20);
  CHECK(b.consecutive_failures() == 0);

  BreakerConfig jit{1, 10, 100, 0.2};
  CircuitBreaker j(jit);
  j.on_failure(0, 0.0);
  CHECK(j.retry_at() == doctest::Approx(8));
  CircuitBreaker k(jit);
  k.on_failure(0, 0.999999);
  CHECK(k.retry_at() == doctest::Approx(12).epsilon(0.001));
}

TEST_CASE("decode_error: any shape a pool sends, including empty ones (found by fuzz_stratum)") {
  StratumParser p(4096);
  auto err_of = [&](const char* line) {
    auto m = p.parse(line);
    REQUIRE(m);
    return decode_error(*m);
  };
  Error e = err_of(R"({"id":4,"result":null,"error":[23,"low difficulty share",null]})");
  CHECK(e.code == ErrorCode::kLowDifficulty);
  CHECK(e.message == "low difficulty share");
  e = err_of(R"({"id":4,"result":null,"error":{"code":21,"message":"stale"}})");
  CHECK(e.code == ErrorCode::kStaleJob);
  CHECK(e.message == "stale");
  for (const char* odd : {R"({"id":4,"result":null,"error":[]})", R"({"id":4,"result":null,"error":{}})",
                          R"({"id":4,"result":null,"error":[null]})", R"({"id":4,"result":null,"error":"x"})"}) {
    e = err_of(odd);
    CHECK(e.code == ErrorCode::kOther);
    CHECK(e.message == "rejected");
  }
}
