// Sessions connected straight to each other, with no sockets and no clock,
// for unit tests: the built-in test pool <-> UpstreamSession, its jobs in the
// book a DownstreamSession reads, as the gateway wires them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hashing/header.h"
#include "hashing/sha256.h"
#include "protocol/downstream_session.h"
#include "protocol/test_pool.h"
#include "protocol/upstream_session.h"

namespace hashgate::testing {

struct Pair {
  StratumParser up_parser{65536};
  StratumParser down_parser{16384};
  TestPool pool;
  std::unique_ptr<TestPool::Connection> conn;
  UpstreamSession up;
  JobBook jobs{Algorithm::kSha256d};
  SessionContext ctx;
  std::vector<UpstreamEvent> up_events;

  explicit Pair(double pool_diff, uint64_t seed = 42, VardiffConfig vardiff = {1e-6, 1e-6, 1, 10})
      : pool(Algorithm::kSha256d, TestPoolOptions{pool_diff, 30, 4, 8, 0x1fffe000, 0}, seed, 0),
        conn(pool.connect()),
        up(up_parser, UpstreamOptions{"t", "gw", "x", 0x1fffe000, true, "", 65536}) {
    ctx.parser = &down_parser;
    ctx.jobs = &jobs;
    ctx.algorithm = Algorithm::kSha256d;
    ctx.vardiff = vardiff;
    up.start();
    pump();
  }

  // Moves bytes both ways until neither side has anything to say.
  void pump() {
    for (int i = 0; i < 10; ++i) {
      if (up.output().empty() && conn->output().empty()) return;
      std::string a;
      a.swap(up.output());
      if (!a.empty()) conn->receive(a, 0);
      std::string b;
      b.swap(conn->output());
      if (!b.empty()) up.receive(b, 0);
      UpstreamEvent ev;
      while (up.next_event(ev)) {
        if (ev.kind == UpstreamEventKind::kJob)
          jobs.add(1, ev.notify, up.subscription().extranonce1, up.subscription().extranonce2_size, up.difficulty());
        up_events.push_back(ev);
      }
    }
  }

  std::string take(DownstreamSession& s) {
    std::vector<OutChunk> chunks;
    s.take_output(chunks);
    std::string all;
    for (auto& c : chunks) all += c.view();
    return all;
  }
};

// Finds a nonce for `s`'s current job whose sha256d meets (or misses) `diff`.
inline std::string find_submit(const Job& job, const Binding& b, double diff, bool valid, int id,
                               const std::string& en2, const std::string& worker = "w") {
  U256 target = target_from_difficulty(Algorithm::kSha256d, diff);
  Bytes e2 = *hex_decode(en2);
  Hash256 cb = coinbase_hash(job.params.coinb1, b.extranonce1, e2, job.params.coinb2);
  Hash256 root = merkle_root(cb, job.params.merkle_branch);
  for (uint32_t nonce = 0;; ++nonce) {
    Header h = build_header(job.params.version, job.params.prevhash, root, job.params.ntime, job.params.nbits, nonce);
    if (meets(sha256d(h), target) == valid) {
      return "{\"id\":" + std::to_string(id) + ",\"method\":\"mining.submit\",\"params\":[\"" + worker + "\",\"" + job.id + "\",\"" +
             en2 + "\",\"" + hex_u32_string(job.params.ntime) + "\",\"" + hex_u32_string(nonce) + "\"]}\n";
    }
  }
}

}  // namespace hashgate::testing
