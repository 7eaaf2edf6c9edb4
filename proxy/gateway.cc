#include "proxy/gateway.h"

#include <openssl/rand.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <span>
#include <thread>

#include "hashing/engine.h"
#include "hashing/header.h"
#include "hashing/sha256.h"
#include "protocol/http_connect.h"
#include "protocol/notify_throttle.h"
#include "proxy/clock.h"
#include "proxy/log.h"
#include "proxy/reconnect_target.h"
#include "proxy/reload.h"
#include "proxy/proxy_edge.h"
#include "proxy/sockaddr.h"

namespace hashgate {
namespace {

// Bad shares in a row on the new space before a miner is taken to ignore
// mining.set_extranonce (a share of an honest miner is good by construction).
constexpr unsigned kBadSharesAfterMove = 3;

uint64_t random_u64() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) v = std::random_device{}();
  return v;
}

}  // namespace

Gateway::Gateway(uv_loop_t* loop, conf::Config cfg)
    : loop_(loop),
      cfg_(std::move(cfg)),
      algo_(*parse_algorithm(cfg_.algorithm)),
      miner_parser_(cfg_.limits.max_line_bytes),
      jobs_(algo_),
      accounts_(cfg_, [this](size_t pool) { return upstream_->router().pool_ready(pool); }),
      writer_(spares_, cfg_.limits),
      edge_(cfg_, writer_,
            Edge::Hooks{[this](Miner* m, std::string_view b) { reader_.read(m, b, now()); },
                        [this](Miner* m, std::string_view b) { reader_.cipher(m, b, now()); },
                        [this](const Address& a) {
                          std::vector<Miner*> out;
                          for (auto& [id, m] : miners_)
                            if (m->addr == a) out.push_back(m);
                          return out;
                        }}),
      listeners_(loop_, *this, edge_,
                 Listeners::Hooks{[this] { return !life_.stopping(); }, [this](Miner* m) { on_miner(m); },
                                  [this] { return now(); }}),
      fanout_(writer_),
      shares_(
          loop_, algo_, [this](ShareWork& w, uint32_t worker, const Hash256& h) { finish_share(w, worker, h); },
          [this] {
            if (life_.stopping()) maybe_finish_stop();
          }),
      firmware_(cfg_),
      reader_(cfg_.limits, writer_,
              MinerReader::Hooks{[this](Miner* m) {
                                   apply_profile(m);
                                   assign_upstream(m);
                                 },
                                 [this](Miner* m, const RpcId& id, const AuthorizeParams& auth) {
                                   apply_profile(m);  // the user agent is known by now, before the first difficulty
                                   handle_authorize(m, id, auth);
                                 },
                                 [this](Miner* m, ShareWork& w) { handle_share(m, w); },
                                 [this](Miner* m, const SessionEvent& ev) { share_refused(m, ev); }}) {
  ctx_.parser = &miner_parser_;
  ctx_.spares = &spares_;
  ctx_.jobs = &jobs_;
  ctx_.algorithm = algo_;
  ctx_.vardiff = VardiffConfig{cfg_.vardiff.initial, cfg_.vardiff.min, cfg_.vardiff.max,
                               cfg_.vardiff.target_share_seconds};
  ctx_.max_line = cfg_.limits.max_line_bytes;
  ctx_.fingerprint_key = random_u64();
  ctx_.version = "hashgate/" HASHGATE_VERSION;
  integrity_ = std::make_unique<JobIntegrity>(cfg_);
  upstream_ = std::make_unique<UpstreamLinks>(loop_, cfg_, router_config(cfg_, firmware_.book().fallback(), random_u64()),
                                              jobs_, &vetting_, &rules_, algo_, [this] { run_routing(); });
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  uv_timer_init(loop_, &stop_timer_);
  stop_timer_.data = this;
  uv_async_init(loop_, &commands_async_, [](uv_async_t* a) { static_cast<Gateway*>(a->data)->run_commands(); });
  commands_async_.data = this;
  started_unix_ = unix_now();
  submit_rtt_ = Histogram({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
}

Gateway::~Gateway() = default;

int Gateway::start(std::string& error) {
  if (!shares_.start(cfg_.hashing, error)) return UV_EINVAL;
  fanout_.start(cfg_.fanout.threads);
  if (!upstream_->setup_tls(error)) return UV_EINVAL;
  if (!accounts_.open_ledger(error, unix_now())) return UV_EINVAL;
  if (int rc = listeners_.start(cfg_.listeners, error); rc != 0) return rc;
  // Aggregation keeps one connection to the pool ready, so the first miner
  // gets work at once. Passthrough connects per miner.
  life_.listeners_up();
  integrity_->start();
  upstream_->start();
  if (!cfg_.hardware.boards.empty() && listeners_.board_endpoint()) {
    boards_ = std::make_unique<BoardManager>(loop_, cfg_.hardware.boards, algo_, *listeners_.board_endpoint());
    boards_->start();
  }
  if (cfg_.economics.enabled) economics_ = std::make_unique<FarmEconomics>(algo_, cfg_.economics);
  publish_snapshot();
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->on_tick(); }, 1000, 1000);
  return 0;
}

