// The failover scenarios on a virtual clock: exact instants and orders.
#include "routing/router.h"

#include <doctest/doctest.h>

#include <set>

#include "tests/unit/routing/router_harness.h"

namespace hashgate::routing::testing {
namespace {

// Every live miner sits on a distinct slice of a link of `pool` (none stranded).
void check_all_placed(Harness& h, size_t pool) {
  const auto placed = h.placements();
  CHECK(placed.size() == h.miners.size());
  std::set<std::pair<uint32_t, Bytes>> slices;
  for (const auto& [sid, b] : placed) {
    CHECK(h.router->link_pool(b.link_id) == pool);
    slices.insert({b.link_id, b.extranonce1});
  }
  CHECK(slices.size() == placed.size());
}

// The setup every scenario starts from: both pools up, `n` miners on "a" at t=1.
std::vector<uint64_t> start(Harness& h, int n, bool in_place = true) {
  h.run_until(1);
  REQUIRE(h.link_of_pool(0) != 0);
  REQUIRE(h.link_of_pool(1) != 0);  // the warm standby
  std::vector<uint64_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(h.add_miner(in_place));
  check_all_placed(h, 0);
  return ids;
}

}  // namespace

TEST_CASE("routing: both pools connect at once; miners are placed on the serving pool") {
  Harness h(two_pools(), 2);
  start(h, 5);
  CHECK(h.connect_times(0) == std::vector<double>{0});
  CHECK(h.connect_times(1) == std::vector<double>{0});
  CHECK(h.router->active_pool() == 0);
}

TEST_CASE("routing: firmware that takes less extranonce1 than the pool's is still bound, whole, and each is warned about") {
  // The pool's 4 bytes of extranonce1 and hashgate's prefix exceed this
  // profile's 4: every bind also logs miner_space_outside_profile, a command
  // emitted while the bind is being built (40 miners: commands_ grows meanwhile).
  Harness h(two_pools(), 2);
  h.profile().name = "narrow";
  h.profile().max_extranonce1_size = 4;
  auto ids = start(h, 40, false);
  const auto binds = h.seen(Command::Kind::kBind);
  REQUIRE(binds.size() == ids.size());
  for (const Event& e : binds) {
    CHECK(e.c.binding.link_id == h.link_of_pool(0));
    CHECK(e.c.binding.extranonce1.size() > 4);
    CHECK(e.c.binding.extranonce2_size > 0);
  }
  const auto warned = h.logs("miner_space_outside_profile");
  REQUIRE(warned.size() == ids.size());
  CHECK(warned[0].c.log.find("profile")->s == "narrow");
  for (uint64_t sid : ids) {
    CHECK(h.miners.at(sid)->bound());
    CHECK(h.miners.at(sid)->binding().extranonce1.size() == binds[0].c.binding.extranonce1.size());
  }
}

TEST_CASE("routing: a killed primary: its miners move to the standby in the same instant, then attempts back off") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 6);
  const uint32_t standby = h.link_of_pool(1);
  h.run_until(10);
  h.kill_pool(0);
  // The same instant: the pool is lost, the standby serves, every miner is moved in place onto it.
  REQUIRE(h.logs("pool_disconnected").size() == 1);
  CHECK(h.logs("pool_disconnected")[0].t == 10);
  REQUIRE(h.logs("pool_failover").size() == 1);
  CHECK(h.logs("pool_failover")[0].t == 10);
  auto moves = h.seen(Command::Kind::kSetExtranonce);
  REQUIRE(moves.size() == ids.size());
  for (const Event& e : moves) {
    CHECK(e.t == 10);
    CHECK(e.c.binding.link_id == standby);
  }
  check_all_placed(h, 1);
  CHECK(h.seen(Command::Kind::kReconnect).empty());
  // Breaker (jitter 0): two quick retries 0.5 s apart, then open: 1, 2, 4, 8, 16, 32 s, capped at 60.
  h.run_until(200);
  CHECK(h.connect_times(0) == std::vector<double>{0, 10.5, 11, 12, 14, 18, 26, 42, 74, 134, 194});
  CHECK(h.router->breaker(0).state() == CircuitBreaker::State::kOpen);
}

