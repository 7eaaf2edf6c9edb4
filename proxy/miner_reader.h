// A miner's Stratum traffic inward: TLS records to plain text, the
// per-session message rate (a token bucket), the bytes into its session, the
// session's events handed on, its answers flushed; and the once-a-second
// sweep of every connection's clocks (subscribe, authorize, idle, a
// client.reconnect not followed). What an event means beyond the connection
// (a pool slice, an authorize, a share to hash, a refused share's counters)
// goes out through Hooks; abuse is punished and connections closed through
// their MinerHost.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/miner_conn.h"

namespace hashgate {

class MinerReader {
 public:
  struct Hooks {
    std::function<void(Miner*)> need_upstream;  // its subscribe (or configure) waits for a pool slice
    std::function<void(Miner*, const RpcId&, const AuthorizeParams&)> authorize;
    std::function<void(Miner*, ShareWork&)> share;             // passed the session's checks: to be hashed
    std::function<void(Miner*, const SessionEvent&)> rejected;  // refused by its session (counted there)
  };
  // `limits` is the live config's (messages_per_second and the timeouts).
  MinerReader(const conf::Limits& limits, MinerWriter& writer, Hooks hooks);
  MinerReader(const MinerReader&) = delete;
  MinerReader& operator=(const MinerReader&) = delete;

  // TLS records from the socket (m->tls is set).
  void cipher(Miner* m, std::string_view bytes, double now);
  // Plain Stratum bytes.
  void read(Miner* m, std::string_view bytes, double now);
  // Hands on the session's events (after read(), or after the gateway fed
  // the session itself: a bind).
  void drain_events(Miner* m);

  // Miners the sweep found overstaying, each with why.
  struct Due {
    std::vector<Miner*> overdue;                        // told to reconnect and still here
    std::vector<std::pair<Miner*, std::string>> slow;   // no subscribe or authorize in time
    std::vector<std::pair<Miner*, std::string>> idle;   // no whole message for too long
  };
  // Each second: every session's timers (vardiff's new difficulty flushed),
  // and which miners overstayed. `owes_answer(m)`: hashgate owes it an answer
  // it cannot give yet (no usable pool), so its clock restarts.
  void sweep(const std::unordered_map<uint64_t, Miner*>& miners, double now,
             const std::function<bool(const Miner*)>& owes_answer, Due& due);

 private:
  const conf::Limits& limits_;
  MinerWriter& writer_;
  Hooks hooks_;
  uint64_t submits_seen_ = 0;  // shares passed to hashing while one read is handled
  std::vector<Miner*> retargeted_;  // sweep(): reused
};

}  // namespace hashgate
