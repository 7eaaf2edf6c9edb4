// Sessions connected straight to each other, with no sockets and no clock:
// the built-in test pool ↔ UpstreamSession, and a DownstreamSession bound to
// the upstream's space, as the gateway would do.
#include <doctest/doctest.h>

#include <string>

#include "tests/unit/session_pair.h"

using namespace hashgate;
using namespace hashgate::testing;

namespace {
// `first` and `second` both occur in `text`, `first` before `second`.
bool in_order(const std::string& text, std::string_view first, std::string_view second) {
  const size_t a = text.find(first), b = text.find(second);
  return a != std::string::npos && b != std::string::npos && a < b;
}
}  // namespace

TEST_CASE("upstream session subscribes, authorizes and receives work from the test pool") {
  Pair p(1e-5);
  CHECK(p.up.state() == UpstreamSession::State::kSubscribed);
  CHECK(p.up.authorized());
  CHECK(p.up.version_mask() == 0x1fffe000);
  CHECK(p.up.subscription().extranonce2_size == 8);
  CHECK(p.up.difficulty() == doctest::Approx(1e-5));
  REQUIRE(p.jobs.latest(1));
}

TEST_CASE("a share flows miner → session → pool, with the verdicts of DESIGN.md") {
  Pair p(1e-5);
  DownstreamSession s(p.ctx, 1, 0);
  s.receive("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"m/1\"]}\n", 0);
  SessionEvent ev;
  REQUIRE(s.next_event(ev));
  CHECK(ev.kind == SessionEventKind::kNeedUpstream);

  Binding b;
  b.link_id = 1;
  b.extranonce1 = p.up.subscription().extranonce1;
  b.prefix_offset = uint32_t(b.extranonce1.size());
  b.extranonce1.push_back(0x00);
  b.extranonce1.push_back(0x05);  // a 2-byte prefix
  b.extranonce2_size = 6;
  b.version_mask = p.up.version_mask();
  s.bind(b, 0);
  std::string out = p.take(s);
  CHECK(out.find(hex_encode(b.extranonce1)) != std::string::npos);
  CHECK(out.find(",6]") != std::string::npos);

  s.receive("{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"w\",\"x\"]}\n", 0);
  REQUIRE(s.next_event(ev));
  REQUIRE(ev.kind == SessionEventKind::kAuthorize);
  s.authorize_result(ev.id, ev.auth.user, true, {});
  out = p.take(s);
  CHECK(in_order(out, "mining.set_difficulty", "mining.notify"));
  JobRef job = p.jobs.latest(1);

  // A valid share: hashed by the "gateway" here, accepted, and since the
  // miner's difficulty is under the pool's, forwarded only if it meets it.
  s.receive(find_submit(*job, b, 1e-6, true, 3, "000000000001"), 0);
  REQUIRE(s.next_event(ev));
  REQUIRE(ev.kind == SessionEventKind::kShare);
  ShareWork w = ev.share;
  ShareVerdict v = s.complete_share(w, sha256d(w.header), 0);
  CHECK(v.accepted);
  CHECK(p.take(s) == "{\"id\":3,\"result\":true,\"error\":null}\n");
  CHECK(v.forward == meets(sha256d(w.header), job->pool_target));
  CHECK(hex_encode(std::span<const uint8_t>(w.upstream_extranonce2.data(), w.upstream_extranonce2_size)) ==
        "0005000000000001");

  // Forwarded upward, the test pool checks it and agrees.
  std::string pool_share = find_submit(*job, b, 1e-5, true, 4, "000000000002");
  s.receive(pool_share, 0);
  REQUIRE(s.next_event(ev));
  ShareVerdict v2 = s.complete_share(ev.share, sha256d(ev.share.header), 0);
  REQUIRE(v2.forward);
  p.up.submit(77, "gw", job->params.job_id,
              std::span<const uint8_t>(ev.share.upstream_extranonce2.data(), ev.share.upstream_extranonce2_size),
              ev.share.ntime, ev.share.nonce, std::nullopt, 0);
  p.take(s);
  p.pump();
  bool seen = false;
  for (auto& e : p.up_events)
    if (e.kind == UpstreamEventKind::kSubmitResult && e.token == 77) seen = e.ok;
  CHECK(seen);
  CHECK(p.pool.stats().accepted == 1);

  // Answers keep the order of the submits: a share still being hashed
  // holds back everything after it, even a rejection decided at once.
  s.receive(pool_share, 0);
  SessionEvent held;
  REQUIRE(s.next_event(held));
  REQUIRE(held.kind == SessionEventKind::kRejected);  // duplicate of the share above
  s.receive(find_submit(*job, b, 1e-6, true, 40, "0000000000aa"), 0);
  REQUIRE(s.next_event(held));
  REQUIRE(held.kind == SessionEventKind::kShare);
  s.receive(pool_share, 0);  // a second duplicate, after the share being hashed
  SessionEvent dup2;
  REQUIRE(s.next_event(dup2));
  std::string early = p.take(s);
  CHECK(early.find("[22,") != std::string::npos);  // the first duplicate went out
  CHECK(early.find("\"id\":40") == std::string::npos);
  CHECK(early.find("[22,", early.find("[22,") + 1) == std::string::npos);  // the second waits
  s.complete_share(held.share, sha256d(held.share.header), 0);
  std::string late = p.take(s);
  CHECK(in_order(late, "\"id\":40", "[22,"));

  // The same share again: duplicate, answered before any hashing.
  s.receive(pool_share, 0);
  REQUIRE(s.next_event(ev));
  CHECK(ev.kind == SessionEventKind::kRejected);
  CHECK(ev.error.code == ErrorCode::kDuplicateShare);
  CHECK(p.take(s).find("[22,") != std::string::npos);

  // Too little work: 23 after hashing.
  s.receive(find_submit(*job, b, 1e-6, false, 5, "000000000003"), 0);
  REQUIRE(s.next_event(ev));
  REQUIRE(ev.kind == SessionEventKind::kShare);
  CHECK_FALSE(s.complete_share(ev.share, sha256d(ev.share.header), 0).accepted);
  CHECK(p.take(s).find("[23,") != std::string::npos);

  // A clean job makes the old one stale (21).
  p.pool.new_job(true, 1);
  p.pump();
  JobRef fresh = p.jobs.latest(1);
  s.on_job(fresh, false);
  p.take(s);
  s.receive(find_submit(*job, b, 1e-6, true, 6, "000000000004"), 0);
  REQUIRE(s.next_event(ev));
  CHECK(ev.error.code == ErrorCode::kStaleJob);

  // Wrong extranonce2 size is refused with its size in the message.
  s.receive("{\"id\":7,\"method\":\"mining.submit\",\"params\":[\"w\",\"" + fresh->id + "\",\"00\",\"" +
                hex_u32_string(fresh->params.ntime) + "\",\"00000000\"]}\n",
            0);
  REQUIRE(s.next_event(ev));
  CHECK(ev.error.message.find("6 bytes") != std::string::npos);
}