TEST_CASE("routing: miners that cannot move in place are sent client.reconnect, spread over 3 s") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 8, false);
  h.run_until(10);
  h.kill_pool(0);
  auto rec = h.seen(Command::Kind::kReconnect);
  REQUIRE(rec.size() == ids.size());
  for (const Event& e : rec) {
    CHECK(e.t == 10);
    CHECK(e.c.pool == 1);
    REQUIRE(e.c.endpoint);
    CHECK(e.c.endpoint->port == 3334);  // the pool it goes to (the shell picks hashgate's address)
    CHECK(e.c.wait < 3);
  }
}

TEST_CASE("routing: a silent primary fails exactly job_timeout after its last job") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 4);
  h.run_until(6);
  CHECK(h.pools[0]->last_job_at == 5);
  h.pools[0]->silent = true;
  h.run_until(34.999);
  CHECK(h.logs("pool_disconnected").empty());
  h.run_until(40);
  auto lost = h.logs("pool_disconnected");
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].t == 35);
  CHECK(lost[0].c.log.find("reason")->s == "no job for 30 s");
  auto moves = h.seen(Command::Kind::kSetExtranonce);
  REQUIRE(moves.size() == ids.size());
  for (const Event& e : moves) CHECK(e.t == 35);
  check_all_placed(h, 1);
}

TEST_CASE("routing: garbage: five malformed messages in a row fail the pool, four do not") {
  Harness h(two_pools(), 2);
  start(h, 3);
  h.run_until(10);
  const uint32_t link = h.link_of_pool(0);
  h.pools[0]->garbage(link, 4);
  h.deliver();
  CHECK(h.logs("pool_disconnected").empty());
  CHECK(h.logs("pool_protocol_error").size() == 4);
  h.pools[0]->notify_all(false, h.now);  // a good message resets the count
  h.pools[0]->garbage(link, 4);
  h.deliver();
  CHECK(h.logs("pool_disconnected").empty());
  h.run_until(12);
  h.pools[0]->garbage(link, 5);
  h.deliver();
  auto lost = h.logs("pool_disconnected");
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].t == 12);
  CHECK(lost[0].c.log.find("reason")->s == "5 malformed messages in a row");
  check_all_placed(h, 1);
}

TEST_CASE("routing: a rejecting pool: its verdicts go back to each share's session; past the ratio the breaker opens at once") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 2);
  h.run_until(10);
  h.pools[0]->reject_shares = true;
  const uint32_t link = h.link_of_pool(0);
  JobRef job = h.jobs().latest(link);
  REQUIRE(job);
  auto share = [&](uint64_t sid, uint32_t n) {
    ShareWork w;
    w.session_id = sid;
    w.job = job;
    w.upstream_extranonce2_size = 8;
    w.nonce = n;
    CHECK(h.router->forward_share(sid, uint32_t(sid), "w" + std::to_string(sid), w, false, 1000 + n, h.now));
    h.apply();
  };
  for (uint32_t i = 0; i < 19; ++i) share(ids[i % 2], i);
  auto verdicts = h.seen(Command::Kind::kVerdict);
  REQUIRE(verdicts.size() == 19);
  for (size_t i = 0; i < verdicts.size(); ++i) {
    CHECK_FALSE(verdicts[i].c.ok);
    CHECK(verdicts[i].c.session == ids[i % 2]);  // routed back to the session that sent it
    CHECK(verdicts[i].c.stamp == 1000 + i);
  }
  CHECK(h.logs("pool_disconnected").empty());  // under 20 answers: no verdict yet
  share(ids[0], 19);
  auto lost = h.logs("pool_disconnected");
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].c.log.find("reason")->s == "the pool rejected 20 of the last 20 shares (limit failover.max_reject_ratio)");
  CHECK(h.router->breaker(0).state() == CircuitBreaker::State::kOpen);
  CHECK(h.router->breaker(0).retry_at() == 11);  // open at once: the first backoff, 1 s
  CHECK(h.router->forwards_pending() == 0);
  check_all_placed(h, 1);
}

