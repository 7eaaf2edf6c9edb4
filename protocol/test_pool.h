// The built-in test pool (`test://` in the config): a pool server with no
// I/O. It issues jobs with realistic coinbase and merkle data, sets a low
// difficulty and checks every share the way a pool does (stale, duplicate,
// ntime, version bits, hash). Operators use it to check a rack's miners
// before pointing them at a real pool; tests pair it with UpstreamSession.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "hashing/target.h"
#include "protocol/line_framer.h"
#include "protocol/stratum_codec.h"

namespace hashgate {

struct TestPoolOptions {
  double difficulty = 1;
  double job_interval_seconds = 30;
  uint32_t extranonce1_size = 4;
  uint32_t extranonce2_size = 8;
  uint32_t version_mask = 0x1fffe000;
  uint32_t nbits = 0;  // 0: a default per algorithm that makes blocks rare
};

struct TestPoolStats {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t stale = 0;
  uint64_t duplicate = 0;
  uint64_t low_difficulty = 0;
  uint64_t blocks = 0;
  uint64_t jobs = 0;
  double accepted_difficulty = 0;
};

class TestPool {
 public:
  class Connection {
   public:
    ~Connection();
    void receive(std::string_view bytes, double now);
    std::string& output() { return out_; }

   private:
    friend class TestPool;
    explicit Connection(TestPool& pool, uint32_t extranonce1);
    void handle(const Incoming& m, double now);
    void on_submit(const Incoming& m);

    TestPool& pool_;
    LineFramer framer_;
    std::string out_;
    Bytes extranonce1_;
    bool subscribed_ = false;
    uint32_t version_mask_ = 0;
    std::vector<std::string> workers_;
  };

  TestPool(Algorithm algo, TestPoolOptions opts, uint64_t seed, double now);

  std::unique_ptr<Connection> connect();
  // Issues a new job when the interval has passed.
  void on_tick(double now);
  // Issues a new job now (clean: every older job becomes stale).
  void new_job(bool clean, double now);
  const TestPoolStats& stats() const { return stats_; }
  const TestPoolOptions& options() const { return opts_; }

 private:
  struct IssuedJob {
    std::string id;
    NotifyParams params;
  };

  void broadcast(const std::string& line);
  const IssuedJob* find_job(std::string_view id) const;

  Algorithm algo_;
  TestPoolOptions opts_;
  std::mt19937_64 rng_;
  StratumParser parser_;
  std::deque<IssuedJob> jobs_;  // newest last
  std::unordered_set<std::string> seen_;
  std::vector<Connection*> connections_;
  uint64_t next_job_ = 1;
  uint32_t next_extranonce1_ = 0x10000000;
  uint32_t height_ = 1000;
  double last_job_at_ = 0;
  TestPoolStats stats_;
  U256 target_;
};

}  // namespace hashgate
