#include "routing/placement.h"

#include "routing/router.h"

namespace hashgate::routing {

// Passthrough authorizes kept for a session while no pool connection is open.
constexpr size_t kMaxParkedAuthorizes = 64;

class AggregatePlacement final : public Placement {
 public:
  void assign(Router& r, uint64_t sid) override {
    Router::SessionRec& m = r.sessions_.at(sid);
    auto pool = r.serving_pool();
    // A miner that came through CONNECT to a pool's address goes to that pool
    // while it is usable (else it fails over like the others); the others are
    // placed by weight (which counts the placement in the pools' loads).
    if (m.preferred_pool && *m.preferred_pool < r.pools_.size() && r.pools_[*m.preferred_pool]->enabled &&
        r.pools_[*m.preferred_pool]->breaker.state() != CircuitBreaker::State::kOpen) {
      pool = *m.preferred_pool;
    } else if (pool) {
      pool = r.weighted_pick(*pool, m.s->difficulty());
    }
    if (pool) {
      if (Router::Link* l = r.ready_link(*pool, true)) return r.bind_session(l, m);
    }
    // No ready connection with room: take one that is subscribed but has no
    // job yet (the session gets the first one), or wait on one being set up,
    // or on a new one if the pool may be tried now.
    const size_t target_pool = pool.value_or(r.active_pool_);
    for (auto& [id, lp] : r.links_) {
      Router::Link* l = lp.get();
      if (l->dead || l->pool != target_pool || l->owner_session) continue;
      if (l->subscribed && !l->prefixes->full()) return r.bind_session(l, m);
      if (!l->subscribed && l->waiting.size() < r.cfg_.sessions_per_upstream) {
        m.link_id = l->id;
        l->waiting.push_back(sid);
        return;
      }
    }
    Router::PoolState& ps = *r.pools_[target_pool];
    if (ps.enabled && (pool || ps.breaker.allow_attempt(r.now_))) {
      ps.breaker.on_attempt(r.now_);
      Router::Link* l = r.open_link(target_pool, 0);
      m.link_id = l->id;
      l->waiting.push_back(sid);
      return;
    }
    r.orphans_.insert(sid);
  }
  bool keeps_standing_links() const override { return true; }
  bool authorize(Router&, uint64_t, const RpcId&, const AuthorizeParams&) override { return false; }
  const std::string& upstream_worker(const PoolConfig& pool, const std::string&) const override { return pool.user; }
  void credentials(const PoolConfig& pool, UpstreamOptions& o) const override {
    o.user = pool.user;
    o.password = pool.password;
  }
};

class PassthroughPlacement final : public Placement {
 public:
  void assign(Router& r, uint64_t sid) override {
    Router::SessionRec& m = r.sessions_.at(sid);
    r.serving_pool();  // keeps the serving pool's failover and failback current
    // Each miner has its own connection: the best pool that may be tried.
    for (size_t p : r.pool_order_) {
      Router::PoolState& ps = *r.pools_[p];
      if (!ps.enabled || !ps.breaker.allow_attempt(r.now_)) continue;
      ps.breaker.on_attempt(r.now_);
      Router::Link* l = r.open_link(p, sid);
      m.link_id = l->id;
      l->waiting.push_back(sid);
      // Authorizes that waited for a pool (or whose connection was lost
      // before it subscribed) go to this connection.
      if (auto pa = r.parked_auth_.find(sid); pa != r.parked_auth_.end()) {
        l->pending_auth = std::move(pa->second);
        r.parked_auth_.erase(pa);
      }
      return;
    }
    r.orphans_.insert(sid);
  }
  bool keeps_standing_links() const override { return false; }
  bool authorize(Router& r, uint64_t sid, const RpcId& id, const AuthorizeParams& auth) override {
    // The pool decides, under the miner's own name.
    Router::SessionRec& m = r.sessions_.at(sid);
    Router::Link* l = r.find_link(m.link_id);
    if (!l) {
      // Authorize before subscribe: wait for the connection that subscribe opens.
      r.assign_upstream(m);
      l = r.find_link(m.link_id);
      if (!l) {
        // No pool may be tried now: the authorize waits with the miner for
        // the connection it gets when one can (hashgate's outage, not a refusal).
        auto& parked = r.parked_auth_[sid];
        if (parked.size() >= kMaxParkedAuthorizes) {
          Command c{.kind = Command::Kind::kAuthorizeResult, .session = sid, .text = auth.user, .rpc_id = id};
          c.error.message = "too many authorizes";
          r.emit(std::move(c));
          return true;
        }
        parked.emplace_back(id, auth);
        return true;
      }
    }
    if (l->subscribed) {
      l->auth_ids.push_back(id);
      l->session->authorize(auth.user, auth.password);
      r.flush(l);
    } else {
      l->pending_auth.emplace_back(id, auth);
    }
    return true;
  }
  const std::string& upstream_worker(const PoolConfig&, const std::string& worker) const override { return worker; }
  void credentials(const PoolConfig&, UpstreamOptions&) const override {}
};

std::unique_ptr<Placement> make_placement(Strategy s) {
  if (s == Strategy::kPassthrough) return std::make_unique<PassthroughPlacement>();
  return std::make_unique<AggregatePlacement>();
}

}  // namespace hashgate::routing
