// The gateway's state as one immutable Snapshot, published once a second
// (and after commands, reloads and stop steps) for the admin threads: pools
// with the routing core's view of them, edge, firmware, accounting, boards
// and economics.
#include "proxy/clock.h"
#include "proxy/gateway.h"

namespace hashgate {

void Gateway::publish_snapshot() {
  auto s = std::make_shared<Snapshot>();
  const double t = now();
  s->version = HASHGATE_VERSION;
  s->algorithm = algorithm_name(algo_);
  s->hashing_path = hash_path_name(shares_.path());
  s->started_unix = started_unix_;
  s->published_unix = unix_now();
  s->published_mono = mono_now();
  s->listeners_up = life_.serving();
  s->draining = life_.draining();
  s->connections_current = miners_.size();
  edge_.fill(*s, t, s->published_unix - t);
  s->submit_rtt = submit_rtt_;
  s->job_fanout = fanout_.times();
  s->share_validation = shares_.validation_times();
  s->reloads_ok = reloads_ok_;
  s->reloads_failed = reloads_failed_;
  s->last_reload_error = last_reload_error_;
  s->max_worker_labels = cfg_.admin.max_worker_labels;
  const double hpd = hashes_per_difficulty(algo_);
  bool any_ready = false;
  std::vector<FarmEconomics::PoolInput> econ_pools;
  const routing::Router& router = upstream_->router();
  const auto links = router.links();
  for (size_t i = 0; i < router.pool_count(); ++i) {
    const UpstreamLinks::PoolCounters& ps = upstream_->counters(i);
    const conf::Pool& pc = cfg_.pools[i];
    PoolSnapshot p;
    p.name = pc.name;
    p.url = pc.url;
    p.priority = pc.priority;
    p.weight = pc.weight;
    p.enabled = router.pool_enabled(i);
    p.breaker = router.breaker(i).state_name();
    const bool ready = router.pool_ready(i);
    const bool active = i == router.active_pool();
    any_ready = any_ready || ready;
    p.state = !p.enabled ? "disabled" : !ready ? "down" : active ? "active" : "standby";
    JobRef newest;  // the pool's current job, for the economics
    for (const auto& l : links)
      if (l.pool == i) {
        ++p.connections;
        p.sessions += l.sessions;
        if (JobRef j = jobs_.latest(l.id); j && (!newest || j->seq > newest->seq)) newest = j;
      }
    if (economics_) econ_pools.push_back({pc.name, newest, active});
    p.accepted = ps.accepted;
    p.rejected = ps.rejected;
    p.accepted_difficulty = ps.accepted_difficulty;
    p.hashgate_accepted_difficulty = ps.hashgate_accepted_difficulty;
    p.jobs_coalesced = router.jobs_coalesced(i);
    p.hashrate = ps.rate.per_second(t) * hpd;
    p.accepted_hashrate = ps.accepted_rate.per_second(t) * hpd;
    integrity_->fill(i, p, t);
    s->sessions_by_pool[p.name] = p.sessions;
    s->pools.push_back(std::move(p));
  }
  integrity_->fill(*s);
  s->ready = s->listeners_up && any_ready;  // serving: listeners up, not draining
  s->not_ready_reason = life_.not_ready_reason() ? life_.not_ready_reason() : !any_ready ? "no usable pool" : "";
  firmware_.fill(*s);
  s->hashes_per_difficulty = hpd;
  accounts_.fill(*s, t);
  s->published_loop = t;
  // Ten-second points over the last hour, for the dashboard's chart.
  if (hashrate_history_.empty() || s->published_unix - hashrate_history_.back().first >= 10) {
    hashrate_history_.emplace_back(s->published_unix, s->hashrate);
    if (hashrate_history_.size() > 360) hashrate_history_.erase(hashrate_history_.begin());
  }
  s->hashrate_history = hashrate_history_;
  if (boards_) s->boards = boards_->snapshot();
  if (economics_) {
    auto r = economics_->update(t, s->published_unix, econ_pools, s->boards);
    s->economics = std::move(r.snapshot);
    for (const auto& [board, paused] : r.pause)
      if (boards_) boards_->set_paused(board, paused);
  }
  snapshots_.store(std::move(s));
}

}  // namespace hashgate