TEST_CASE("routing: a dropped connection with a session id is resumed: held miners keep their slice, told nothing") {
  Harness h(two_pools(), 2);
  h.pools[0]->session_ids = true;
  auto ids = start(h, 3, false);
  const auto before = h.placements();
  h.run_until(10);
  h.kill_pool(0);
  h.pools[0]->up = true;  // back at once: the retry 0.5 s later resumes
  CHECK(h.seen(Command::Kind::kReconnect).empty());
  h.run_until(12);
  CHECK(h.connect_times(0) == std::vector<double>{0, 10.5});
  auto resumed = h.logs("pool_session_resumed");
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].t == 10.5);
  CHECK(resumed[0].c.log.find("miners_kept")->u == ids.size());
  CHECK(h.seen(Command::Kind::kReconnect).empty());
  const auto after = h.placements();
  REQUIRE(after.size() == ids.size());
  for (const auto& [sid, b] : after) CHECK(b.extranonce1 == before.at(sid).extranonce1);  // the same space
}

TEST_CASE("routing: without a session id the same drop sends reconnects at once") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 3, false);
  h.run_until(10);
  h.kill_pool(0);
  CHECK(h.seen(Command::Kind::kReconnect).size() == ids.size());
}

TEST_CASE("routing: weights 70/30 place miners 70/30 by difficulty") {
  RouterConfig cfg = two_pools();
  cfg.pools[1].priority = 0;
  cfg.pools[0].weight = 7;
  cfg.pools[1].weight = 3;
  Harness h(cfg, 2);
  h.run_until(1);
  for (int i = 0; i < 100; ++i) h.add_miner(true);
  std::map<size_t, int> per_pool;
  for (const auto& [sid, b] : h.placements()) ++per_pool[h.router->link_pool(b.link_id)];
  CHECK(per_pool[0] == 70);
  CHECK(per_pool[1] == 30);
}

TEST_CASE("routing: failback waits until the primary has been healthy failback_after_seconds") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 4);
  h.run_until(10);
  h.kill_pool(0);
  h.run_until(20);
  h.pools[0]->up = true;
  h.run_until(85.5);
  // Back at the attempt at 26 (10.5, 11, 12, 14, 18 failed): healthy from 26, so not yet.
  CHECK(h.connect_times(0).back() == 26);
  CHECK(h.logs("pool_failback").empty());
  h.run_until(90);
  auto fb = h.logs("pool_failback");
  REQUIRE(fb.size() == 1);
  CHECK(fb[0].t == 86);  // the first tick 60 s after 26
  check_all_placed(h, 0);
  for (const Event& e : h.seen(Command::Kind::kSetExtranonce))
    if (h.router->link_pool(e.c.binding.link_id) == 0) CHECK(e.t == 86);
}

TEST_CASE("routing: a pool's set_extranonce re-splits its connection; a shrink places everyone elsewhere, none stranded") {
  RouterConfig cfg = two_pools();
  cfg.sessions_per_upstream = 8;
  Harness h(cfg, 2);
  auto ids = start(h, 6);
  h.run_until(10);
  const uint32_t link = h.link_of_pool(0);
  // Same room (5 bytes: 1 prefix byte + 4): every session stays, moved in place.
  h.pools[0]->set_extranonce(link, 5);
  h.deliver();
  auto moved = h.seen(Command::Kind::kSetExtranonce);
  REQUIRE(moved.size() == ids.size());
  for (const Event& e : moved) CHECK(e.c.binding.link_id == link);
  check_all_placed(h, 0);
  // Shrunk to the miners' minimum: no prefix byte left, one session per
  // connection: one stays, the others get connections of their own.
  h.pools[0]->extranonce2_size = 4;
  h.pools[0]->set_extranonce(link, 4);
  h.deliver();
  h.run_until(11);
  check_all_placed(h, 0);
  std::set<uint32_t> links;
  for (const auto& [sid, b] : h.placements()) links.insert(b.link_id);
  CHECK(links.size() == ids.size());
  CHECK(links.count(link) == 1);
  CHECK(h.seen(Command::Kind::kReconnect).empty());
  CHECK(h.seen(Command::Kind::kCloseSession).empty());
}

