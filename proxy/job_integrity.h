// The gateway's side of pool job integrity (issue 21): builds the rules
// from the config, feeds protocol/pool_integrity.h with every job and the
// node's tip (proxy/node_rpc.h), logs each event with its evidence, and
// fills /api/v1/pools and the metrics. The gateway only asks it two things:
// may this job (or set_extranonce) pass, and which pools to fail now.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "protocol/pool_integrity.h"
#include "proxy/node_rpc.h"
#include "proxy/snapshot.h"

namespace hashgate {

class JobIntegrity {
 public:
  // Throws conf::ConfigError (file:line: key) for an address it cannot decode.
  explicit JobIntegrity(const conf::Config& cfg);
  // What the constructor would throw: for main's config check and reloads.
  static void validate(const conf::Config& cfg);
  // Starts polling the node, if one is configured.
  void start();

  // A job from `pool`: false when it must not reach miners; `why` then says
  // why the pool is failed.
  bool job(size_t pool, const NotifyParams& n, const SubscribeResult& sub, uint32_t version_mask, double now,
           std::string& why);
  bool set_extranonce(size_t pool, const SubscribeResult& sub, std::string& why);
  void pool_down(size_t pool);
  // Once a second: the node's state, tip agreement. Returns the pools to
  // fail now (stale past integrity.stale_move_seconds), with the reason.
  std::vector<std::pair<size_t, std::string>> tick(double now);

  void fill(size_t pool, PoolSnapshot& p, double now) const;
  void fill(Snapshot& s) const;

 private:
  // Logs and drains the monitor's events; the reason of the last refusal
  // goes to `why`, the pools to fail to fail_ (a move can come due while a
  // job is judged too: tick() hands them out).
  void drain(std::string* why);
  std::vector<std::pair<size_t, std::string>> fail_;

  // The last job judged per pool: its other connections (and every
  // passthrough connection) get the same notify, judged once.
  struct Judged {
    std::string job_id;
    Hash256 prevhash{};
    Bytes coinb1, coinb2;
    uint32_t version = 0, nbits = 0, ntime = 0, mask = 0;
    size_t extranonce1_size = 0;
    uint32_t extranonce2_size = 0;
    bool ok = true;
    std::string why;
  };
  std::vector<std::optional<Judged>> judged_;

  bool enabled_;
  IntegrityMonitor monitor_;
  std::vector<std::string> names_;
  std::unique_ptr<NodePoller> node_;
  std::string node_url_;
  NodeState node_state_;
  bool node_logged_ = false;  // the first state was logged
};

}  // namespace hashgate