TEST_CASE("configure waits for the binding and grants the intersection of masks") {
  Pair p(1e-5);
  DownstreamSession s(p.ctx, 9, 0);
  s.receive(R"({"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"00ffff00"}]})"
            "\n",
            0);
  CHECK(p.take(s).empty());  // nothing until the upstream is known
  Binding b;
  b.link_id = 1;
  b.extranonce1 = {1, 2, 3, 4};
  b.prefix_offset = 4;
  b.extranonce2_size = 8;
  b.version_mask = 0x1fffe000;
  s.bind(b, 0);
  std::string out = p.take(s);
  CHECK(out.find("\"version-rolling.mask\":\"00ffe000\"") != std::string::npos);
  CHECK(s.version_mask() == 0x00ffe000);
}

TEST_CASE("an oversized line closes the session; garbage does not") {
  Pair p(1e-5);
  p.ctx.max_line = 1024;
  StratumParser small(1024);
  p.ctx.parser = &small;
  DownstreamSession s(p.ctx, 3, 0);
  s.receive("this is not json\n", 0);
  CHECK_FALSE(s.closing());
  CHECK(p.take(s).find("-32700") != std::string::npos);
  s.receive(std::string(2000, 'x'), 0);
  CHECK(s.closing());
  CHECK(s.close_reason().find("1024") != std::string::npos);
}

TEST_CASE("sessions sharing spare buffers: idle ones hold none, split lines survive") {
  Pair p(1e-5);
  SessionSpares spares;
  p.ctx.spares = &spares;
  DownstreamSession a(p.ctx, 11, 0), b(p.ctx, 12, 0);
  const std::string sub = "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n";
  // `a` gets half a line, then `b` a whole one and a get_version (borrowing
  // the spares), then `a` the rest: each answer is its own.
  a.receive(sub.substr(0, 20), 0);
  CHECK(a.holds_buffers());  // a partial line stays with its session
  b.receive(sub + "{\"id\":2,\"method\":\"client.get_version\",\"params\":[]}\n", 0);
  SessionEvent ev;
  while (b.next_event(ev)) {}
  std::string bo = p.take(b);
  CHECK(bo.find("\"id\":2") != std::string::npos);
  CHECK_FALSE(b.holds_buffers());
  a.receive(sub.substr(20), 0);
  while (a.next_event(ev)) {}
  std::string ao = p.take(a);
  CHECK(ao.find("\"id\":2") == std::string::npos);
  CHECK_FALSE(a.holds_buffers());
  // The storage went back to the spares, ready for the next busy session.
  CHECK(spares.framer.capacity() > 15);
}
