// What hashgate knows of each miner's firmware: the profile each session
// gets (proxy/profiles.h chooses it), sessions counted per profile, and what
// workers were caught doing against their profile (ignoring
// mining.set_extranonce, not following client.reconnect), remembered by
// worker name so that their next sessions are moved the safe way at once.
// Loop only; no sockets: sessions and peers' names come in as arguments.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "protocol/downstream_session.h"
#include "proxy/profiles.h"
#include "proxy/snapshot.h"

namespace hashgate {

class FirmwareTracker {
 public:
  // Throws conf::ConfigError for a config whose profiles do not resolve (at start).
  explicit FirmwareTracker(const conf::Config& cfg);

  const ProfileBook& book() const { return selector_.book(); }
  size_t index(const FirmwareProfile* p) const { return selector_.index(p); }

  // Gives the session its profile (listener, address range, user agent; the
  // safe variant once one of its workers contradicted set_extranonce),
  // counted per profile. `listener`: its index in the config, SIZE_MAX for none.
  void apply(DownstreamSession& s, size_t listener, const Address& addr);
  // A closed session leaves its profile's count.
  void left(const DownstreamSession& s);

  // Moved by mining.set_extranonce: subscribed to it, and not known to ignore it.
  bool can_move_in_place(const DownstreamSession& s) const;
  // One of its workers did not follow a client.reconnect before: moved by a close.
  bool ignores_reconnect(const DownstreamSession& s) const;

  // The session's workers took set_extranonce and went on hashing the old
  // space, or did not follow client.reconnect: remembered (bounded), and a
  // violation logged and counted when a worker is new to the list.
  void caught_ignoring_set_extranonce(const DownstreamSession& s, const std::string& peer);
  void caught_ignoring_reconnect(const DownstreamSession& s, const std::string& peer);

  // Profile names, sessions per profile, violations per (profile, rule).
  void fill(Snapshot& snap) const;

 private:
  // Logged once per worker and rule, counted; `rule` names what it contradicted.
  void violation(const DownstreamSession& s, const std::string& peer, const char* rule);
  bool remember(std::unordered_set<std::string>& set, const DownstreamSession& s);

  ProfileSelector selector_;
  std::vector<uint64_t> sessions_;  // by ProfileBook index
  std::map<std::pair<std::string, std::string>, uint64_t> violations_;  // (profile, rule)
  std::unordered_set<std::string> ignores_set_extranonce_;  // worker names
  std::unordered_set<std::string> ignores_reconnect_;       // worker names: moved by a close
};

}  // namespace hashgate
