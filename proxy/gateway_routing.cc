// The gateway's side of the routing core's commands: what they do to miner
// sessions (bind, move, close, jobs, verdicts) and the log lines they carry.
// Link commands go to UpstreamLinks. The routing decisions themselves are
// all in routing/.
#include <algorithm>

#include "proxy/gateway.h"
#include "proxy/log.h"
#include "proxy/reconnect_target.h"
#include "proxy/sockaddr.h"

namespace hashgate {

void Gateway::run_routing() {
  // Commands may lead back here (a bind answers a subscribe, whose authorize
  // goes to the router): the outer loop takes what those add, in order.
  if (routing_busy_) return;
  routing_busy_ = true;
  while (upstream_->router().take_commands(routing_cmds_)) {
    for (const routing::Command& c : routing_cmds_)
      if (!upstream_->execute(c)) apply_routing(c);
  }
  routing_cmds_.clear();
  routing_busy_ = false;
  upstream_->arm();
  if (life_.stopping()) maybe_finish_stop();
}

void Gateway::assign_upstream(Miner* m) {
  upstream_->router().need_upstream(m->session->id(), *m->session, m->preferred_pool, now());
  run_routing();
}

void Gateway::log_routing(const routing::LogEvent& e) {
  static const spdlog::level::level_enum kLevels[] = {spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
                                                      spdlog::level::err};
  log::Event ev(kLevels[size_t(e.level)], e.name);
  for (const routing::LogField& f : e.fields) {
    switch (f.type) {
      case routing::LogField::Type::kString: ev.kv(f.key, f.s); break;
      case routing::LogField::Type::kInt: ev.kv(f.key, f.i); break;
      case routing::LogField::Type::kUint: ev.kv(f.key, f.u); break;
      case routing::LogField::Type::kDouble: ev.kv(f.key, f.d); break;
      case routing::LogField::Type::kBool: ev.kv(f.key, f.b); break;
      case routing::LogField::Type::kPeer: {
        auto it = miners_.find(f.u);
        ev.kv(f.key, it == miners_.end() ? std::string("-") : it->second->peer);
        break;
      }
    }
  }
}

void Gateway::apply_routing(const routing::Command& c) {
  using K = routing::Command::Kind;
  if (c.kind == K::kLog) return log_routing(c.log);
  if (c.kind == K::kPoolFailover) return accounts_.count_failover(c.pool);
  if (c.kind == K::kVerdict) return pool_verdict(c);
  if (c.kind == K::kJob) return fan_out(c);
  if (c.kind == K::kVersionMask) {
    // Every session on the connection rolls within the new mask from now
    // on (told with mining.set_version_mask); shares outside it are refused.
    for (uint64_t sid : c.sessions)
      if (auto it = miners_.find(sid); it != miners_.end()) {
        it->second->session->set_pool_version_mask(c.mask);
        flush(it->second);
      }
    return;
  }
  auto it = miners_.find(c.session);
  if (it == miners_.end() || it->second->closing) return;  // gone since
  Miner* m = it->second;
  switch (c.kind) {
    case K::kBind:
      m->session->bind(c.binding, now());
      drain_session_events(m);
      flush(m);
      break;
    case K::kSetExtranonce:
      // Whether the miner works in its new space shows in its next shares.
      m->checking_move = true;
      m->bad_after_move = 0;
      m->session->send_set_extranonce(c.binding, now());
      flush(m);
      break;
    case K::kUnbind:
      m->session->unbind();
      break;
    case K::kReconnect: {
      std::optional<conf::Endpoint> pool_ep;
      if (c.endpoint) pool_ep = conf::Endpoint{c.endpoint->host, c.endpoint->port};
      const auto to = reconnect_target(m->tunneled, pool_ep, m->listener ? m->listener->cfg->advertise : std::nullopt,
                                       local_endpoint(&m->tcp));
      if (!to) return close_miner(m, "moved: no address to reconnect to", "moved");
      m->session->send_reconnect(to->host, to->port, c.wait);
      m->close_at = reconnect_deadline(now(), c.wait, cfg_.failover.reconnect_grace_seconds);
      flush(m);
      log::info("miner_moved").kv("session", m->session->id()).kv("peer", m->peer).kv("pool", c.text)
          .kv("how", "client.reconnect").kv("to", conf::Endpoint{to->host, to->port}.to_string()).kv("wait", c.wait);
      break;
    }
    case K::kCloseSession:
      close_miner(m, c.text, c.reason_class);
      break;
    case K::kAuthorizeResult:
      authorize_miner(m, c.rpc_id, c.text, c.ok, c.error.message);
      flush(m);
      break;
    default:
      break;
  }
}

void Gateway::fan_out(const routing::Command& c) {
  // Nothing here may close a session while the list is walked: writes wait
  // until the walk is over.
  fanout_.begin();
  for (uint64_t sid : c.sessions) {
    auto mit = miners_.find(sid);
    if (mit == miners_.end()) continue;
    mit->second->session->on_job(c.job, c.clean);
    fanout_.add(mit->second);
  }
  fanout_.finish();
}

void Gateway::pool_verdict(const routing::Command& c) {
  submit_rtt_.observe(double(uv_hrtime() - c.stamp) / 1e9);
  WorkerStats& st = stats(c.worker);
  UpstreamLinks::PoolCounters& ps = upstream_->counters(c.pool);
  const std::string& pool = cfg_.pools[c.pool].name;
  ++(c.ok ? ps.accepted : ps.rejected);
  if (c.ok) ps.rate.add(now(), c.difficulty);
  if (LedgerCounts* lc = ledger_row(c.worker, c.link)) {
    ++(c.ok ? lc->pool_accepted : lc->pool_rejected);
    (c.ok ? lc->pool_accepted_difficulty : lc->pool_rejected_difficulty) += c.difficulty;
    if (c.block) ledger_verdict(c.token, c.ok);
  }
  if (c.ok) {
    ++st.pool_accepted;
    st.credited_rate.add(now(), c.difficulty);
    ps.accepted_difficulty += c.difficulty;
    if (c.block) log::warn("block_accepted_by_pool").kv("pool", pool).kv("worker", worker_name(c.worker));
  } else {
    ++st.pool_rejected;
    log::warn("share_rejected_by_pool")
        .kv("pool", pool)
        .kv("worker", worker_name(c.worker))
        .kv("code", int(c.error.code))
        .kv("error", c.error.message);
  }
}

}  // namespace hashgate
