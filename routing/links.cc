// Pool connections: opening, the pool's messages, losing and disposing of them.
#include <algorithm>

#include "hashing/bytes.h"
#include "routing/router.h"

namespace hashgate::routing {
namespace {

// A lost pool connection that had a session id: its miners that cannot move
// in place wait this long for a resumed subscription before client.reconnect.
constexpr double kResumeWindowSeconds = 1.5;

}  // namespace

Router::Link* Router::open_link(size_t pool_index, uint64_t owner_session) {
  PoolState& ps = *pools_[pool_index];
  auto owned = std::make_unique<Link>();
  Link* l = owned.get();
  l->id = next_link_id_++;
  l->pool = pool_index;
  l->owner_session = owner_session;
  l->throttle = NotifyThrottle(cfg_.job_interval_seconds);
  UpstreamOptions o;
  o.agent = cfg_.agent;
  placement_->credentials(ps.cfg, o);
  o.version_mask = cfg_.version_mask;
  if (!owner_session) {
    auto& rs = ps.resumable;
    rs.erase(std::remove_if(rs.begin(), rs.end(), [&](const Resumable& r) { return r.until < now_; }), rs.end());
    if (!rs.empty()) {
      l->resuming = rs.front();
      rs.erase(rs.begin());
      o.resume_session_id = l->resuming->session_id;
    }
  }
  l->session = std::make_unique<UpstreamSession>(pool_parser_, o);
  l->opened_at = now_;
  // The breaker already decided this attempt may go; connect on the next
  // turn (never from inside the caller's handling), or when the pool's
  // client.reconnect said to.
  l->connect_at = now_ + std::max(0.0, ps.not_before - now_);
  links_.emplace(l->id, std::move(owned));
  return l;
}

void Router::close_all(double now) {
  enter(now);
  std::vector<Link*> ls;
  for (auto& [id, l] : links_) ls.push_back(l.get());
  for (Link* l : ls) dispose_link(l);
}

void Router::link_connected(uint32_t link, double now) {
  enter(now);
  Link* l = find_link(link);
  if (!l || l->dead) return;
  l->session->start();
  flush(l);
}

void Router::link_data(uint32_t link, std::string_view bytes, double now) {
  enter(now);
  Link* l = find_link(link);
  if (!l || l->dead) return;
  l->session->receive(bytes, now_);
  UpstreamEvent ev;
  while (!l->dead && l->session->next_event(ev)) handle_link_event(l, ev);
  if (!l->dead) flush(l);
}

void Router::link_dropped(uint32_t link, const std::string& reason, double now) {
  enter(now);
  if (Link* l = find_link(link)) link_lost(l, reason, Loss::kDropped);
}

void Router::flush(Link* l) {
  std::string& out = l->session->output();
  if (out.empty() || l->connect_at >= 0) return;
  Command c{.kind = Command::Kind::kWriteLink, .link = l->id};
  c.bytes.swap(out);
  emit(std::move(c));
}

void Router::handle_link_event(Link* l, UpstreamEvent& ev) {
  PoolState& ps = *pools_[l->pool];
  const std::string& pool = ps.cfg.name;
  if (ev.kind != UpstreamEventKind::kProtocolError) l->malformed = 0;
  if (ev.kind == UpstreamEventKind::kJob && l->subscribed) l->malformed_notifies = 0;
  switch (ev.kind) {
    case UpstreamEventKind::kConfigured:
      log(LogLevel::kInfo, "pool_version_rolling").kv("pool", pool).kv("link", uint64_t(l->id))
          .kv("mask", hex_u32_string(ev.version_mask));
      break;
    case UpstreamEventKind::kSubscribed:
      log(LogLevel::kInfo, "pool_subscribed")
          .kv("pool", pool)
          .kv("link", uint64_t(l->id))
          .kv("extranonce1", hex_encode(ev.subscription.extranonce1))
          .kv("extranonce2_size", uint64_t(ev.subscription.extranonce2_size));
      link_subscribed(l);
      break;
    case UpstreamEventKind::kAuthorized:
      if (l->owner_session) {
        Command c{.kind = Command::Kind::kAuthorizeResult, .session = l->owner_session, .text = ev.user};
        if (!l->auth_ids.empty()) {
          c.rpc_id = l->auth_ids.front();
          l->auth_ids.erase(l->auth_ids.begin());
        }
        c.ok = ev.ok;
        c.error = ev.error;
        emit(std::move(c));
      } else if (!ev.ok) {
        log(LogLevel::kError, "pool_authorize_failed").kv("pool", pool).kv("user", ev.user)
            .kv("error", ev.error.message);
      } else {
        log(LogLevel::kInfo, "pool_authorized").kv("pool", pool).kv("link", uint64_t(l->id)).kv("user", ev.user);
      }
      break;
    case UpstreamEventKind::kJob:
      on_job(l, ev);
      break;
    case UpstreamEventKind::kDifficulty:
      log(LogLevel::kInfo, "pool_difficulty").kv("pool", pool).kv("link", uint64_t(l->id)).kv("difficulty", ev.difficulty);
      break;
    case UpstreamEventKind::kVersionMask: {
      log(LogLevel::kInfo, "pool_version_mask").kv("pool", pool).kv("link", uint64_t(l->id))
          .kv("mask", hex_u32_string(ev.version_mask));
      // Every session on the connection rolls within the new mask from now
      // on (told with mining.set_version_mask); shares outside it are refused.
      emit({.kind = Command::Kind::kVersionMask,
            .link = l->id,
            .sessions = {l->sessions.begin(), l->sessions.end()},
            .mask = ev.version_mask});
      break;
    }
    case UpstreamEventKind::kSetExtranonce:
      if (std::string why; vetting_ && !vetting_->set_extranonce(l->pool, ev.subscription, why))
        return link_lost(l, "refused mining.set_extranonce: " + why, Loss::kUnusable);
      log(LogLevel::kWarn, "pool_set_extranonce")
          .kv("pool", pool)
          .kv("link", uint64_t(l->id))
          .kv("extranonce1", hex_encode(ev.subscription.extranonce1))
          .kv("extranonce2_size", uint64_t(ev.subscription.extranonce2_size));
      resplit_link(l);
      break;
    case UpstreamEventKind::kReconnect:
      follow_reconnect(l, ev.reconnect);
      break;
    case UpstreamEventKind::kSubmitResult:
      on_submit_result(l, ev);
      break;
    case UpstreamEventKind::kShowMessage:
      log(LogLevel::kInfo, "pool_message").kv("pool", pool).kv("message", ev.error.message);
      break;
    case UpstreamEventKind::kProtocolError:
      log(LogLevel::kWarn, "pool_protocol_error").kv("pool", pool).kv("link", uint64_t(l->id))
          .kv("error", ev.error.message);
      if (ev.fatal) {
        link_lost(l, ev.error.message);
      } else if (++l->malformed >= cfg_.max_malformed) {
        link_lost(l, std::to_string(l->malformed) + " malformed messages in a row");
      } else if (ev.bad_notify && ++l->malformed_notifies >= cfg_.max_malformed) {
        link_lost(l, std::to_string(l->malformed_notifies) + " malformed notifies without a valid job");
      }
      break;
  }
}

void Router::on_job(Link* l, UpstreamEvent& ev) {
  // A job before a subscription has no extranonce to work with: it
  // neither counts as work nor keeps the connection alive.
  if (!l->subscribed) return;
  PoolState& ps = *pools_[l->pool];
  const auto& sub = l->session->subscription();
  if (std::string why; vetting_ && !vetting_->job(l->pool, ev.notify, sub, l->session->version_mask(), now_, why)) {
    fail_pool(l->pool, why, now_);  // the job never reaches a miner
    return;
  }
  const bool first_job = !l->has_job;
  if (first_job) ps.breaker.on_success(now_);
  l->last_job_at = now_;
  l->has_job = true;
  JobRef job = jobs_.add(l->id, std::move(ev.notify), sub.extranonce1, sub.extranonce2_size, l->session->difficulty());
  if (job->params.clean_jobs && l->prefixes) l->prefixes->on_clean_job();
  log(LogLevel::kDebug, "job").kv("pool", ps.cfg.name).kv("link", uint64_t(l->id)).kv("job", job->id)
      .kv("pool_job", job->params.job_id).kv("clean", job->params.clean_jobs)
      .kv("sessions", uint64_t(l->sessions.size()));
  // A notify flood is thinned (protocol/notify_throttle.h): a held job goes
  // out from release_held_jobs when its time comes (on_timeout).
  if (const uint64_t n = l->throttle.coalesced(); !l->throttle.offer(job, now_)) {
    ps.jobs_coalesced += l->throttle.coalesced() - n;
    return;
  }
  fan_out(l, job, false);
  if (first_job && !l->movers.empty()) take_movers(l);  // ready now: the sessions waiting to move in
}

void Router::fan_out(Link* l, const JobRef& job, bool force_clean) {
  emit({.kind = Command::Kind::kJob,
        .link = l->id,
        .pool = l->pool,
        .job = job,
        .sessions = {l->sessions.begin(), l->sessions.end()},
        .clean = force_clean});
}

void Router::release_held_jobs() {
  for (auto& [id, l] : links_) {
    if (l->dead) continue;
    // A job its connection retired meanwhile (new extranonce) is stale: dropped.
    if (auto r = l->throttle.take_due(now_); r && jobs_.find(r->job->seq)) fan_out(l.get(), r->job, r->force_clean);
  }
}

void Router::on_submit_result(Link* l, UpstreamEvent& ev) {
  auto fit = forwards_.find(ev.token);
  if (fit == forwards_.end()) return;
  const Forward f = fit->second;
  forwards_.erase(fit);
  emit({.kind = Command::Kind::kVerdict,
        .link = f.link_id,
        .pool = l->pool,
        .session = f.session_id,
        .ok = ev.ok,
        .error = ev.error,
        .token = ev.token,
        .worker = f.worker,
        .block = f.block,
        .difficulty = f.difficulty,
        .stamp = f.stamp});
  if (ev.ok) pools_[l->pool]->window_accepted += f.difficulty;
  retire_if_done(l);
  if (stopping_ || l->dead) return;
  note_pool_answer(l, ev.ok);
}

void Router::link_subscribed(Link* l) {
  const auto& sub = l->session->subscription();
  reset_prefixes(l);
  const uint32_t p = l->prefixes->prefix_bytes();
  if (sub.extranonce2_size - p < cfg_.min_extranonce2_size)
    log(LogLevel::kWarn, "small_extranonce2")
        .kv("link", uint64_t(l->id))
        .kv("pool_extranonce2_size", uint64_t(sub.extranonce2_size))
        .kv("miner_extranonce2_size", uint64_t(sub.extranonce2_size - p));
  l->subscribed = true;
  if (l->resuming) resume_sessions(l);
  std::vector<uint64_t> waiting;
  waiting.swap(l->waiting);
  for (uint64_t sid : waiting) {
    SessionRec* m = rec(sid);
    if (!m) continue;
    if (l->prefixes->full() && !l->owner_session) {
      // This connection is full: the rest go to another one.
      m->link_id = 0;
      assign_upstream(*m);
    } else {
      bind_session(l, *m);
    }
  }
  for (auto& [id, auth] : l->pending_auth) {
    l->auth_ids.push_back(id);
    l->session->authorize(auth.user, auth.password);
  }
  l->pending_auth.clear();
}

void Router::link_lost(Link* l, const std::string& reason, Loss kind) {
  if (l->dead) return;
  l->dead = true;
  PoolState& ps = *pools_[l->pool];
  ps.breaker.on_failure(now_, unit_random(), kind == Loss::kUnusable);
  // A failure where a client.reconnect sent us: back to the configured endpoint.
  if (l->redirected) end_redirect(ps, reason);
  log(LogLevel::kWarn, "pool_disconnected")
      .kv("pool", ps.cfg.name)
      .kv("link", uint64_t(l->id))
      .kv("reason", reason)
      .kv("sessions", uint64_t(l->sessions.size()))
      .kv("breaker", ps.breaker.state_name())
      .kv("retry_in", std::max(0.0, ps.breaker.retry_at() - now_));
  size_t lost = 0;
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.link_id == l->id) {
      it = forwards_.erase(it);
      ++lost;
    } else {
      ++it;
    }
  }
  if (lost)
    log(LogLevel::kWarn, "pool_answers_lost").kv("pool", ps.cfg.name).kv("link", uint64_t(l->id))
        .kv("shares", uint64_t(lost));
  std::vector<uint64_t> bound(l->sessions.begin(), l->sessions.end());
  std::vector<uint64_t> waiting;
  waiting.swap(l->waiting);
  std::vector<uint64_t> movers;
  movers.swap(l->movers);
  const bool passthrough = l->owner_session != 0;
  const SubscribeResult& sub = l->session->subscription();
  if (l->resuming) release_held(l->pool);  // the resume attempt itself failed
  // Only a dropped connection is worth resuming: a pool that went silent
  // or talks garbage is failed over at once.
  if (kind == Loss::kDropped && !passthrough && !stopping_ && l->subscribed && !sub.session_id.empty() &&
      ps.breaker.retry_at() < now_ + kResumeWindowSeconds) {
    // Offer the pool its session back; the miners that would need a
    // reconnect wait for it a moment, keeping their prefix.
    const double until = now_ + kResumeWindowSeconds;
    ps.resumable.push_back({sub.session_id, sub.extranonce1, sub.extranonce2_size, until});
    for (uint64_t sid : bound) {
      SessionRec* m = rec(sid);
      if (!m || can_move_in_place(*m) || !m->has_prefix) continue;
      m->held_until = until;
      m->held_pool = uint32_t(l->pool);
      m->held_extranonce1 = sub.extranonce1;
      m->held_prefix = m->prefix;
    }
  }
  dispose_link(l);
  if (stopping_) return;
  maintain_links();
  // The lost connection's extranonce space is gone: its miners move (a
  // passthrough miner's connection was its own: it reconnects).
  rehome(bound, passthrough);
  for (uint64_t sid : waiting)
    if (SessionRec* m = rec(sid)) {
      m->link_id = 0;
      assign_upstream(*m);
    }
  for (uint64_t sid : movers)
    if (SessionRec* m = rec(sid); m && !m->link_id) move_session(*m);
}

void Router::dispose_link(Link* l) {
  l->dead = true;
  // Passthrough: authorizes not yet sent (the connection never subscribed)
  // stay with their miner for its next connection.
  if (l->owner_session && !l->pending_auth.empty() && sessions_.count(l->owner_session)) {
    auto& parked = parked_auth_[l->owner_session];
    for (auto& a : l->pending_auth) parked.push_back(std::move(a));
    l->pending_auth.clear();
  }
  if (l->connect_at < 0) emit({.kind = Command::Kind::kCloseLink, .link = l->id});  // its transport was opened
  jobs_.retire_link(l->id);
  auto it = links_.find(l->id);
  if (it == links_.end()) return;
  graveyard_.push_back(std::move(it->second));  // freed at the next call: callers still hold `l`
  links_.erase(it);
}

}  // namespace hashgate::routing