// ---------------------------------------------------------------- miners

void Gateway::on_miner(Miner* m) {
  uint64_t id = next_session_id_++;
  m->session = std::make_unique<DownstreamSession>(ctx_, id, now());
  m->connected_at = m->last_message_at = now();
  m->msg_tokens = cfg_.limits.messages_per_second * 5;
  m->msg_tokens_at = now();
  miners_.emplace(id, m);
  log::debug("miner_connected").kv("session", id).kv("peer", m->peer);
}

void Gateway::miner_bytes(Miner* m, std::string_view bytes) {
  if (m->closing) return;
  if (m->edge != Miner::Edge::kOpen) return edge_.read(m, bytes, now());
  if (m->tls) return reader_.cipher(m, bytes, now());
  reader_.read(m, bytes, now());
}

void Gateway::punish(const Address& a, Violation v) { edge_.punish(a, v, now()); }

void Gateway::share_refused(Miner* m, const SessionEvent& ev) {
  const auto& ws = m->session->workers();
  // Counted under the worker the share named when this session authorized
  // it, else under the session's first worker: a peer cannot make us keep
  // counters for names it invents. The row is taken before a move below
  // changes the miner's pool connection.
  std::optional<uint32_t> worker;
  if (auto w = std::find(ws.begin(), ws.end(), ev.auth.user); w != ws.end()) {
    worker = m->worker_ids[size_t(w - ws.begin())];
  } else if (!ws.empty()) {
    worker = m->worker_ids.front();
  }
  LedgerCounts* lc = worker ? ledger_row(*worker, upstream_->router().session_link(m->session->id())) : nullptr;
  if (m->checking_move && ev.error.code != ErrorCode::kStaleJob && ev.error.code != ErrorCode::kDuplicateShare)
    note_share_after_move(m, false);
  if (ev.error.code != ErrorCode::kStaleJob) punish(m->addr, Violation::kInvalidShare);
  if (worker) accounts_.rejected(*worker, lc, ev.error.code);
}

void Gateway::handle_authorize(Miner* m, const RpcId& id, const AuthorizeParams& auth) {
  // The placement strategy says who answers: the pool (passthrough: the
  // miner's own name) or hashgate (aggregation).
  if (upstream_->router().authorize(m->session->id(), *m->session, m->preferred_pool, id, auth, now()))
    return run_routing();
  authorize_miner(m, id, auth.user, true, {});
  log::info("miner_authorized").kv("session", m->session->id()).kv("peer", m->peer).kv("worker", auth.user);
}

void Gateway::authorize_miner(Miner* m, const RpcId& id, const std::string& user, bool ok, std::string_view message) {
  const size_t before = m->session->workers().size();
  if (ok && before == 0) {
    // A worker that reconnects starts where it settled last time, not at
    // vardiff.initial (a fast miner would flood at it).
    if (auto w = accounts_.find(user)) {
      const double d = row(*w).settled_difficulty;
      if (d > 0) m->session->resume_difficulty(d, now());
    }
  }
  m->session->authorize_result(id, user, ok, message);
  if (m->session->workers().size() > before) {
    m->worker_ids.push_back(accounts_.worker_id(m->session->workers().back(), now()));
    apply_profile(m);  // the worker is known now: its safe variant if it was caught before
    WorkerStats& st = accounts_.join(m->worker_ids.back(), m->session->agent());
    if (const FirmwareProfile* p = m->session->profile()) st.profile = uint16_t(firmware_.index(p));
    st.address = m->addr;  // economics groups by CIDR
    st.has_address = true;
  }
}

