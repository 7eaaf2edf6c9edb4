// How sessions move between connections: in place (mining.set_extranonce),
// by client.reconnect (or a close, for firmware that ignores it), onto a
// connection still being set up, or back onto their own prefix when the
// pool resumes a dropped subscription.
#include <algorithm>

#include "protocol/firmware_profile.h"
#include "routing/router.h"

namespace hashgate::routing {

bool Router::can_move_in_place(const SessionRec& m) const {
  if (rules_) return rules_->can_move_in_place(*m.s);
  const FirmwareProfile* p = m.s->profile();
  return p && p->move_by(m.s->extranonce_subscribed()) == MoveBy::kSetExtranonce;
}

void Router::move_session(SessionRec& m) {
  if (stopping_) return;
  const uint64_t sid = m.id;
  if (m.held_until > now_) {
    orphans_.insert(sid);  // its pool session may be resumed; retried every tick
    return;
  }
  m.held_until = 0;
  auto pool = serving_pool();
  if (!pool) {
    orphans_.insert(sid);  // retried every tick until a pool is usable
    return;
  }
  orphans_.erase(sid);
  if (!m.s->subscribed()) {
    assign_upstream(m);
    return;
  }
  if (can_move_in_place(m)) {
    pool = weighted_pick(*pool, m.s->difficulty());
    Link* l = ready_link(*pool, true);
    if (!l) {
      // Every ready connection is full: the session gets a slot on a new
      // one, exactly as a new miner would (17.1: they waited forever).
      await_link(*pool, m);
      return;
    }
    place_session(l, m, *l->prefixes->allocate(), true);
    log(LogLevel::kInfo, "miner_moved").kv("session", sid).peer(sid).kv("pool", pools_[l->pool]->cfg.name)
        .kv("how", "set_extranonce");
    return;
  }
  // A reconnecting miner needs no slot here: it comes back as a new miner.
  // Paced and jittered so a whole farm does not reconnect in the same instant.
  const uint32_t wait = uint32_t(double(rng_() % 1000) / 1000.0 * cfg_.reconnect_spread_seconds);
  send_move(m, *pool, wait);
}

void Router::send_move(SessionRec& m, size_t pool, uint32_t wait) {
  const FirmwareProfile* prof = m.s->profile();
  bool closes = prof && !prof->follows_reconnect;
  closes = closes || (rules_ && rules_->ignores_reconnect(*m.s));
  if (closes) {
    log(LogLevel::kInfo, "miner_moved").kv("session", m.id).peer(m.id).kv("pool", pools_[pool]->cfg.name)
        .kv("how", "close").kv("profile", prof ? prof->name : std::string("-"));
    emit({.kind = Command::Kind::kCloseSession,
          .session = m.id,
          .text = "moved: its firmware does not follow client.reconnect",
          .reason_class = "moved"});
    return;
  }
  // Where it reconnects (a tunneled miner: the pool's own address; the
  // others: hashgate's advertised or local address) is the shell's to say.
  Command c{.kind = Command::Kind::kReconnect, .pool = pool, .session = m.id, .wait = wait,
            .text = pools_[pool]->cfg.name};
  if (!pools_[pool]->cfg.builtin) c.endpoint = pools_[pool]->cfg.endpoint;
  emit(std::move(c));
}

void Router::await_link(size_t pool, SessionRec& m) {
  // Joins a connection of the pool still being set up while its expected
  // room lasts, or opens one. The estimate is the configured room until the
  // pool's subscription says how many prefixes it really has; whoever does
  // not fit when it is ready is placed again (take_movers).
  Link* target = nullptr;
  for (auto& [id, lp] : links_) {
    Link* l = lp.get();
    if (l->dead || l->pool != pool || l->owner_session || link_ready(l)) continue;
    const uint64_t room = l->prefixes ? l->prefixes->capacity() : cfg_.sessions_per_upstream;
    if (l->sessions.size() + l->waiting.size() + l->movers.size() < room) {
      target = l;
      break;
    }
  }
  if (!target) {
    pools_[pool]->breaker.on_attempt(now_);
    target = open_link(pool, 0);
    log(LogLevel::kInfo, "pool_link_added").kv("pool", pools_[pool]->cfg.name).kv("link", uint64_t(target->id))
        .kv("reason", "moved sessions need room");
  }
  target->movers.push_back(m.id);
}

void Router::take_movers(Link* l) {
  std::vector<uint64_t> movers;
  movers.swap(l->movers);
  for (uint64_t sid : movers)
    if (SessionRec* m = rec(sid); m && !m->link_id) move_session(*m);
}

void Router::resplit_link(Link* l) {
  // Every job of the old space is void; the pool's next notify starts anew.
  jobs_.retire_link(l->id);
  l->last_job_at = now_;
  reset_prefixes(l);
  std::vector<SessionRec*> ms;
  for (uint64_t sid : l->sessions)
    if (SessionRec* m = rec(sid)) ms.push_back(m);
  l->sessions.clear();
  for (SessionRec* m : ms) {
    m->has_prefix = false;
    m->link_id = 0;
    emit({.kind = Command::Kind::kUnbind, .session = m->id});
    auto prefix = l->prefixes->allocate();
    if (prefix && can_move_in_place(*m)) {
      place_session(l, *m, *prefix, true);
    } else {
      if (prefix) l->prefixes->release(*prefix);
      move_session(*m);  // another connection, or client.reconnect
    }
  }
}

void Router::follow_reconnect(Link* l, const ReconnectParams& r) {
  PoolState& ps = *pools_[l->pool];
  const bool same_host = r.host.empty() || r.host == ps.cfg.endpoint.host;
  if (!same_host && !cfg_.follow_reconnect_to_other_hosts) {
    log(LogLevel::kWarn, "pool_reconnect_refused")
        .kv("pool", ps.cfg.name)
        .kv("host", r.host)
        .kv("reason", "another host (failover.follow_reconnect_to_other_hosts is off)");
    return;
  }
  // Told to go before the connection gave a single job: a pool in a
  // reconnect loop, not a planned move. The breaker is charged, so attempts
  // follow its backoff instead of reconnecting at once, forever.
  const bool premature = !l->has_job;
  if (premature) {
    ps.breaker.on_failure(now_, unit_random());
    // A redirect that leads nowhere useful ends here (bounded redirects).
    if (l->redirected) end_redirect(ps, "client.reconnect before any job");
  }
  if (!same_host) ps.endpoint.host = r.host;
  if (r.port) ps.endpoint.port = r.port;
  ps.not_before = std::max(now_ + r.wait_seconds, premature ? ps.breaker.retry_at() : 0.0);
  log(LogLevel::kWarn, "pool_reconnect_followed")
      .kv("pool", ps.cfg.name)
      .kv("link", uint64_t(l->id))
      .kv("endpoint", ps.endpoint.to_string())
      .kv("configured", ps.cfg.endpoint.to_string())
      .kv("wait", uint64_t(r.wait_seconds))
      .kv("counted_as_failure", premature)
      .kv("retry_in", std::max(0.0, ps.not_before - now_));
  // A planned move, not a failure: the breaker is not charged. Sessions go
  // to another ready connection (the warm standby) or wait for the new one.
  std::vector<uint64_t> bound(l->sessions.begin(), l->sessions.end());
  bound.insert(bound.end(), l->movers.begin(), l->movers.end());
  dispose_link(l);
  maintain_links();
  rehome(bound, false);
}

void Router::rehome(const std::vector<uint64_t>& sessions, bool close_instead) {
  for (uint64_t sid : sessions) {
    SessionRec* m = rec(sid);
    if (!m) continue;
    // The link is gone already: nothing to release on it.
    m->link_id = 0;
    m->has_prefix = false;
    emit({.kind = Command::Kind::kUnbind, .session = sid});
    if (close_instead) {
      emit({.kind = Command::Kind::kCloseSession,
            .session = sid,
            .text = "pool connection lost",
            .reason_class = "pool_lost"});
    } else {
      move_session(*m);
    }
  }
}

void Router::resume_sessions(Link* l) {
  const Resumable r = *l->resuming;
  l->resuming.reset();
  const auto& sub = l->session->subscription();
  const std::string& pool = pools_[l->pool]->cfg.name;
  if (sub.extranonce1 != r.extranonce1 || sub.extranonce2_size != r.extranonce2_size) {
    log(LogLevel::kInfo, "pool_session_not_resumed").kv("pool", pool).kv("link", uint64_t(l->id))
        .kv("session_id", r.session_id);
    return;  // the held miners move when their wait ends
  }
  uint64_t n = 0;
  std::vector<SessionRec*> held;
  for (auto& [sid, m] : sessions_)
    if (m.held_until > 0 && m.held_pool == l->pool && m.held_extranonce1 == r.extranonce1 && !m.link_id)
      held.push_back(&m);
  for (SessionRec* m : held) {
    m->held_until = 0;
    if (!l->prefixes->take(m->held_prefix)) continue;  // moves like any other
    orphans_.erase(m->id);
    place_session(l, *m, m->held_prefix, true);  // the same space: no message, the next job is clean
    ++n;
  }
  log(LogLevel::kInfo, "pool_session_resumed").kv("pool", pool).kv("link", uint64_t(l->id))
      .kv("session_id", r.session_id).kv("miners_kept", n);
}

void Router::release_held(size_t pool) {
  std::vector<SessionRec*> held;
  for (auto& [sid, m] : sessions_)
    if (m.held_until > 0 && m.held_pool == pool) held.push_back(&m);
  for (SessionRec* m : held) {
    m->held_until = 0;
    if (!m->link_id) move_session(*m);
  }
}

void Router::retry_orphans() {
  if (orphans_.empty()) return;
  std::vector<uint64_t> waiting(orphans_.begin(), orphans_.end());
  orphans_.clear();
  for (uint64_t sid : waiting)
    if (SessionRec* m = rec(sid); m && !m->link_id) {
      if (m->s->subscribed()) {
        move_session(*m);
      } else {
        assign_upstream(*m);
      }
    }
}

}  // namespace hashgate::routing