TEST_CASE("routing: a pool's client.reconnect is followed after its wait; a redirect that fails goes back (bounded)") {
  Harness h(two_pools(), 2);
  auto ids = start(h, 3);
  h.run_until(10);
  h.pools[0]->reconnect(h.link_of_pool(0), 0, 5);
  h.deliver();
  auto followed = h.logs("pool_reconnect_followed");
  REQUIRE(followed.size() == 1);
  CHECK(followed[0].t == 10);
  CHECK_FALSE(followed[0].c.log.find("counted_as_failure")->b);
  check_all_placed(h, 1);  // onto the standby meanwhile
  h.run_until(16);
  CHECK(h.connect_times(0) == std::vector<double>{0, 15});  // after the pool's wait, not before
  CHECK(h.router->breaker(0).state() == CircuitBreaker::State::kClosed);
  // Now to another port, at once; that port refuses: back to the configured one.
  h.pools[0]->refuse_port = 4444;
  h.pools[0]->reconnect(h.link_of_pool(0), 4444, 0);
  h.deliver();
  h.run_until(17);
  std::vector<std::pair<double, uint16_t>> tries;
  for (const Event& e : h.seen(Command::Kind::kConnectLink))
    if (e.c.pool == 0) tries.emplace_back(e.t, e.c.endpoint->port);
  REQUIRE(tries.size() == 4);
  CHECK(tries[2] == std::pair<double, uint16_t>{16, 4444});
  CHECK(tries[3] == std::pair<double, uint16_t>{16.5, 3333});
  REQUIRE(h.logs("pool_redirect_ended").size() == 1);
  CHECK(h.logs("pool_redirect_ended")[0].t == 16);
}

TEST_CASE("routing: a reconnect to another host is refused unless allowed") {
  Harness h(two_pools(), 2);
  start(h, 1);
  h.run_until(10);
  write_reconnect(h.pools[0]->conns.at(h.link_of_pool(0)).out, "elsewhere.example", 3333, 0);
  h.deliver();
  CHECK(h.logs("pool_reconnect_refused").size() == 1);
  CHECK(h.logs("pool_reconnect_followed").empty());
}

}  // namespace hashgate::routing::testing