size_t Gateway::link_pool(uint32_t link_id) const { return upstream_->router().link_pool(link_id); }

void Gateway::handle_share(Miner* m, ShareWork& work) {
  // Hashed with the rest of this loop iteration's shares (the share pipeline).
  const uint32_t worker = m->worker_ids[work.worker];
  upstream_->router().share_hashing(work.job->link_id);
  shares_.add(std::move(work), worker);
}

void Gateway::finish_share(ShareWork& work, uint32_t worker, const Hash256& hash) {
  const uint32_t link = work.job->link_id;
  judge_share(work, worker, hash);
  upstream_->router().share_judged(link, now());  // a passthrough link whose miner left may go now
  run_routing();
}

void Gateway::judge_share(ShareWork& work, uint32_t worker, const Hash256& hash) {
  auto mit = miners_.find(work.session_id);
  Miner* m = mit == miners_.end() ? nullptr : mit->second;
  ShareVerdict v;
  if (m) {
    v = m->session->complete_share(work, hash, now());
    flush(m);
    if (m->checking_move && work.job->link_id == upstream_->router().session_link(m->session->id()))
      note_share_after_move(m, v.accepted);
  } else {
    // The miner left while its share was hashed: the share is still good work.
    v.accepted = meets(hash, target_from_difficulty(algo_, work.difficulty));
    v.forward = meets(hash, work.job->pool_target);
    v.block = meets(hash, work.job->network_target);
  }
  WorkerStats& st = stats(worker);
  const std::string& name = worker_name(worker);
  LedgerCounts* lc = ledger_row(worker, work.job->link_id);
  if (!v.accepted && m) m->msg_tokens -= 1;  // an invalid share costs its message after all
  if (!v.accepted) {
    ++st.rejected;
    ++st.rejected_low_difficulty;
    if (lc) ++lc->rejected_low_difficulty;
    log::debug("share_rejected").kv("session", work.session_id).kv("worker", name).kv("code", 23).kv("reason", "low difficulty share");
    return;
  }
  accounts_.accepted(st, work.difficulty, v.block, now(), unix_now());
  const size_t pool = link_pool(work.job->link_id);
  const bool live_link = upstream_->router().link_exists(work.job->link_id);
  if (live_link) upstream_->counters(pool).hashgate_accepted_difficulty += work.difficulty;
  if (lc) {
    ++lc->accepted;
    lc->accepted_difficulty += work.difficulty;
    lc->blocks += v.block;
  }
  if (live_link) upstream_->counters(pool).accepted_rate.add(now(), work.difficulty);
  if (v.block) {
    log::warn("block_candidate")
        .kv("session", work.session_id)
        .kv("worker", name)
        .kv("job", work.job->id)
        .kv("pool_job", work.job->params.job_id)
        .kv("hash", hex_reversed(sha256d_header(work.header.data())));
    // forward_share() gives the share the next token: its answer names the row.
    accounts_.ledger_block(worker, link_pool(work.job->link_id), work, upstream_->router().next_token(), unix_now());
  }
  if (v.forward || v.block) forward_share(work.session_id, worker, work, v.block);
}

bool Gateway::owes_answer(const Miner* m) const {
  if (m->session->wants_upstream()) return true;  // its subscribe or configure waits for a pool
  return upstream_->router().owes_answer(m->session->id());  // passthrough: an authorize the pool has not answered
}

void Gateway::apply_profile(Miner* m) {
  const size_t listener = m->listener ? size_t(m->listener->cfg - cfg_.listeners.data()) : SIZE_MAX;
  firmware_.apply(*m->session, listener, m->addr);
}

