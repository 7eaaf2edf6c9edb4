// The pools' policy: which pool serves, failback, weights, the connections
// kept to each pool, health verdicts on connections, reloads.
#include <algorithm>
#include <bit>
#include <limits>

#include "routing/router.h"

namespace hashgate::routing {

std::optional<size_t> Router::serving_pool() {
  if (pools_.empty()) return std::nullopt;
  // Stay on the active pool while it works; fail back to a better one only
  // once it has been healthy for failback_after_seconds.
  const bool active_ok = ready_link(active_pool_, false) != nullptr;
  for (size_t p : pool_order_) {
    // Only strictly better pools: equal priorities share by weight instead.
    if (pools_[p]->cfg.priority >= pools_[active_pool_]->cfg.priority) break;
    const CircuitBreaker& b = pools_[p]->breaker;
    const bool healthy_long = b.state() == CircuitBreaker::State::kClosed && b.healthy_since() >= 0 &&
                              now_ - b.healthy_since() >= cfg_.failback_after_seconds;
    if (ready_link(p, false) && (!active_ok || healthy_long)) {
      log(LogLevel::kWarn, active_ok ? "pool_failback" : "pool_failover")
          .kv("from", pools_[active_pool_]->cfg.name)
          .kv("to", pools_[p]->cfg.name);
      const size_t old = active_pool_;
      active_pool_ = p;
      ++pools_[old]->failovers;
      emit({.kind = Command::Kind::kPoolFailover, .pool = old});
      // Miners still on the old pool move now (failback) or already have.
      std::vector<SessionRec*> movers;
      for (auto& [id, l] : links_)
        if (l->pool == old)
          for (uint64_t sid : l->sessions)
            if (SessionRec* m = rec(sid)) movers.push_back(m);
      for (SessionRec* m : movers) {
        unbind_session(*m);
        move_session(*m);
      }
      return p;
    }
  }
  if (active_ok) return active_pool_;
  for (size_t p : pool_order_) {
    if (p != active_pool_ && ready_link(p, false)) {
      log(LogLevel::kWarn, "pool_failover").kv("from", pools_[active_pool_]->cfg.name).kv("to", pools_[p]->cfg.name);
      ++pools_[active_pool_]->failovers;
      emit({.kind = Command::Kind::kPoolFailover, .pool = active_pool_});
      active_pool_ = p;
      return p;
    }
  }
  return std::nullopt;
}

void Router::count_pool_loads() {
  pool_loads_.assign(pools_.size(), 0);
  for (const auto& [id, l] : links_)
    for (uint64_t sid : l->sessions)
      if (auto it = sessions_.find(sid); it != sessions_.end()) pool_loads_[l->pool] += it->second.s->difficulty();
  pool_loads_at_ = now_;
}

size_t Router::weighted_pick(size_t serving, double difficulty) {
  const int prio = pools_[serving]->cfg.priority;
  pick_candidates_.clear();
  for (size_t p : pool_order_)
    if (p != serving && pools_[p]->cfg.priority == prio && ready_link(p, true)) pick_candidates_.push_back(p);
  if (pick_candidates_.empty()) return serving;  // no pool to share the tier with
  // The load (session difficulty per pool) is counted over every session at
  // most once a second; placements in between add to it. Counting it per
  // placement made connecting N miners cost O(N^2) (18 % of hashgate's CPU
  // while 19,000 miners connected).
  if (pool_loads_.size() != pools_.size() || now_ - pool_loads_at_ >= 1.0) count_pool_loads();
  size_t best = serving;
  double best_score = pool_loads_[serving] / pools_[serving]->cfg.weight;
  for (size_t p : pick_candidates_) {
    const double score = pool_loads_[p] / pools_[p]->cfg.weight;
    if (score < best_score) {
      best = p;
      best_score = score;
    }
  }
  pool_loads_[best] += difficulty;
  return best;
}

void Router::rebalance_weights() {
  // Corrects what session difficulties mispredict: compares accepted
  // difficulty since the last look with the weights and moves one miner that
  // can move in place from the most over-served pool to the most under-served.
  auto serving = serving_pool();
  if (!serving) return;
  const int prio = pools_[*serving]->cfg.priority;
  std::vector<size_t> tier;
  double total = 0, weights = 0;
  for (size_t p : pool_order_) {
    if (pools_[p]->cfg.priority != prio || !ready_link(p, false)) continue;
    tier.push_back(p);
    total += pools_[p]->window_accepted;
    weights += pools_[p]->cfg.weight;
  }
  if (tier.size() < 2 || total <= 0) return;
  size_t over = tier[0], under = tier[0];
  double most = -1e9, least = 1e9;
  for (size_t p : tier) {
    const double excess = pools_[p]->window_accepted / total - pools_[p]->cfg.weight / weights;
    if (excess > most) most = excess, over = p;
    if (excess < least) least = excess, under = p;
  }
  if (most < 0.03 || !ready_link(under, true)) return;
  for (auto& [id, l] : links_) {
    if (l->pool != over) continue;
    for (uint64_t sid : l->sessions) {
      SessionRec* m = rec(sid);
      if (!m || !can_move_in_place(*m)) continue;
      Link* to = ready_link(under, true);
      auto prefix = to->prefixes->allocate();
      unbind_session(*m);
      place_session(to, *m, *prefix, true);
      log(LogLevel::kInfo, "miner_rebalanced").kv("session", sid).kv("from", pools_[over]->cfg.name)
          .kv("to", pools_[under]->cfg.name);
      return;
    }
  }
}

void Router::maintain_links() {
  if (stopping_ || !placement_->keeps_standing_links() || pools_.empty()) return;
  // Wanted: the active pool, every better pool (to fail back to), and the
  // next one after the active pool (warm standby).
  std::vector<size_t> wanted;
  const int active_prio = pools_[active_pool_]->cfg.priority;
  bool standby_taken = !cfg_.warm_standby;
  for (size_t p : pool_order_) {
    if (!pools_[p]->enabled) continue;
    const int prio = pools_[p]->cfg.priority;
    if (prio <= active_prio) {
      wanted.push_back(p);  // the active pool's tier and every better pool
    } else if (!standby_taken) {
      wanted.push_back(p);  // warm standby: the next one after
      standby_taken = true;
    }
  }
  for (size_t p : wanted) {
    bool have = false;
    for (auto& [id, l] : links_) have = have || (l->pool == p && !l->dead && !l->owner_session);
    PoolState& ps = *pools_[p];
    if (!have && ps.breaker.allow_attempt(now_)) {
      ps.breaker.on_attempt(now_);
      open_link(p, 0);
    }
  }
}

void Router::check_link_timeouts() {
  const double t = now_;
  std::vector<Link*> drained;
  for (auto& [id, l] : links_)
    if (l->retire_at > 0 && t >= l->retire_at && l->sessions.empty() && l->session->pending_submits() == 0)
      drained.push_back(l.get());
  for (Link* l : drained) {
    log(LogLevel::kInfo, "pool_connection_closed").kv("pool", pools_[l->pool]->cfg.name).kv("link", uint64_t(l->id))
        .kv("reason", "drained after a planned move");
    dispose_link(l);
  }
  std::vector<std::pair<Link*, std::string>> failed;
  for (auto& [id, l] : links_) {
    if (l->dead) continue;
    if (!l->has_job && t - l->opened_at >= cfg_.connect_timeout_seconds) {
      failed.emplace_back(l.get(), "no work within " + std::to_string(int(cfg_.connect_timeout_seconds)) +
                                       " s of connecting");
    } else if (l->has_job && t - l->last_job_at >= cfg_.job_timeout_seconds) {
      failed.emplace_back(l.get(), "no job for " + std::to_string(int(cfg_.job_timeout_seconds)) + " s");
    } else if (double sent = l->session->oldest_pending(t); sent > 0 && t - sent >= cfg_.submit_timeout_seconds) {
      failed.emplace_back(l.get(), "a share unanswered for " + std::to_string(t - sent).substr(0, 4) + " s");
    }
  }
  for (auto& [l, why] : failed) link_lost(l, why);
}

double Router::next_timeout() const {
  double next = std::numeric_limits<double>::infinity();
  auto later = [&](double t) {
    if (t > now_) next = std::min(next, t);
  };
  for (const auto& [id, lp] : links_) {
    const Link* l = lp.get();
    if (l->dead) continue;
    if (l->connect_at >= 0) next = std::min(next, std::max(now_, l->connect_at));  // due now, or then
    if (l->throttle.due_at() > 0) next = std::min(next, std::max(now_, l->throttle.due_at()));  // a held job
    if (l->retire_at > 0) later(l->retire_at);
    if (!l->has_job) {
      later(l->opened_at + cfg_.connect_timeout_seconds);
    } else {
      later(l->last_job_at + cfg_.job_timeout_seconds);
    }
    if (double sent = l->session->oldest_pending(now_); sent > 0) later(sent + cfg_.submit_timeout_seconds);
  }
  // A breaker's retry (closed after a blip, or open): maintain_links may open a connection then.
  for (const auto& ps : pools_)
    if (ps->enabled) later(ps->breaker.retry_at());
  return next;
}

void Router::on_timeout(double now) {
  enter(now);
  // Connections whose start was due: their transport opens now.
  for (auto& [id, lp] : links_) {
    Link* l = lp.get();
    if (l->dead || l->connect_at < 0 || l->connect_at > now_) continue;
    l->connect_at = -1;
    PoolState& ps = *pools_[l->pool];
    l->redirected = !(ps.endpoint == ps.cfg.endpoint);
    log(LogLevel::kInfo, "pool_connecting").kv("pool", ps.cfg.name).kv("link", uint64_t(l->id)).kv("url", ps.cfg.url)
        .kv("endpoint", ps.cfg.builtin ? std::string("test") : ps.endpoint.to_string());
    emit({.kind = Command::Kind::kConnectLink, .link = l->id, .pool = l->pool, .endpoint = ps.endpoint});
  }
  release_held_jobs();
  if (stopping_) return;
  check_link_timeouts();
  maintain_links();  // attempts start when the breaker's retry time comes
}

void Router::on_tick(double now) {
  enter(now);
  if (stopping_) return;
  serving_pool();  // fails back when a better pool has been healthy long enough
  if (++ticks_ % 10 == 0) {
    rebalance_weights();
    for (auto& ps : pools_) ps->window_accepted = 0;
  }
  retry_orphans();
}

bool Router::note_pool_answer(Link* l, bool accepted) {
  constexpr unsigned kWindow = 50, kMinAnswers = 20;
  l->reject_bits = ((l->reject_bits << 1) | (accepted ? 0 : 1)) & ((uint64_t(1) << kWindow) - 1);
  ++l->answers;
  const uint64_t n = std::min<uint64_t>(l->answers, kWindow);
  const unsigned rejected = unsigned(std::popcount(l->reject_bits));
  if (n < kMinAnswers || double(rejected) <= cfg_.max_reject_ratio * double(n)) return false;
  link_lost(l, "the pool rejected " + std::to_string(rejected) + " of the last " + std::to_string(n) +
                   " shares (limit failover.max_reject_ratio)",
            Loss::kUnusable);
  return true;
}

void Router::end_redirect(PoolState& ps, const std::string& why) {
  if (ps.endpoint == ps.cfg.endpoint) return;
  log(LogLevel::kWarn, "pool_redirect_ended")
      .kv("pool", ps.cfg.name)
      .kv("endpoint", ps.endpoint.to_string())
      .kv("back_to", ps.cfg.endpoint.to_string())
      .kv("reason", why);
  ps.endpoint = ps.cfg.endpoint;
}

void Router::set_pool_enabled(size_t pool, bool enabled, double now) {
  enter(now);
  PoolState& ps = *pools_[pool];
  if (ps.enabled == enabled || stopping_) return;
  ps.enabled = enabled;
  log(LogLevel::kWarn, enabled ? "pool_enabled" : "pool_disabled").kv("pool", ps.cfg.name).kv("by", "admin api");
  if (!enabled) vacate_pool(pool, "disabled", true);
  if (enabled)
    for (auto& [id, l] : links_)
      if (l->pool == pool) l->retire_at = 0;  // still draining: kept
  serving_pool();
  maintain_links();
}

void Router::vacate_pool(size_t pool, const char* why, bool drain) {
  std::vector<Link*> ls;
  for (auto& [id, l] : links_)
    if (l->pool == pool) ls.push_back(l.get());
  std::vector<uint64_t> bound, passthrough_bound, waiting;
  if (drain) {
    // A planned move: the pool still works, so its connections stay until
    // the miners have moved, answering and forwarding the shares of the
    // jobs they leave (retired in check_link_timeouts).
    const double until = now_ + cfg_.reconnect_spread_seconds + cfg_.reconnect_grace_seconds + 2;
    std::vector<SessionRec*> movers;
    for (Link* l : ls) {
      if (l->owner_session) continue;  // passthrough: the miner's own connection, closed below
      for (uint64_t sid : l->sessions)
        if (SessionRec* m = rec(sid)) movers.push_back(m);
      bound.insert(bound.end(), l->movers.begin(), l->movers.end());
      l->movers.clear();
      l->retire_at = until;
    }
    ls.erase(std::remove_if(ls.begin(), ls.end(), [](Link* l) { return !l->owner_session; }), ls.end());
    if (active_pool_ == pool) serving_pool();
    maintain_links();
    for (SessionRec* m : movers) {
      unbind_session(*m);
      move_session(*m);
    }
  }
  for (Link* l : ls) {
    auto& into = l->owner_session ? passthrough_bound : bound;
    into.insert(into.end(), l->sessions.begin(), l->sessions.end());
    bound.insert(bound.end(), l->movers.begin(), l->movers.end());
    waiting.insert(waiting.end(), l->waiting.begin(), l->waiting.end());
    l->waiting.clear();
    log(LogLevel::kInfo, "pool_connection_closed").kv("pool", pools_[pool]->cfg.name).kv("link", uint64_t(l->id))
        .kv("reason", why);
    dispose_link(l);
  }
  if (active_pool_ == pool) serving_pool();
  maintain_links();
  rehome(bound, false);
  rehome(passthrough_bound, true);
  for (uint64_t sid : waiting)
    if (SessionRec* m = rec(sid)) {
      m->link_id = 0;
      assign_upstream(*m);
    }
}

void Router::fail_pool(size_t pool, const std::string& reason, double now) {
  enter(now);
  std::vector<Link*> ls;
  for (auto& [id, l] : links_)
    if (l->pool == pool && !l->dead) ls.push_back(l.get());
  for (Link* l : ls) link_lost(l, reason, Loss::kUnusable);
  if (vetting_) vetting_->pool_down(pool);
}

std::vector<long> Router::match_pools(const std::vector<PoolConfig>& next) const {
  auto same_pool = [](const PoolConfig& a, const PoolConfig& b) {
    return a.name == b.name && a.url == b.url && a.user == b.user && a.password == b.password &&
           a.identity == b.identity;
  };
  std::vector<long> old_to_new(pools_.size(), -1);
  std::vector<bool> taken(next.size(), false);
  for (size_t i = 0; i < next.size(); ++i)
    for (size_t j = 0; j < pools_.size(); ++j)
      if (old_to_new[j] < 0 && !taken[i] && same_pool(next[i], pools_[j]->cfg)) {
        old_to_new[j] = long(i);
        taken[i] = true;
        break;
      }
  return old_to_new;
}

std::vector<long> Router::reload(RouterConfig next, const std::vector<size_t>& disabled, double now) {
  enter(now);
  const std::vector<long> old_to_new = match_pools(next.pools);
  std::vector<size_t> removed;
  for (size_t j = 0; j < pools_.size(); ++j) {
    if (old_to_new[j] < 0) {
      removed.push_back(j);
      log(LogLevel::kWarn, "pool_removed").kv("pool", pools_[j]->cfg.name).kv("by", "reload");
    }
  }
  // Sessions of removed pools move like a failover, without a breaker charge.
  for (size_t j : removed) {
    pools_[j]->enabled = false;
    vacate_pool(j, "removed by reload");
  }
  const std::string active_name = pools_.empty() ? std::string() : pools_[active_pool_]->cfg.name;
  std::vector<std::unique_ptr<PoolState>> next_pools(next.pools.size());
  for (size_t j = 0; j < pools_.size(); ++j)
    if (old_to_new[j] >= 0) next_pools[size_t(old_to_new[j])] = std::move(pools_[j]);
  // Links keep pointing at their pool, by its new index.
  for (auto& [id, l] : links_)
    if (old_to_new[l->pool] >= 0) l->pool = size_t(old_to_new[l->pool]);
  for (auto& [sid, m] : sessions_) {
    if (m.held_until == 0) continue;
    if (old_to_new[m.held_pool] < 0) {
      m.held_until = 0;  // its pool is gone: it moves on the next tick
    } else {
      m.held_pool = uint32_t(old_to_new[m.held_pool]);
    }
  }
  // What needs a restart stays: the placement strategy and its prefix bytes.
  next.strategy = cfg_.strategy;
  next.prefix_bytes = cfg_.prefix_bytes;
  next.min_extranonce2_size = cfg_.min_extranonce2_size;
  next.sessions_per_upstream = cfg_.sessions_per_upstream;
  next.seed = cfg_.seed;
  cfg_ = std::move(next);
  pools_ = std::move(next_pools);
  for (size_t i = 0; i < cfg_.pools.size(); ++i) {
    const PoolConfig& p = cfg_.pools[i];
    if (!pools_[i]) {
      auto st = std::make_unique<PoolState>(breaker_cfg_);
      st->endpoint = p.endpoint;
      st->enabled = std::find(disabled.begin(), disabled.end(), i) == disabled.end();
      log(LogLevel::kWarn, "pool_added").kv("pool", p.name).kv("url", p.url).kv("priority", p.priority)
          .kv("by", "reload");
      pools_[i] = std::move(st);
    }
    pools_[i]->cfg = p;
    // A reload is the operator's word on where each pool is.
    end_redirect(*pools_[i], "config reloaded");
  }
  sort_pools();
  active_pool_ = pool_order_.empty() ? 0 : pool_order_.front();
  for (size_t i = 0; i < pools_.size(); ++i)
    if (pools_[i]->cfg.name == active_name) active_pool_ = i;
  breaker_cfg_ = cfg_.breaker;  // every breaker reads it from here
  return old_to_new;
}

void Router::refresh(double now) {
  enter(now);
  serving_pool();
  maintain_links();
}

}  // namespace hashgate::routing