namespace hashgate::routing::testing {

TEST_CASE("routing: passthrough: a connection per miner under its own name, closed with it; a lost pool closes its miners") {
  RouterConfig cfg = two_pools();
  cfg.strategy = Strategy::kPassthrough;
  Harness h(std::move(cfg), 2);
  h.run_until(1);
  CHECK(h.connect_times(0).empty());  // no standing connections
  CHECK(h.connect_times(1).empty());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(h.add_miner(false));
  h.run_until(1);  // the connections open from the router's timer, in the same instant
  CHECK(h.connect_times(0) == std::vector<double>{1, 1, 1});
  CHECK(h.pools[0]->users == std::vector<std::string>{"w1", "w2", "w3"});
  const auto answers = h.seen(Command::Kind::kAuthorizeResult);
  REQUIRE(answers.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(answers[i].c.session == ids[i]);
    CHECK(answers[i].c.ok);
    CHECK(answers[i].c.text == "w" + std::to_string(ids[i]));
  }
  // Each miner gets its connection's whole space: the pool's extranonce1, all of its extranonce2.
  const auto binds = h.seen(Command::Kind::kBind);
  REQUIRE(binds.size() == 3);
  std::set<uint32_t> links;
  for (const Event& e : binds) {
    links.insert(e.c.binding.link_id);
    CHECK(e.c.binding.extranonce1 == h.pools[0]->conns.at(e.c.binding.link_id).extranonce1);
    CHECK(e.c.binding.extranonce2_size == 8);
  }
  CHECK(links.size() == 3);
  // A miner that leaves takes its connection with it.
  h.run_until(2);
  const uint32_t first_link = h.placements().at(ids[0]).link_id;
  h.router->session_closed(ids[0]);
  h.apply();
  auto closed = h.seen(Command::Kind::kCloseLink);
  REQUIRE(closed.size() == 1);
  CHECK(closed[0].c.link == first_link);
  CHECK(closed[0].t == 2);
  // The pool dies: its miners are closed at once (a passthrough miner is moved by reconnecting).
  h.run_until(10);
  h.kill_pool(0);
  const auto gone = h.seen(Command::Kind::kCloseSession);
  REQUIRE(gone.size() == 2);
  CHECK(std::set<uint64_t>{gone[0].c.session, gone[1].c.session} == std::set<uint64_t>{ids[1], ids[2]});
  for (const Event& e : gone) {
    CHECK(e.t == 10);
    CHECK(e.c.text == "pool connection lost");
  }
  // Reconnecting, a miner gets its own connection to the standby.
  const uint64_t back = h.add_miner(false);
  h.run_until(10);
  CHECK(h.connect_times(1) == std::vector<double>{10});
  CHECK(h.router->link_pool(h.placements().at(back).link_id) == 1);
  CHECK(h.pools[1]->users == std::vector<std::string>{"w" + std::to_string(back)});
}

namespace {
// Refuses pool 0's jobs while `refuse` is set, the way job integrity refuses
// a job that pays someone else.
struct PoolVetting : JobVetting {
  bool refuse = false;
  int downs = 0;
  void pool_down(size_t) override { ++downs; }
  bool job(size_t pool, const NotifyParams&, const SubscribeResult&, uint32_t, double, std::string& why) override {
    if (!refuse || pool != 0) return true;
    why = "job integrity: its coinbase pays another address";
    return false;
  }
  bool set_extranonce(size_t, const SubscribeResult&, std::string&) override { return true; }
};
}  // namespace

TEST_CASE("routing: a pool whose job fails integrity: miners move in the same instant, no refused job reaches one, retried on the open breaker's schedule, failback once its jobs are good") {
  PoolVetting v;
  Harness h(two_pools(), 2, &v);
  auto ids = start(h, 4);
  const uint32_t standby = h.link_of_pool(1);
  h.run_until(10);
  const size_t jobs_before = h.seen(Command::Kind::kJob).size();
  v.refuse = true;
  h.pools[0]->notify_all(true, h.now);
  h.deliver();
  REQUIRE(h.logs("pool_failover").size() == 1);
  CHECK(h.logs("pool_failover")[0].t == 10);
  const auto moves = h.seen(Command::Kind::kSetExtranonce);
  REQUIRE(moves.size() == ids.size());
  for (const Event& e : moves) {
    CHECK(e.t == 10);
    CHECK(e.c.binding.link_id == standby);
  }
  check_all_placed(h, 1);
  CHECK(h.router->breaker(0).state() == CircuitBreaker::State::kOpen);  // at once, no quick retries
  CHECK(v.downs == 1);
  // Every reconnect's first job is refused too: the breaker backs off (1, 2, 4, ... s, capped at 60).
  h.run_until(200);
  CHECK(h.connect_times(0) == std::vector<double>{0, 11, 13, 17, 25, 41, 73, 133, 193});
  CHECK(v.downs == 9);
  size_t from_a = 0;
  const auto jobs = h.seen(Command::Kind::kJob);
  for (size_t i = jobs_before; i < jobs.size(); ++i) from_a += jobs[i].c.pool == 0;
  CHECK(from_a == 0);
  // Good jobs again: the next attempt (253) holds, and failback comes failback_after_seconds later.
  v.refuse = false;
  h.run_until(400);
  CHECK(h.connect_times(0).back() == 253);
  REQUIRE(h.logs("pool_failback").size() == 1);
  CHECK(h.logs("pool_failback")[0].t == 313);
  check_all_placed(h, 0);
}

}  // namespace hashgate::routing::testing

namespace hashgate::routing::testing {

TEST_CASE("routing: a session never gets a job older than the last one sent (its bind ran after newer jobs were booked)") {
  RouterConfig cfg = two_pools();
  cfg.job_interval_seconds = 0;  // every job fanned out at once
  Harness h(std::move(cfg), 2);
  auto ids = start(h, 1);
  DownstreamSession& s = *h.miners.at(ids[0]);
  const uint32_t link = s.binding().link_id;
  h.pools[0]->notify_all(false, h.now);
  h.deliver();
  const JobRef older = h.jobs().latest(link);
  h.pools[0]->notify_all(false, h.now);
  h.deliver();
  const JobRef newest = h.jobs().latest(link);
  REQUIRE(older->seq < newest->seq);
  std::vector<OutChunk> out;
  s.take_output(out);
  REQUIRE(!out.empty());  // both went out, in order
  out.clear();
  // The shell runs a fan-out of the older job after the session already has the newest.
  s.on_job(older, false);
  s.take_output(out);
  CHECK(out.empty());
  s.on_job(newest, false);  // nor the same one twice
  s.take_output(out);
  CHECK(out.empty());
  h.pools[0]->notify_all(false, h.now);  // the next job goes out as always
  h.deliver();
  s.take_output(out);
  CHECK(out.size() == 1);
}

}  // namespace hashgate::routing::testing
