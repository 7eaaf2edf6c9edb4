#include "proxy/firmware_tracker.h"

#include "proxy/log.h"

namespace hashgate {
namespace {
// Worker names remembered per list: a peer inventing names cannot grow them past this.
constexpr size_t kMaxRemembered = 100000;
}  // namespace

FirmwareTracker::FirmwareTracker(const conf::Config& cfg) : selector_(cfg) {
  sessions_.assign(selector_.book().all().size(), 0);
}

void FirmwareTracker::apply(DownstreamSession& s, size_t listener, const Address& addr) {
  const FirmwareProfile* p = selector_.select(listener, addr, s.agent());
  for (const std::string& w : s.workers())
    if (ignores_set_extranonce_.count(w)) p = selector_.safe_variant(p);
  const FirmwareProfile* had = s.profile();
  if (had == p) return;
  if (had) --sessions_[selector_.index(had)];
  ++sessions_[selector_.index(p)];
  s.set_profile(p);
}

void FirmwareTracker::left(const DownstreamSession& s) {
  if (const FirmwareProfile* p = s.profile()) --sessions_[selector_.index(p)];
}

bool FirmwareTracker::can_move_in_place(const DownstreamSession& s) const {
  const FirmwareProfile* p = s.profile();
  if (!p || p->move_by(s.extranonce_subscribed()) != MoveBy::kSetExtranonce) return false;
  // A worker caught ignoring set_extranonce on an earlier session (its
  // session's profile may have been chosen before the worker was known).
  for (const std::string& w : s.workers())
    if (ignores_set_extranonce_.count(w)) return false;
  return true;
}

bool FirmwareTracker::ignores_reconnect(const DownstreamSession& s) const {
  for (const std::string& w : s.workers())
    if (ignores_reconnect_.count(w)) return true;
  return false;
}

bool FirmwareTracker::remember(std::unordered_set<std::string>& set, const DownstreamSession& s) {
  bool first = false;
  for (const std::string& w : s.workers())
    if (set.size() < kMaxRemembered) first |= set.insert(w).second;
  return first;
}

void FirmwareTracker::caught_ignoring_set_extranonce(const DownstreamSession& s, const std::string& peer) {
  if (remember(ignores_set_extranonce_, s)) violation(s, peer, "set_extranonce");
}

void FirmwareTracker::caught_ignoring_reconnect(const DownstreamSession& s, const std::string& peer) {
  if (remember(ignores_reconnect_, s)) violation(s, peer, "reconnect");
}

void FirmwareTracker::violation(const DownstreamSession& s, const std::string& peer, const char* rule) {
  const FirmwareProfile* p = s.profile();
  const std::string name = p ? p->name : "-";
  ++violations_[{name, rule}];
  log::warn("miner_contradicts_profile")
      .kv("session", s.id())
      .kv("peer", peer)
      .kv("worker", s.workers().empty() ? std::string("-") : s.workers().front())
      .kv("agent", s.agent())
      .kv("profile", name)
      .kv("rule", rule);
}

void FirmwareTracker::fill(Snapshot& snap) const {
  for (const FirmwareProfile& fp : selector_.book().all()) snap.profile_names.push_back(fp.name);
  snap.profile_sessions = sessions_;
  snap.profile_violations = violations_;
}

}  // namespace hashgate