void Gateway::note_share_after_move(Miner* m, bool good) {
  if (good) {
    m->checking_move = false;  // it works in the new space
    return;
  }
  if (++m->bad_after_move < kBadSharesAfterMove) return;
  // Its shares still hash as the old space: the firmware took the
  // subscription but ignores the change. Remembered by worker name (the
  // reconnected session is new), and this one is moved by reconnect now.
  m->checking_move = false;
  const auto& ws = m->session->workers();
  firmware_.caught_ignoring_set_extranonce(*m->session, m->peer);
  apply_profile(m);  // the safe variant from now on
  log::warn("miner_ignores_set_extranonce")
      .kv("session", m->session->id())
      .kv("peer", m->peer)
      .kv("worker", ws.empty() ? std::string("-") : ws.front())
      .kv("bad_shares", m->bad_after_move)
      .kv("action", "client.reconnect now and from now on");
  upstream_->router().move_again(m->session->id(), now());
  run_routing();
}

void Gateway::forward_share(uint64_t session_id, uint32_t worker, const ShareWork& work, bool block) {
  if (upstream_->router().forward_share(session_id, worker, worker_name(worker), work, block, uv_hrtime(), now())) {
    ++stats(worker).forwarded;
    if (LedgerCounts* lc = ledger_row(worker, work.job->link_id)) {
      ++lc->forwarded;
      lc->forwarded_difficulty += work.job->pool_difficulty;
    }
  }
  run_routing();
}

void Gateway::release_binding(Miner* m) {
  // Its slice is free again; a passthrough miner's own connection stays
  // until the shares it sent before leaving are hashed and answered.
  upstream_->router().session_closed(m->session->id());
}

void Gateway::close_miner(Miner* m, const std::string& reason, const char* reason_class) {
  if (m->closing) return;
  m->closing = true;
  edge_.count_closed(reason_class);
  edge_.on_close(m);
  // Connections closed for abuse are logged under their own, rate-limited event.
  static const std::set<std::string_view> kAbuse = {"banned", "bad_protocol", "bad_connect", "slow_client",
                                                    "rate_exceeded", "slow_reader", "tls_handshake",
                                                    "proxy_header", "proxied_refused"};
  log::info(kAbuse.count(reason_class) ? "session_dropped" : "session_closed")
      .kv("session", m->session->id())
      .kv("peer", m->peer)
      .kv("worker", m->session->workers().empty() ? std::string("-") : m->session->workers().front())
      .kv("reason", reason);
  firmware_.left(*m->session);
  for (uint32_t w : m->worker_ids)
    accounts_.leave(w, m->session->difficulty_settled() ? std::optional<double>(m->session->difficulty()) : std::nullopt,
                    now());
  release_binding(m);
  miners_.erase(m->session->id());
  // Queued bytes still go out (for a while) unless the close is an abort.
  writer_.shut(m, now());
  run_routing();  // what the router did (a passthrough link retired); then the stop, if stopping
  if (life_.stopping()) maybe_finish_stop();
}

// ---------------------------------------------------------------- timers, stop

void Gateway::on_tick() {
  double t = now();
  // Published before this tick's ledger flush: the queue gauge then counts
  // rows the writer has had a whole tick to write (a backlog), not the batch
  // handed over a moment ago.
  publish_snapshot();
  if (accounts_.ledger_due(unix_now())) accounts_.flush_ledger(unix_now());
  if (writer_.lingering()) writer_.close_lingering(now());
  log::flush_suppressed();
  upstream_->poll(t);  // the test pools' jobs
  MinerReader::Due due;
  reader_.sweep(miners_, t, [this](const Miner* m) { return owes_answer(m); }, due);
  // Told to reconnect and still here: the last resort.
  for (Miner* m : due.overdue) {
    // Its profile said it follows client.reconnect: from now on its workers
    // are moved by a close (every firmware connects again at once).
    firmware_.caught_ignoring_reconnect(*m->session, m->peer);
    close_miner(m, "did not follow client.reconnect", "reconnect_ignored");
  }
  for (auto& [m, why] : due.slow) {
    // Still waiting for the PROXY header: m->addr is the trusted balancer's.
    if (m->edge != Miner::Edge::kProxy) punish(m->addr, Violation::kSlowClient);
    close_miner(m, why, "slow_client");  // a ban may have closed it already: close_miner ignores that
  }
  for (auto& [m, why] : due.idle) close_miner(m, why, "idle");
  edge_.tick(t);
  if (life_.stopping()) return;
  for (auto& [pool, why] : integrity_->tick(t)) upstream_->router().fail_pool(pool, why, t);
  if (++ticks_ % 10 == 0) accounts_.age(now(), unix_now());
  // Failback, rebalancing by weight, sessions waiting for a usable pool.
  upstream_->tick(t);
}

