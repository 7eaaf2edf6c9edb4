// Issue 17's protocol pieces, without sockets: an unusable subscribe result
// is fatal for the connection, a malformed notify is told apart from other
// malformed messages, and a pool's mining.set_version_mask reaches the miner
// and holds its shares to the new mask.
#include <doctest/doctest.h>

#include "tests/unit/session_pair.h"

using namespace hashgate;
using namespace hashgate::testing;

namespace {

// An upstream session that has sent its opening requests (subscribe is id 1
// when no version rolling is asked), fed `reply`.
std::vector<UpstreamEvent> feed_upstream(const std::string& reply) {
  StratumParser parser(65536);
  UpstreamSession up(parser, UpstreamOptions{"t", "", "", 0, false, "", 65536});
  up.start();
  up.receive(reply, 0);
  std::vector<UpstreamEvent> evs;
  UpstreamEvent ev;
  while (up.next_event(ev)) evs.push_back(ev);
  return evs;
}

}  // namespace

TEST_CASE("an unusable subscribe result is fatal for the connection (a limbo pool)") {
  const char* bad[] = {
      R"({"id":1,"result":[[],"a0000001",0],"error":null})",
      R"({"id":1,"result":[[],"a0000001",255],"error":null})",
      R"({"id":1,"result":null,"error":null})",
      R"({"id":1,"result":null,"error":[20,"subscriptions closed",null]})",
  };
  for (const char* reply : bad) {
    CAPTURE(reply);
    std::string extranonce1_100 = std::string(R"({"id":1,"result":[[],")") + std::string(200, 'a') + R"(",8],"error":null})";
    for (const std::string& r : {std::string(reply), extranonce1_100}) {
      auto evs = feed_upstream(r + "\n");
      REQUIRE(evs.size() == 1);
      CHECK(evs[0].kind == UpstreamEventKind::kProtocolError);
      CHECK(evs[0].fatal);
      CHECK_FALSE(evs[0].bad_notify);
    }
  }
  auto good = feed_upstream(R"({"id":1,"result":[[],"a0000001",8],"error":null})" "\n");
  REQUIRE(good.size() == 1);
  CHECK(good[0].kind == UpstreamEventKind::kSubscribed);
}

TEST_CASE("a malformed notify is marked as one; other malformed messages are not") {
  const std::string sub = R"({"id":1,"result":[[],"a0000001",8],"error":null})" "\n";
  auto evs = feed_upstream(sub + R"({"id":null,"method":"mining.notify","params":["j","zz","00","00",[],"20000000","1d00ffff","00000000",true]})" "\n");
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].kind == UpstreamEventKind::kProtocolError);
  CHECK(evs[1].bad_notify);
  CHECK_FALSE(evs[1].fatal);
  evs = feed_upstream(sub + "{not json\n" + R"({"id":77,"result":true,"error":null})" "\n");
  REQUIRE(evs.size() == 3);
  CHECK_FALSE(evs[1].bad_notify);
  CHECK_FALSE(evs[2].bad_notify);  // an answer to a request never sent
}

TEST_CASE("a pool's set_version_mask narrows the miner's mask, tells it, and refuses shares outside") {
  Pair p(1e-5);
  DownstreamSession s(p.ctx, 9, 0);
  s.receive(R"({"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]})"
            "\n" R"({"id":2,"method":"mining.subscribe","params":[]})" "\n"
            R"({"id":3,"method":"mining.authorize","params":["w","x"]})" "\n",
            0);
  SessionEvent ev;
  while (s.next_event(ev))
    if (ev.kind == SessionEventKind::kAuthorize) s.authorize_result(ev.id, ev.auth.user, true, {});
  Binding b;
  b.link_id = 1;
  b.extranonce1 = p.up.subscription().extranonce1;
  b.prefix_offset = uint32_t(b.extranonce1.size());
  b.extranonce2_size = p.up.subscription().extranonce2_size;
  b.version_mask = 0x1fffe000;
  s.bind(b, 0);
  CHECK(s.version_mask() == 0x1fffe000);
  p.take(s);
  s.set_pool_version_mask(0x00006000);
  CHECK(s.version_mask() == 0x00006000);
  CHECK(p.take(s) == R"({"id":null,"method":"mining.set_version_mask","params":["00006000"]})" "\n");
  s.set_pool_version_mask(0x00006000);  // no change: nothing said
  CHECK(p.take(s).empty());
  // A share rolling a bit the old mask allowed and the new one does not.
  JobRef job = p.jobs.latest(1);
  REQUIRE(job);
  s.receive("{\"id\":5,\"method\":\"mining.submit\",\"params\":[\"w\",\"" + job->id + "\",\"0000000000000000\",\"" +
                hex_u32_string(job->params.ntime) + "\",\"00000000\",\"00002000\"]}\n"
            "{\"id\":6,\"method\":\"mining.submit\",\"params\":[\"w\",\"" + job->id + "\",\"0000000000000001\",\"" +
                hex_u32_string(job->params.ntime) + "\",\"00000000\",\"00010000\"]}\n",
            0);
  int shares = 0, outside = 0;
  while (s.next_event(ev)) {
    shares += ev.kind == SessionEventKind::kShare;
    outside += ev.kind == SessionEventKind::kRejected && ev.error.message.find("outside") != std::string::npos;
  }
  CHECK(shares == 1);
  CHECK(outside == 1);
}