void Gateway::post_command(AdminCommand c) {
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    commands_.push_back(std::move(c));
  }
  uv_async_send(&commands_async_);
}

void Gateway::run_commands() {
  std::vector<AdminCommand> cs;
  {
    std::lock_guard<std::mutex> g(commands_mu_);
    cs.swap(commands_);
  }
  for (const AdminCommand& c : cs) {
    if (c.kind == AdminCommand::Kind::kUnban) {
      edge_.unban(c.target);
      continue;
    }
    for (size_t i = 0; i < cfg_.pools.size(); ++i)
      if (cfg_.pools[i].name == c.target)
        upstream_->router().set_pool_enabled(i, c.kind == AdminCommand::Kind::kPoolEnable, now());
  }
  run_routing();
  publish_snapshot();
}

void Gateway::reload_failed(const std::string& why) {
  ++reloads_failed_;
  last_reload_error_ = why;
  log::error("config_reload_failed").kv("error", why).kv("action", "the running config stays");
  publish_snapshot();
}

void Gateway::reload(conf::Config next, std::vector<std::string>& notes) {
  // What cannot change live is kept from the running config (proxy/reload.h).
  keep_restart_only(cfg_, next, notes);

  const bool level_changed = next.logging.level != cfg_.logging.level;
  cfg_ = std::move(next);
  listeners_.rebind_config(cfg_.listeners);  // the same listeners (kept above)
  // Pools: the same name, URL, credentials and TLS settings keep their
  // state and connections; the sessions of removed pools move like a
  // failover, without a breaker charge (routing/pool_policy.cc).
  upstream_->reload(cfg_, router_config(cfg_, firmware_.book().fallback(), 0), notes);
  run_routing();
  ctx_.vardiff = VardiffConfig{cfg_.vardiff.initial, cfg_.vardiff.min, cfg_.vardiff.max,
                               cfg_.vardiff.target_share_seconds};
  ctx_.max_line = cfg_.limits.max_line_bytes;
  edge_.configure();
  if (!cfg_.economics.enabled) economics_.reset();
  else if (economics_) economics_->configure(cfg_.economics);
  else economics_ = std::make_unique<FarmEconomics>(algo_, cfg_.economics);
  integrity_ = std::make_unique<JobIntegrity>(cfg_);  // tips are learned again from the next jobs
  integrity_->start();
  if (level_changed) log::set_level(cfg_.logging.level);
  ++reloads_ok_;
  last_reload_error_.clear();
  log::info("config_reloaded")
      .kv("pools", uint64_t(cfg_.pools.size()))
      .kv("active_pool", cfg_.pools[upstream_->router().active_pool()].name)
      .kv("kept_until_restart", uint64_t(notes.size()));
  for (const std::string& n : notes) log::warn("config_reload_note").kv("note", n);
  // A better pool may be usable now; new pools get their connections.
  upstream_->router().refresh(now());
  run_routing();
  publish_snapshot();
}

void Gateway::stop(const char* why) {
  const auto action = life_.stop(!miners_.empty(), now(), cfg_.admin.drain_seconds);
  if (action == Lifecycle::StopAction::kNone) return;
  if (action == Lifecycle::StopAction::kEndDrain) return end_drain();
  upstream_->router().stop();  // no more placing or moving; connections stay for the answers due
  // Local boards stop first: their shares in flight are answered like any miner's.
  if (boards_) boards_->stop();
  log::info("stopping").kv("reason", why).kv("miners", uint64_t(miners_.size()))
      .kv("shares_awaiting_pool", uint64_t(upstream_->router().forwards_pending()));
  listeners_.close();
  if (action == Lifecycle::StopAction::kFinish) return finish_shares();
  // Drain: every miner is told to reconnect (a load balancer sends it to
  // another instance) and is served until it leaves or the drain time ends.
  for (auto& [id, m] : miners_) {
    if (!m->session->subscribed()) continue;
    const auto to = reconnect_target(false, std::nullopt, m->listener ? m->listener->cfg->advertise : std::nullopt,
                                     local_endpoint(&m->tcp));
    m->close_at = 0;
    m->session->send_reconnect(to ? to->host : "", to ? to->port : 0, 0);
    flush(m);
  }
  log::info("drain_started").kv("miners", uint64_t(miners_.size())).kv("seconds", cfg_.admin.drain_seconds);
  publish_snapshot();  // /readyz says no from now on
  uv_timer_start(
      &stop_timer_,
      [](uv_timer_t* t) {
        auto* gw = static_cast<Gateway*>(t->data);
        if (gw->life_.drain_over(!gw->miners_.empty(), gw->now())) gw->end_drain();
      },
      100, 100);
}

void Gateway::end_drain() {
  const size_t miners_left = miners_.size();
  if (!life_.end_drain(now())) return;
  log::info("drain_finished").kv("miners_left", uint64_t(miners_left))
      .kv("shares_awaiting_pool", uint64_t(upstream_->router().forwards_pending()));
  finish_shares();
}

void Gateway::finish_shares() {
  // No new shares; the ones already received are hashed, answered and,
  // if good, forwarded before the miners are closed.
  for (auto& [id, m] : miners_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&m->tcp));
  shares_.flush();
  uv_timer_start(&stop_timer_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->maybe_finish_stop(); }, 100, 100);
  maybe_finish_stop();
}

void Gateway::maybe_finish_stop() {
  if (life_.close_miners(shares_.in_flight(), now())) {
    std::vector<Miner*> ms;
    for (auto& [id, m] : miners_) ms.push_back(m);
    // close_miner re-enters this function, which may finish the stop there.
    for (Miner* m : ms) close_miner(m, "hashgate stopping", "shutdown");
  }
  if (!life_.finish(upstream_->router().forwards_pending(), now())) return;
  if (upstream_->router().forwards_pending())
    log::warn("stop_deadline").kv("shares_without_pool_answer", uint64_t(upstream_->router().forwards_pending()));
  accounts_.close_ledger(5, unix_now());
  log_summary();
  upstream_->router().close_all(now());
  upstream_->close();  // every pool connection and the routing timer
  shares_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  // Miners with bytes still queued keep the stop timer (every 100 ms) until
  // they are gone or their linger time is over.
  uv_timer_start(
      &stop_timer_,
      [](uv_timer_t* t) {
        auto* gw = static_cast<Gateway*>(t->data);
        gw->writer_.close_lingering(gw->now());
        if (!gw->writer_.lingering()) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      0, 100);
  uv_close(reinterpret_cast<uv_handle_t*>(&commands_async_), nullptr);
}

void Gateway::log_summary() {
  if (boards_) boards_->log_summary();
  accounts_.log_summary();
  for (size_t i = 0; i < cfg_.pools.size(); ++i)
    log::info("pool_stats")
        .kv("pool", cfg_.pools[i].name)
        .kv("accepted_difficulty", upstream_->counters(i).accepted_difficulty)
        .kv("breaker", upstream_->router().breaker(i).state_name());
  for (size_t i = 0; i < cfg_.pools.size(); ++i) {
    const TestPool* tp = upstream_->test_pool(i);
    if (!tp) continue;
    const TestPoolStats& s = tp->stats();
    log::info("test_pool_stats")
        .kv("pool", cfg_.pools[i].name)
        .kv("accepted", s.accepted)
        .kv("rejected", s.rejected)
        .kv("stale", s.stale)
        .kv("duplicate", s.duplicate)
        .kv("low_difficulty", s.low_difficulty)
        .kv("blocks", s.blocks)
        .kv("jobs", s.jobs);
  }
}

}  // namespace hashgate
