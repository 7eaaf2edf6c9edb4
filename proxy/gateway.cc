#include "proxy/gateway.h"

#include <openssl/rand.h>

#include <algorithm>
#include <bit>
#include <chrono>
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
// Passthrough authorizes kept for a miner while no pool connection is open.
constexpr size_t kMaxParkedAuthorizes = 64;
// A lost pool connection that had a session id: its miners that cannot move
// in place wait this long for a resumed subscription before client.reconnect.
constexpr double kResumeWindowSeconds = 1.5;

uint64_t random_u64() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) v = std::random_device{}();
  return v;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double mono_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Hashes a share of difficulty 1 stands for: 2^32 for sha256d; scrypt's
// difficulty 1 is 65536 times easier.
double hashes_per_difficulty(Algorithm a) { return a == Algorithm::kScrypt ? 65536.0 : 4294967296.0; }

}  // namespace

struct Gateway::PoolState {
  explicit PoolState(const BreakerConfig& b) : breaker(b) {}
  const conf::Pool* cfg = nullptr;
  conf::Endpoint endpoint;      // where to connect: the config's, or where the pool sent us
  double accepted_difficulty = 0;  // pool-accepted, for the weight split and the summary
  // Shares accepted by hashgate on this pool's jobs, at the session difficulty
  // (beside accepted_difficulty, what the pool credited: equal when no
  // session mines above the pool's difficulty).
  double hashgate_accepted_difficulty = 0;
  double window_accepted = 0;      // since the last rebalance
  double not_before = 0;        // a pool's client.reconnect asked us to wait
  std::unique_ptr<TestPool> test_pool;
  std::shared_ptr<TlsContext> tls;  // stratum+ssl://
  CircuitBreaker breaker;
  // Subscriptions of lost connections, offered back to the pool once each.
  struct Resumable {
    std::string session_id;
    Bytes extranonce1;
    uint32_t extranonce2_size = 0;
    double until = 0;
  };
  std::vector<Resumable> resumable;
  bool enabled = true;  // the admin API can take a pool out of use
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t jobs_coalesced = 0;  // never sent: a newer job replaced them (notify flood)
  RateEstimator rate;
  RateEstimator accepted_rate;  // difficulty hashgate accepted on this pool's jobs
};

struct Gateway::Link final : TransportOwner {
  Gateway* gw = nullptr;
  uint32_t id = 0;
  size_t pool = 0;
  Transport* transport = nullptr;
  std::unique_ptr<UpstreamSession> session;
  std::optional<PrefixAllocator> prefixes;
  std::vector<uint64_t> waiting;            // sessions waiting for the subscription
  std::vector<uint64_t> movers;             // subscribed sessions moving here once it has a job
  double retire_at = 0;                     // a drained connection (planned move) closes then
  std::unordered_set<uint64_t> sessions;    // bound sessions
  uint64_t owner_session = 0;               // passthrough: the one miner
  std::optional<PoolState::Resumable> resuming;  // the subscription this connection asked back
  bool owner_left = false;                  // passthrough: kept only for the answers still due
  unsigned hashing = 0;                     // shares on this link's jobs being hashed
  std::vector<std::pair<RpcId, AuthorizeParams>> pending_auth;  // passthrough
  std::vector<RpcId> auth_ids;              // passthrough: ids waiting for the pool's answer
  uv_timer_t connect_timer;
  double opened_at = 0;
  double last_job_at = 0;  // 0: no job yet
  unsigned malformed = 0;  // malformed messages since the last good one
  // Malformed notifies since the last valid job: other good messages (answers
  // to shares) say nothing about whether the pool's jobs can be used.
  unsigned malformed_notifies = 0;
  NotifyThrottle throttle;  // a notify flood reaches miners thinned
  bool redirected = false;  // connected where a client.reconnect sent the pool
  uint64_t answers = 0;    // pool answers to forwarded shares, the last 50 as bits
  uint64_t reject_bits = 0;
  bool connected = false;
  bool subscribed = false;
  bool dead = false;

  void on_connected() override { gw->link_connected(this); }
  void on_data(std::string_view b) override { gw->link_data(this, b); }
  void on_disconnected(const std::string& r) override {
    transport = nullptr;  // it is closing itself
    gw->link_lost(this, r, Loss::kDropped);
  }
};

Gateway::Gateway(uv_loop_t* loop, conf::Config cfg)
    : loop_(loop),
      cfg_(std::move(cfg)),
      algo_(*parse_algorithm(cfg_.algorithm)),
      miner_parser_(cfg_.limits.max_line_bytes),
      pool_parser_(65536),
      jobs_(algo_),
      accounts_(cfg_, [this](size_t pool) { return ready_link(pool, false) != nullptr; }),
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
  breaker_cfg_ = BreakerConfig{cfg_.failover.failures_to_open, cfg_.failover.backoff_initial_seconds,
                               cfg_.failover.backoff_max_seconds, 0.2};
  for (size_t i = 0; i < cfg_.pools.size(); ++i) pool_order_.push_back(i);
  std::stable_sort(pool_order_.begin(), pool_order_.end(),
                   [&](size_t a, size_t b) { return cfg_.pools[a].priority < cfg_.pools[b].priority; });
  active_pool_ = pool_order_.front();
  for (const conf::Pool& p : cfg_.pools) pools_.push_back(make_pool_state(p));
  integrity_ = std::make_unique<JobIntegrity>(cfg_);
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  uv_timer_init(loop_, &link_check_);
  link_check_.data = this;
  uv_timer_init(loop_, &job_release_);
  job_release_.data = this;
  uv_timer_init(loop_, &stop_timer_);
  stop_timer_.data = this;
  uv_async_init(loop_, &commands_async_, [](uv_async_t* a) { static_cast<Gateway*>(a->data)->run_commands(); });
  commands_async_.data = this;
  started_unix_ = unix_now();
  submit_rtt_ = Histogram({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
}

Gateway::~Gateway() = default;

std::unique_ptr<Gateway::PoolState> Gateway::make_pool_state(const conf::Pool& p) {
  auto st = std::make_unique<PoolState>(breaker_cfg_);
  st->cfg = &p;
  st->endpoint = p.endpoint;
  if (p.scheme == conf::PoolScheme::kTest) {
    TestPoolOptions o;
    o.difficulty = p.test_difficulty > 0 ? p.test_difficulty : cfg_.vardiff.min;
    o.job_interval_seconds = p.test_job_interval;
    o.extranonce2_size = p.test_extranonce2_size;
    st->test_pool = std::make_unique<TestPool>(algo_, o, random_u64(), now());
  }
  return st;
}

bool Gateway::setup_pool_tls(PoolState& ps, std::string& error) {
  const conf::Pool& p = *ps.cfg;
  if (!p.tls) return true;
  TlsClientOptions o;
  o.ca_file = p.tls->ca;
  o.verify = p.tls->verify;
  o.pins = p.tls->pins;
  ps.tls = TlsContext::client(o, error);
  if (!ps.tls) error = "pool " + p.name + ": " + error;
  return ps.tls != nullptr;
}

int Gateway::start(std::string& error) {
  if (!shares_.start(cfg_.hashing, error)) return UV_EINVAL;
  fanout_.start(cfg_.fanout.threads);
  for (auto& ps : pools_)
    if (!setup_pool_tls(*ps, error)) return UV_EINVAL;
  if (!accounts_.open_ledger(error, unix_now())) return UV_EINVAL;
  if (int rc = listeners_.start(cfg_.listeners, error); rc != 0) return rc;
  // Aggregation keeps one connection to the pool ready, so the first miner
  // gets work at once. Passthrough connects per miner.
  life_.listeners_up();
  integrity_->start();
  if (cfg_.aggregation.mode == conf::AggregationMode::kAggregate) maintain_links();
  if (!cfg_.hardware.boards.empty() && listeners_.board_endpoint()) {
    boards_ = std::make_unique<BoardManager>(loop_, cfg_.hardware.boards, algo_, *listeners_.board_endpoint());
    boards_->start();
  }
  if (cfg_.economics.enabled) economics_ = std::make_unique<FarmEconomics>(algo_, cfg_.economics);
  publish_snapshot();
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->on_tick(); }, 1000, 1000);
  uv_timer_start(
      &link_check_,
      [](uv_timer_t* t) {
        auto* gw = static_cast<Gateway*>(t->data);
        gw->check_link_timeouts();
        gw->maintain_links();  // attempts start within 250 ms of the breaker's retry time
      },
      250, 250);
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
  LedgerCounts* lc = worker ? ledger_row(*worker, m->link_id) : nullptr;
  if (m->checking_move && ev.error.code != ErrorCode::kStaleJob && ev.error.code != ErrorCode::kDuplicateShare)
    note_share_after_move(m, false);
  if (ev.error.code != ErrorCode::kStaleJob) punish(m->addr, Violation::kInvalidShare);
  if (worker) accounts_.rejected(*worker, lc, ev.error.code);
}

void Gateway::handle_authorize(Miner* m, const RpcId& id, const AuthorizeParams& auth) {
  if (cfg_.aggregation.mode == conf::AggregationMode::kAggregate) {
    authorize_miner(m, id, auth.user, true, {});
    log::info("miner_authorized").kv("session", m->session->id()).kv("peer", m->peer).kv("worker", auth.user);
    return;
  }
  // Passthrough: the pool decides, under the miner's own name.
  auto it = links_.find(m->link_id);
  if (it == links_.end()) {
    // Authorize before subscribe: wait for the connection that subscribe opens.
    assign_upstream(m);
    it = links_.find(m->link_id);
    if (it == links_.end()) {
      // No pool may be tried now: the authorize waits with the miner for
      // the connection it gets when one can (hashgate's outage, not a refusal).
      auto& parked = parked_auth_[m->session->id()];
      if (parked.size() >= kMaxParkedAuthorizes) return authorize_miner(m, id, auth.user, false, "too many authorizes");
      parked.emplace_back(id, auth);
      return;
    }
  }
  Link* l = it->second;
  if (l->subscribed) {
    l->auth_ids.push_back(id);
    l->session->authorize(auth.user, auth.password);
    flush(l);
  } else {
    l->pending_auth.emplace_back(id, auth);
  }
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

size_t Gateway::link_pool(uint32_t link_id) const {
  auto it = links_.find(link_id);
  return it == links_.end() ? active_pool_ : it->second->pool;
}

void Gateway::handle_share(Miner* m, ShareWork& work) {
  // Hashed with the rest of this loop iteration's shares (the share pipeline).
  const uint32_t worker = m->worker_ids[work.worker];
  if (auto it = links_.find(work.job->link_id); it != links_.end()) ++it->second->hashing;
  shares_.add(std::move(work), worker);
}

void Gateway::finish_share(ShareWork& work, uint32_t worker, const Hash256& hash) {
  Link* link = nullptr;
  if (auto it = links_.find(work.job->link_id); it != links_.end()) {
    link = it->second;
    --link->hashing;
  }
  judge_share(work, worker, hash);
  if (link) retire_if_done(link);
}

void Gateway::judge_share(ShareWork& work, uint32_t worker, const Hash256& hash) {
  auto mit = miners_.find(work.session_id);
  Miner* m = mit == miners_.end() ? nullptr : mit->second;
  ShareVerdict v;
  if (m) {
    v = m->session->complete_share(work, hash, now());
    flush(m);
    if (m->checking_move && work.job->link_id == m->link_id) note_share_after_move(m, v.accepted);
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
  if (auto it = links_.find(work.job->link_id); it != links_.end())
    pools_[it->second->pool]->hashgate_accepted_difficulty += work.difficulty;
  if (lc) {
    ++lc->accepted;
    lc->accepted_difficulty += work.difficulty;
    lc->blocks += v.block;
  }
  if (auto lit = links_.find(work.job->link_id); lit != links_.end())
    pools_[lit->second->pool]->accepted_rate.add(now(), work.difficulty);
  if (v.block) {
    log::warn("block_candidate")
        .kv("session", work.session_id)
        .kv("worker", name)
        .kv("job", work.job->id)
        .kv("pool_job", work.job->params.job_id)
        .kv("hash", hex_reversed(sha256d_header(work.header.data())));
    // forward_share() gives the share the next token: its answer names the row.
    accounts_.ledger_block(worker, link_pool(work.job->link_id), work, next_token_, unix_now());
  }
  if (v.forward || v.block) forward_share(work.session_id, worker, work, v.block);
}

bool Gateway::owes_answer(const Miner* m) const {
  if (m->session->wants_upstream()) return true;  // its subscribe or configure waits for a pool
  if (parked_auth_.count(m->session->id())) return true;
  auto it = links_.find(m->link_id);
  return it != links_.end() && it->second->owner_session == m->session->id() &&
         (!it->second->pending_auth.empty() || !it->second->auth_ids.empty());
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
  unbind_miner(m);
  move_session(m);
}

void Gateway::forward_share(uint64_t session_id, uint32_t worker, const ShareWork& work, bool block) {
  auto it = links_.find(work.job->link_id);
  // A job retired while the share was checked is stale at the pool: keep it.
  if (it == links_.end() || !it->second->subscribed || !jobs_.find(work.job->seq)) {
    log::info("share_not_forwarded").kv("session", session_id).kv("worker", worker_name(worker))
        .kv("reason", "job no longer valid at the pool");
    return;
  }
  Link* l = it->second;
  if (work.version_bits && (*work.version_bits & ~l->session->version_mask())) {
    // Checked under a mask the pool has since narrowed: it would reject it.
    log::info("share_not_forwarded").kv("session", session_id).kv("worker", worker_name(worker))
        .kv("reason", "version bits outside the pool's new mask");
    return;
  }
  const conf::Pool& pool = *pools_[l->pool]->cfg;
  const std::string& up_worker = cfg_.aggregation.mode == conf::AggregationMode::kAggregate ? pool.user : worker_name(worker);
  uint64_t token = next_token_++;
  forwards_.emplace(token, Forward{session_id, worker, l->id, block, work.job->pool_difficulty, uv_hrtime()});
  l->session->submit(token, up_worker, work.job->params.job_id,
                     std::span<const uint8_t>(work.upstream_extranonce2.data(), work.upstream_extranonce2_size),
                     work.ntime, work.nonce, work.version_bits, now());
  ++stats(worker).forwarded;
  if (LedgerCounts* lc = ledger_row(worker, l->id)) {
    ++lc->forwarded;
    lc->forwarded_difficulty += work.job->pool_difficulty;
  }
  flush(l);
}

void Gateway::release_binding(Miner* m) {
  auto it = links_.find(m->link_id);
  if (it != links_.end()) {
    Link* l = it->second;
    l->sessions.erase(m->session->id());
    l->waiting.erase(std::remove(l->waiting.begin(), l->waiting.end(), m->session->id()), l->waiting.end());
    if (m->has_prefix && l->prefixes) l->prefixes->release(m->prefix);
    // Passthrough: the connection belongs to this miner alone. It stays
    // until the shares the miner sent before leaving are hashed and answered.
    if (l->owner_session == m->session->id() && !l->dead) {
      l->owner_left = true;
      retire_if_done(l);
    }
  }
  m->link_id = 0;
  m->has_prefix = false;
}

void Gateway::retire_if_done(Link* l) {
  if (l->owner_left && !l->dead && l->hashing == 0 && l->session->pending_submits() == 0) dispose_link(l);
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
  orphans_.erase(m->session->id());
  parked_auth_.erase(m->session->id());
  miners_.erase(m->session->id());
  // Queued bytes still go out (for a while) unless the close is an abort.
  writer_.shut(m, now());
  if (life_.stopping()) maybe_finish_stop();
}

// ---------------------------------------------------------------- upstream

void Gateway::assign_upstream(Miner* m) {
  if (m->link_id) return;
  const uint64_t sid = m->session->id();
  auto pool = serving_pool();
  if (cfg_.aggregation.mode == conf::AggregationMode::kPassthrough) {
    // Each miner has its own connection: the best pool that may be tried.
    for (size_t p : pool_order_) {
      PoolState& ps = *pools_[p];
      if (!ps.enabled || !ps.breaker.allow_attempt(now())) continue;
      ps.breaker.on_attempt(now());
      Link* l = open_link(p, sid);
      m->link_id = l->id;
      l->waiting.push_back(sid);
      // Authorizes that waited for a pool (or whose connection was lost
      // before it subscribed) go to this connection.
      if (auto pa = parked_auth_.find(sid); pa != parked_auth_.end()) {
        l->pending_auth = std::move(pa->second);
        parked_auth_.erase(pa);
      }
      return;
    }
    orphans_.insert(sid);
    return;
  }
  // A miner that came through CONNECT to a pool's address goes to that pool
  // while it is usable (else it fails over like the others); the others are
  // placed by weight (which counts the placement in the pools' loads).
  if (m->preferred_pool && *m->preferred_pool < pools_.size() && pools_[*m->preferred_pool]->enabled &&
      pools_[*m->preferred_pool]->breaker.state() != CircuitBreaker::State::kOpen) {
    pool = *m->preferred_pool;
  } else if (pool) {
    pool = weighted_pick(*pool, m->session->difficulty());
  }
  if (pool) {
    if (Link* l = ready_link(*pool, true)) {
      bind_session(l, m);
      return;
    }
  }
  // No ready connection with room: take one that is subscribed but has no
  // job yet (the session gets the first one), or wait on one being set up,
  // or on a new one if the pool may be tried now.
  size_t target_pool = pool.value_or(active_pool_);
  for (auto& [id, l] : links_) {
    if (l->dead || l->pool != target_pool || l->owner_session) continue;
    if (l->subscribed && !l->prefixes->full()) {
      bind_session(l, m);
      return;
    }
    if (!l->subscribed && l->waiting.size() < cfg_.aggregation.sessions_per_upstream) {
      m->link_id = l->id;
      l->waiting.push_back(sid);
      return;
    }
  }
  PoolState& ps = *pools_[target_pool];
  if (ps.enabled && (pool || ps.breaker.allow_attempt(now()))) {
    ps.breaker.on_attempt(now());
    Link* l = open_link(target_pool, 0);
    m->link_id = l->id;
    l->waiting.push_back(sid);
    return;
  }
  orphans_.insert(sid);
}

bool Gateway::link_ready(const Link* l) const {
  return !l->dead && l->subscribed && l->last_job_at > 0 && pools_[l->pool]->enabled;
}

Gateway::Link* Gateway::ready_link(size_t pool, bool need_room) const {
  for (const auto& [id, l] : links_)
    if (l->pool == pool && !l->owner_session && link_ready(l) && (!need_room || !l->prefixes->full())) return l;
  return nullptr;
}

std::optional<size_t> Gateway::serving_pool() {
  // Stay on the active pool while it works; fail back to a better one only
  // once it has been healthy for failback_after_seconds.
  bool active_ok = ready_link(active_pool_, false) != nullptr;
  for (size_t p : pool_order_) {
    // Only strictly better pools: equal priorities share by weight instead.
    if (cfg_.pools[p].priority >= cfg_.pools[active_pool_].priority) break;
    const CircuitBreaker& b = pools_[p]->breaker;
    bool healthy_long = b.state() == CircuitBreaker::State::kClosed && b.healthy_since() >= 0 &&
                        now() - b.healthy_since() >= cfg_.failover.failback_after_seconds;
    if (ready_link(p, false) && (!active_ok || healthy_long)) {
      log::warn(active_ok ? "pool_failback" : "pool_failover")
          .kv("from", pools_[active_pool_]->cfg->name)
          .kv("to", pools_[p]->cfg->name);
      size_t old = active_pool_;
      active_pool_ = p;
      accounts_.count_failover(old);
      // Miners still on the old pool move now (failback) or already have.
      std::vector<Miner*> movers;
      for (auto& [id, l] : links_)
        if (l->pool == old)
          for (uint64_t sid : l->sessions)
            if (auto it = miners_.find(sid); it != miners_.end()) movers.push_back(it->second);
      for (Miner* m : movers) {
        unbind_miner(m);
        move_session(m);
      }
      return p;
    }
  }
  if (active_ok) return active_pool_;
  for (size_t p : pool_order_) {
    if (p != active_pool_ && ready_link(p, false)) {
      log::warn("pool_failover").kv("from", pools_[active_pool_]->cfg->name).kv("to", pools_[p]->cfg->name);
      accounts_.count_failover(active_pool_);
      active_pool_ = p;
      return p;
    }
  }
  return std::nullopt;
}

void Gateway::count_pool_loads() {
  pool_loads_.assign(pools_.size(), 0);
  for (const auto& [id, l] : links_)
    for (uint64_t sid : l->sessions)
      if (auto it = miners_.find(sid); it != miners_.end()) pool_loads_[l->pool] += it->second->session->difficulty();
  pool_loads_at_ = now();
}

size_t Gateway::weighted_pick(size_t serving, double difficulty) {
  const int prio = cfg_.pools[serving].priority;
  pick_candidates_.clear();
  for (size_t p : pool_order_)
    if (p != serving && cfg_.pools[p].priority == prio && ready_link(p, true)) pick_candidates_.push_back(p);
  if (pick_candidates_.empty()) return serving;  // no pool to share the tier with
  // The load (session difficulty per pool) is counted over every session at
  // most once a second; placements in between add to it. Counting it per
  // placement made connecting N miners cost O(N^2) (18 % of hashgate's CPU
  // while 19,000 miners connected).
  if (pool_loads_.size() != pools_.size() || now() - pool_loads_at_ >= 1.0) count_pool_loads();
  size_t best = serving;
  double best_score = pool_loads_[serving] / cfg_.pools[serving].weight;
  for (size_t p : pick_candidates_) {
    double score = pool_loads_[p] / cfg_.pools[p].weight;
    if (score < best_score) {
      best = p;
      best_score = score;
    }
  }
  pool_loads_[best] += difficulty;
  return best;
}

void Gateway::rebalance_weights() {
  // Corrects what session difficulties mispredict: compares accepted
  // difficulty since the last look with the weights and moves one miner that
  // can move in place from the most over-served pool to the most under-served.
  auto serving = serving_pool();
  if (!serving) return;
  const int prio = cfg_.pools[*serving].priority;
  std::vector<size_t> tier;
  double total = 0, weights = 0;
  for (size_t p : pool_order_) {
    if (cfg_.pools[p].priority != prio || !ready_link(p, false)) continue;
    tier.push_back(p);
    total += pools_[p]->window_accepted;
    weights += cfg_.pools[p].weight;
  }
  if (tier.size() < 2 || total <= 0) return;
  size_t over = tier[0], under = tier[0];
  double most = -1e9, least = 1e9;
  for (size_t p : tier) {
    double excess = pools_[p]->window_accepted / total - cfg_.pools[p].weight / weights;
    if (excess > most) most = excess, over = p;
    if (excess < least) least = excess, under = p;
  }
  if (most < 0.03 || !ready_link(under, true)) return;
  for (auto& [id, l] : links_) {
    if (l->pool != over) continue;
    for (uint64_t sid : l->sessions) {
      auto it = miners_.find(sid);
      if (it == miners_.end() || !can_move_in_place(it->second)) continue;
      Miner* m = it->second;
      Link* to = ready_link(under, true);
      auto prefix = to->prefixes->allocate();
      unbind_miner(m);
      place_session(to, m, *prefix, true);
      log::info("miner_rebalanced").kv("session", sid).kv("from", pools_[over]->cfg->name)
          .kv("to", pools_[under]->cfg->name);
      return;
    }
  }
}

void Gateway::maintain_links() {
  if (life_.stopping() || cfg_.aggregation.mode != conf::AggregationMode::kAggregate) return;
  // Wanted: the active pool, every better pool (to fail back to), and the
  // next one after the active pool (warm standby).
  std::vector<size_t> wanted;
  const int active_prio = cfg_.pools[active_pool_].priority;
  bool standby_taken = !cfg_.failover.warm_standby;
  for (size_t p : pool_order_) {
    if (!pools_[p]->enabled) continue;
    int prio = cfg_.pools[p].priority;
    if (prio <= active_prio) {
      wanted.push_back(p);  // the active pool's tier and every better pool
    } else if (!standby_taken) {
      wanted.push_back(p);  // warm standby: the next one after
      standby_taken = true;
    }
  }
  for (size_t p : wanted) {
    if (!pools_[p]->enabled) continue;
    bool have = false;
    for (auto& [id, l] : links_) have = have || (l->pool == p && !l->dead && !l->owner_session);
    PoolState& ps = *pools_[p];
    if (!have && ps.breaker.allow_attempt(now())) {
      ps.breaker.on_attempt(now());
      open_link(p, 0);
    }
  }
}

void Gateway::check_link_timeouts() {
  if (life_.stopping()) return;
  std::vector<std::pair<Link*, std::string>> failed;
  const double t = now();
  std::vector<Link*> drained;
  for (auto& [id, l] : links_)
    if (l->retire_at > 0 && t >= l->retire_at && l->sessions.empty() && l->session->pending_submits() == 0)
      drained.push_back(l);
  for (Link* l : drained) {
    log::info("pool_connection_closed").kv("pool", pools_[l->pool]->cfg->name).kv("link", l->id)
        .kv("reason", "drained after a planned move");
    dispose_link(l);
  }
  for (auto& [id, l] : links_) {
    if (l->dead) continue;
    if (l->last_job_at == 0 && t - l->opened_at > cfg_.failover.connect_timeout_seconds) {
      failed.emplace_back(l, "no work within " + std::to_string(int(cfg_.failover.connect_timeout_seconds)) +
                                 " s of connecting");
    } else if (l->last_job_at > 0 && t - l->last_job_at > cfg_.failover.job_timeout_seconds) {
      failed.emplace_back(l, "no job for " + std::to_string(int(cfg_.failover.job_timeout_seconds)) + " s");
    } else if (double sent = l->session->oldest_pending(t);
               sent > 0 && t - sent > cfg_.failover.submit_timeout_seconds) {
      failed.emplace_back(l, "a share unanswered for " + std::to_string(t - sent).substr(0, 4) + " s");
    }
  }
  for (auto& [l, why] : failed) link_lost(l, why);
}

Binding Gateway::make_binding(Link* l, uint32_t prefix, const Miner* m) const {
  const auto& sub = l->session->subscription();
  Binding b;
  b.link_id = l->id;
  b.extranonce1 = sub.extranonce1;
  b.prefix_offset = uint32_t(sub.extranonce1.size());
  const uint32_t p = l->prefixes->prefix_bytes();
  for (uint32_t i = 0; i < p; ++i) b.extranonce1.push_back(uint8_t(prefix >> (8 * (p - 1 - i))));
  // More extranonce2 than the firmware handles (cgminer lineage: 8 bytes)
  // would make it hash on and lose every share: the bytes it cannot take
  // are fixed as zeros after its prefix, inside its own slice of the space.
  const FirmwareProfile* prof = m->session->profile() ? m->session->profile() : firmware_.book().fallback();
  const SpaceShape shape = shape_space(*prof, sub.extranonce2_size, p, cfg_.aggregation.min_extranonce2_size);
  b.extranonce1.insert(b.extranonce1.end(), shape.fixed_bytes, uint8_t(0));
  b.extranonce2_size = shape.miner_extranonce2;
  if (shape.below_minimum || (prof->max_extranonce1_size && b.extranonce1.size() > prof->max_extranonce1_size))
    log::warn("miner_space_outside_profile")
        .kv("session", m->session->id()).kv("peer", m->peer).kv("profile", prof->name)
        .kv("extranonce1_bytes", b.extranonce1.size()).kv("extranonce1_max", prof->max_extranonce1_size)
        .kv("extranonce2_bytes", shape.miner_extranonce2).kv("extranonce2_min", cfg_.aggregation.min_extranonce2_size)
        .kv("why", "the pool's extranonce leaves this firmware less room than it needs; its shares may be lost");
  b.version_mask = l->session->version_mask();
  return b;
}

void Gateway::resplit_link(Link* l) {
  // Every job of the old space is void; the pool's next notify starts anew.
  jobs_.retire_link(l->id);
  l->last_job_at = now();
  reset_prefixes(l);
  std::vector<Miner*> ms;
  for (uint64_t sid : l->sessions)
    if (auto it = miners_.find(sid); it != miners_.end()) ms.push_back(it->second);
  l->sessions.clear();
  for (Miner* m : ms) {
    m->has_prefix = false;
    m->link_id = 0;
    m->session->unbind();
    auto prefix = l->prefixes->allocate();
    if (prefix && can_move_in_place(m)) {
      place_session(l, m, *prefix, true);
    } else {
      if (prefix) l->prefixes->release(*prefix);
      move_session(m);  // another connection, or client.reconnect
    }
  }
}

void Gateway::follow_reconnect(Link* l, const ReconnectParams& r) {
  PoolState& ps = *pools_[l->pool];
  const bool same_host = r.host.empty() || r.host == ps.cfg->endpoint.host;
  if (!same_host && !cfg_.failover.follow_reconnect_to_other_hosts) {
    log::warn("pool_reconnect_refused")
        .kv("pool", ps.cfg->name)
        .kv("host", r.host)
        .kv("reason", "another host (failover.follow_reconnect_to_other_hosts is off)");
    return;
  }
  // Told to go before the connection gave a single job: a pool in a
  // reconnect loop, not a planned move. The breaker is charged, so attempts
  // follow its backoff instead of reconnecting at once, forever.
  const bool premature = l->last_job_at == 0;
  if (premature) {
    ps.breaker.on_failure(now(), double(random_u64() % 1000000) / 1e6);
    // A redirect that leads nowhere useful ends here (bounded redirects).
    if (l->redirected) end_redirect(ps, "client.reconnect before any job");
  }
  if (!same_host) ps.endpoint.host = r.host;
  if (r.port) ps.endpoint.port = r.port;
  ps.not_before = std::max(now() + r.wait_seconds, premature ? ps.breaker.retry_at() : 0.0);
  log::warn("pool_reconnect_followed")
      .kv("pool", ps.cfg->name)
      .kv("link", l->id)
      .kv("endpoint", ps.endpoint.to_string())
      .kv("configured", ps.cfg->endpoint.to_string())
      .kv("wait", r.wait_seconds)
      .kv("counted_as_failure", premature)
      .kv("retry_in", std::max(0.0, ps.not_before - now()));
  // A planned move, not a failure: the breaker is not charged. Sessions go
  // to another ready connection (the warm standby) or wait for the new one.
  std::vector<uint64_t> bound(l->sessions.begin(), l->sessions.end());
  bound.insert(bound.end(), l->movers.begin(), l->movers.end());
  dispose_link(l);
  maintain_links();
  rehome(bound, false);
}

void Gateway::end_redirect(PoolState& ps, const std::string& why) {
  if (ps.endpoint.host == ps.cfg->endpoint.host && ps.endpoint.port == ps.cfg->endpoint.port) return;
  log::warn("pool_redirect_ended")
      .kv("pool", ps.cfg->name)
      .kv("endpoint", ps.endpoint.to_string())
      .kv("back_to", ps.cfg->endpoint.to_string())
      .kv("reason", why);
  ps.endpoint = ps.cfg->endpoint;
}

void Gateway::rehome(const std::vector<uint64_t>& sessions, bool close_instead) {
  for (uint64_t sid : sessions) {
    auto mit = miners_.find(sid);
    if (mit == miners_.end()) continue;
    Miner* m = mit->second;
    // The link is gone already: nothing to release on it.
    m->link_id = 0;
    m->has_prefix = false;
    m->session->unbind();
    if (close_instead) {
      close_miner(m, "pool connection lost", "pool_lost");
    } else {
      move_session(m);
    }
  }
}

void Gateway::unbind_miner(Miner* m) {
  auto it = links_.find(m->link_id);
  if (it != links_.end()) {
    it->second->sessions.erase(m->session->id());
    if (m->has_prefix && it->second->prefixes) it->second->prefixes->release(m->prefix);
  }
  m->link_id = 0;
  m->has_prefix = false;
  m->session->unbind();
}

void Gateway::move_session(Miner* m) {
  if (m->closing || life_.stopping()) return;
  const uint64_t sid = m->session->id();
  if (m->held_until > now()) {
    orphans_.insert(sid);  // its pool session may be resumed; retried every tick
    return;
  }
  m->held_until = 0;
  auto pool = serving_pool();
  if (!pool) {
    orphans_.insert(sid);  // retried every tick until a pool is usable
    return;
  }
  orphans_.erase(sid);
  if (!m->session->subscribed()) {
    assign_upstream(m);
    return;
  }
  if (can_move_in_place(m)) {
    pool = weighted_pick(*pool, m->session->difficulty());
    Link* l = ready_link(*pool, true);
    if (!l) {
      // Every ready connection is full: the session gets a slot on a new
      // one, exactly as a new miner would (17.1: they waited forever).
      await_link(*pool, m);
      return;
    }
    place_session(l, m, *l->prefixes->allocate(), true);
    log::info("miner_moved").kv("session", sid).kv("peer", m->peer).kv("pool", pools_[l->pool]->cfg->name)
        .kv("how", "set_extranonce");
    return;
  }
  // A reconnecting miner needs no slot here: it comes back as a new miner.
  // Paced and jittered so a whole farm does not reconnect in the same instant.
  uint32_t wait = uint32_t(double(random_u64() % 1000) / 1000.0 * cfg_.failover.reconnect_spread_seconds);
  send_move(m, *pool, wait);
}

void Gateway::send_move(Miner* m, size_t pool, uint32_t wait) {
  const FirmwareProfile* prof = m->session->profile();
  bool closes = prof && !prof->follows_reconnect;
  closes = closes || firmware_.ignores_reconnect(*m->session);
  if (closes) {
    log::info("miner_moved").kv("session", m->session->id()).kv("peer", m->peer).kv("pool", pools_[pool]->cfg->name)
        .kv("how", "close").kv("profile", prof ? prof->name : "-");
    return close_miner(m, "moved: its firmware does not follow client.reconnect", "moved");
  }
  std::optional<conf::Endpoint> pool_ep;
  if (pools_[pool]->cfg->scheme != conf::PoolScheme::kTest) pool_ep = pools_[pool]->cfg->endpoint;
  const auto to = reconnect_target(m->tunneled, pool_ep, m->listener ? m->listener->cfg->advertise : std::nullopt,
                                   local_endpoint(&m->tcp));
  if (!to) return close_miner(m, "moved: no address to reconnect to", "moved");
  m->session->send_reconnect(to->host, to->port, wait);
  m->close_at = reconnect_deadline(now(), wait, cfg_.failover.reconnect_grace_seconds);
  flush(m);
  log::info("miner_moved").kv("session", m->session->id()).kv("peer", m->peer).kv("pool", pools_[pool]->cfg->name)
      .kv("how", "client.reconnect").kv("to", conf::Endpoint{to->host, to->port}.to_string()).kv("wait", wait);
}

void Gateway::await_link(size_t pool, Miner* m) {
  // Joins a connection of the pool still being set up while its expected
  // room lasts, or opens one. The estimate is the configured room until the
  // pool's subscription says how many prefixes it really has; whoever does
  // not fit when it is ready is placed again (take_movers).
  Link* target = nullptr;
  for (auto& [id, l] : links_) {
    if (l->dead || l->pool != pool || l->owner_session || link_ready(l)) continue;
    const uint64_t room = l->prefixes ? l->prefixes->capacity() : cfg_.aggregation.sessions_per_upstream;
    if (l->sessions.size() + l->waiting.size() + l->movers.size() < room) {
      target = l;
      break;
    }
  }
  if (!target) {
    pools_[pool]->breaker.on_attempt(now());
    target = open_link(pool, 0);
    log::info("pool_link_added").kv("pool", pools_[pool]->cfg->name).kv("link", target->id)
        .kv("reason", "moved sessions need room");
  }
  target->movers.push_back(m->session->id());
}

void Gateway::take_movers(Link* l) {
  std::vector<uint64_t> movers;
  movers.swap(l->movers);
  for (uint64_t sid : movers)
    if (auto it = miners_.find(sid); it != miners_.end() && !it->second->link_id) move_session(it->second);
}

Gateway::Link* Gateway::open_link(size_t pool_index, uint64_t owner_session) {
  PoolState& ps = *pools_[pool_index];
  auto* l = new Link;
  l->gw = this;
  l->id = next_link_id_++;
  l->pool = pool_index;
  l->owner_session = owner_session;
  UpstreamOptions o;
  o.agent = "hashgate/" HASHGATE_VERSION;
  if (cfg_.aggregation.mode == conf::AggregationMode::kAggregate) {
    o.user = ps.cfg->user;
    o.password = ps.cfg->password;
  }
  o.version_mask = cfg_.version_rolling.enabled ? cfg_.version_rolling.mask : 0;
  if (!owner_session) {
    auto& rs = ps.resumable;
    rs.erase(std::remove_if(rs.begin(), rs.end(), [&](const auto& r) { return r.until < now(); }), rs.end());
    if (!rs.empty()) {
      l->resuming = rs.front();
      rs.erase(rs.begin());
      o.resume_session_id = l->resuming->session_id;
    }
  }
  l->session = std::make_unique<UpstreamSession>(pool_parser_, o);
  uv_timer_init(loop_, &l->connect_timer);
  l->connect_timer.data = l;
  links_.emplace(l->id, l);
  l->opened_at = now();
  // The breaker already decided this attempt may go; connect on the next
  // loop turn (never from inside the caller's handling), or when the pool's
  // client.reconnect said to.
  const double delay = std::max(0.0, ps.not_before - now());
  uv_timer_start(
      &l->connect_timer,
      [](uv_timer_t* t) {
        auto* l = static_cast<Link*>(t->data);
        Gateway* gw = l->gw;
        PoolState& ps = *gw->pools_[l->pool];
        l->redirected = ps.endpoint.host != ps.cfg->endpoint.host || ps.endpoint.port != ps.cfg->endpoint.port;
        log::info("pool_connecting").kv("pool", ps.cfg->name).kv("link", l->id).kv("url", ps.cfg->url)
            .kv("endpoint", ps.test_pool ? std::string("test") : ps.endpoint.to_string());
        l->transport = ps.test_pool ? make_test_transport(gw->loop_, l, *ps.test_pool)
                                    : make_tcp_transport(gw->loop_, l, ps.endpoint, ps.tls,
                                                         ps.cfg->tls ? ps.cfg->tls->server_name : std::string());
        l->transport->connect();
      },
      uint64_t(delay * 1000), 0);
  return l;
}

void Gateway::link_connected(Link* l) {
  l->connected = true;
  l->session->start();
  flush(l);
}

void Gateway::link_data(Link* l, std::string_view bytes) {
  l->session->receive(bytes, now());
  UpstreamEvent ev;
  while (!l->dead && l->session->next_event(ev)) handle_link_event(l, ev);
  if (!l->dead) flush(l);
}

void Gateway::flush(Link* l) {
  std::string& out = l->session->output();
  if (out.empty() || !l->transport) return;
  std::string data;
  data.swap(out);
  l->transport->write(std::move(data));
}

void Gateway::handle_link_event(Link* l, UpstreamEvent& ev) {
  PoolState& ps = *pools_[l->pool];
  const std::string& pool = ps.cfg->name;
  if (ev.kind != UpstreamEventKind::kProtocolError) l->malformed = 0;
  if (ev.kind == UpstreamEventKind::kJob && l->subscribed) l->malformed_notifies = 0;
  switch (ev.kind) {
    case UpstreamEventKind::kConfigured:
      log::info("pool_version_rolling").kv("pool", pool).kv("link", l->id).kv("mask", hex_u32_string(ev.version_mask));
      break;
    case UpstreamEventKind::kSubscribed:
      log::info("pool_subscribed")
          .kv("pool", pool)
          .kv("link", l->id)
          .kv("extranonce1", hex_encode(ev.subscription.extranonce1))
          .kv("extranonce2_size", uint64_t(ev.subscription.extranonce2_size));
      link_subscribed(l);
      break;
    case UpstreamEventKind::kAuthorized:
      if (l->owner_session) {
        auto mit = miners_.find(l->owner_session);
        RpcId id = l->auth_ids.empty() ? RpcId{} : l->auth_ids.front();
        if (!l->auth_ids.empty()) l->auth_ids.erase(l->auth_ids.begin());
        if (mit != miners_.end()) {
          authorize_miner(mit->second, id, ev.user, ev.ok, ev.error.message);
          flush(mit->second);
        }
      } else if (!ev.ok) {
        log::error("pool_authorize_failed").kv("pool", pool).kv("user", ev.user).kv("error", ev.error.message);
      } else {
        log::info("pool_authorized").kv("pool", pool).kv("link", l->id).kv("user", ev.user);
      }
      break;
    case UpstreamEventKind::kJob: {
      // A job before a subscription has no extranonce to work with: it
      // neither counts as work nor keeps the connection alive.
      if (!l->subscribed) break;
      const auto& sub = l->session->subscription();
      if (std::string why; !integrity_->job(l->pool, ev.notify, sub, l->session->version_mask(), now(), why)) {
        fail_pool(l->pool, why);  // the job never reaches a miner
        return;
      }
      const bool first_job = l->last_job_at == 0;
      if (first_job) ps.breaker.on_success(now());
      l->last_job_at = now();
      JobRef job = jobs_.add(l->id, std::move(ev.notify), sub.extranonce1, sub.extranonce2_size, l->session->difficulty());
      if (job->params.clean_jobs && l->prefixes) l->prefixes->on_clean_job();
      log::debug("job").kv("pool", pool).kv("link", l->id).kv("job", job->id).kv("pool_job", job->params.job_id)
          .kv("clean", job->params.clean_jobs).kv("sessions", uint64_t(l->sessions.size()));
      // A notify flood is thinned (protocol/notify_throttle.h): a held job goes out from release_held_jobs.
      if (const uint64_t c = l->throttle.coalesced(); !l->throttle.offer(job, now())) {
        ps.jobs_coalesced += l->throttle.coalesced() - c;
        hold_job(l);
        break;
      }
      fan_out_job(l, job, false);
      if (first_job && !l->movers.empty()) take_movers(l);  // ready now: the sessions waiting to move in
      break;
    }
    case UpstreamEventKind::kDifficulty:
      log::info("pool_difficulty").kv("pool", pool).kv("link", l->id).kv("difficulty", ev.difficulty);
      break;
    case UpstreamEventKind::kVersionMask: {
      log::info("pool_version_mask").kv("pool", pool).kv("link", l->id).kv("mask", hex_u32_string(ev.version_mask));
      // Every session on the connection rolls within the new mask from now
      // on (told with mining.set_version_mask); shares outside it are refused.
      for (uint64_t sid : l->sessions)
        if (auto mit = miners_.find(sid); mit != miners_.end()) {
          mit->second->session->set_pool_version_mask(ev.version_mask);
          flush(mit->second);
        }
      break;
    }
    case UpstreamEventKind::kSetExtranonce:
      if (std::string why; !integrity_->set_extranonce(l->pool, ev.subscription, why))
        return link_lost(l, "refused mining.set_extranonce: " + why, Loss::kUnusable);
      log::warn("pool_set_extranonce")
          .kv("pool", pool)
          .kv("link", l->id)
          .kv("extranonce1", hex_encode(ev.subscription.extranonce1))
          .kv("extranonce2_size", uint64_t(ev.subscription.extranonce2_size));
      resplit_link(l);
      break;
    case UpstreamEventKind::kReconnect:
      follow_reconnect(l, ev.reconnect);
      break;
    case UpstreamEventKind::kSubmitResult: {
      auto fit = forwards_.find(ev.token);
      if (fit == forwards_.end()) break;
      Forward f = std::move(fit->second);
      forwards_.erase(fit);
      submit_rtt_.observe(double(uv_hrtime() - f.sent_ns) / 1e9);
      WorkerStats& st = stats(f.worker);
      ++(ev.ok ? ps.accepted : ps.rejected);
      if (ev.ok) ps.rate.add(now(), f.difficulty);
      if (LedgerCounts* lc = ledger_row(f.worker, f.link_id)) {
        ++(ev.ok ? lc->pool_accepted : lc->pool_rejected);
        (ev.ok ? lc->pool_accepted_difficulty : lc->pool_rejected_difficulty) += f.difficulty;
        if (f.block) ledger_verdict(ev.token, ev.ok);
      }
      if (ev.ok) {
        ++st.pool_accepted;
        st.credited_rate.add(now(), f.difficulty);
        ps.accepted_difficulty += f.difficulty;
        ps.window_accepted += f.difficulty;
        if (f.block) log::warn("block_accepted_by_pool").kv("pool", pool).kv("worker", worker_name(f.worker));
      } else {
        ++st.pool_rejected;
        log::warn("share_rejected_by_pool")
            .kv("pool", pool)
            .kv("worker", worker_name(f.worker))
            .kv("code", int(ev.error.code))
            .kv("error", ev.error.message);
      }
      retire_if_done(l);
      if (life_.stopping()) return maybe_finish_stop();
      if (note_pool_answer(l, ev.ok)) return;
      break;
    }
    case UpstreamEventKind::kShowMessage:
      log::info("pool_message").kv("pool", pool).kv("message", ev.error.message);
      break;
    case UpstreamEventKind::kProtocolError:
      log::warn("pool_protocol_error").kv("pool", pool).kv("link", l->id).kv("error", ev.error.message);
      if (ev.fatal) {
        link_lost(l, ev.error.message);
      } else if (++l->malformed >= cfg_.failover.max_malformed) {
        link_lost(l, std::to_string(l->malformed) + " malformed messages in a row");
      } else if (ev.bad_notify && ++l->malformed_notifies >= cfg_.failover.max_malformed) {
        link_lost(l, std::to_string(l->malformed_notifies) + " malformed notifies without a valid job");
      }
      break;
  }
}

void Gateway::fan_out_job(Link* l, const JobRef& job, bool force_clean) {
  // Nothing here may close a session while l->sessions is walked (a
  // close erases from it): writes wait until the walk is over.
  fanout_.begin();
  for (uint64_t sid : l->sessions) {
    auto mit = miners_.find(sid);
    if (mit == miners_.end()) continue;
    mit->second->session->on_job(job, force_clean);
    fanout_.add(mit->second);
  }
  fanout_.finish();
}

void Gateway::hold_job(Link* l) {
  const uint64_t in_ms = uint64_t(std::max(0.0, l->throttle.due_at() - now()) * 1000) + 1;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&job_release_)) || uv_timer_get_due_in(&job_release_) > in_ms)
    uv_timer_start(&job_release_, [](uv_timer_t* t) { static_cast<Gateway*>(t->data)->release_held_jobs(); }, in_ms, 0);
}

void Gateway::release_held_jobs() {
  Link* next = nullptr;
  for (auto& [id, l] : links_) {
    // A job its connection retired meanwhile (new extranonce) is stale: dropped.
    if (auto r = l->throttle.take_due(now()); r && jobs_.find(r->job->seq)) fan_out_job(l, r->job, r->force_clean);
    if (l->throttle.due_at() > 0 && (!next || l->throttle.due_at() < next->throttle.due_at())) next = l;
  }
  if (next) hold_job(next);
}

bool Gateway::note_pool_answer(Link* l, bool accepted) {
  constexpr unsigned kWindow = 50, kMinAnswers = 20;
  l->reject_bits = ((l->reject_bits << 1) | (accepted ? 0 : 1)) & ((uint64_t(1) << kWindow) - 1);
  ++l->answers;
  const uint64_t n = std::min<uint64_t>(l->answers, kWindow);
  const unsigned rejected = unsigned(std::popcount(l->reject_bits));
  if (n < kMinAnswers || double(rejected) <= cfg_.failover.max_reject_ratio * double(n)) return false;
  link_lost(l, "the pool rejected " + std::to_string(rejected) + " of the last " + std::to_string(n) +
                   " shares (limit failover.max_reject_ratio)",
            Loss::kUnusable);
  return true;
}

void Gateway::reset_prefixes(Link* l) {
  // Aggregation keeps p bytes per session; a passthrough link is one miner's.
  const auto& sub = l->session->subscription();
  uint32_t p = 0;
  uint64_t cap = 1;
  if (!l->owner_session) {
    p = choose_prefix_bytes(cfg_.aggregation.prefix_bytes, sub.extranonce2_size,
                            cfg_.aggregation.min_extranonce2_size, cfg_.aggregation.sessions_per_upstream);
    cap = cfg_.aggregation.sessions_per_upstream;
  }
  l->prefixes.emplace(p, cap);
}

void Gateway::link_subscribed(Link* l) {
  const auto& sub = l->session->subscription();
  reset_prefixes(l);
  const uint32_t p = l->prefixes->prefix_bytes();
  if (sub.extranonce2_size - p < cfg_.aggregation.min_extranonce2_size)
    log::warn("small_extranonce2")
        .kv("link", l->id)
        .kv("pool_extranonce2_size", uint64_t(sub.extranonce2_size))
        .kv("miner_extranonce2_size", uint64_t(sub.extranonce2_size - p));
  l->subscribed = true;
  if (l->resuming) resume_sessions(l);
  std::vector<uint64_t> waiting;
  waiting.swap(l->waiting);
  for (uint64_t sid : waiting) {
    auto mit = miners_.find(sid);
    if (mit == miners_.end()) continue;
    Miner* m = mit->second;
    if (l->prefixes->full() && !l->owner_session) {
      // This connection is full: the rest go to another one.
      m->link_id = 0;
      assign_upstream(m);
    } else {
      bind_session(l, m);
    }
  }
  for (auto& [id, auth] : l->pending_auth) {
    l->auth_ids.push_back(id);
    l->session->authorize(auth.user, auth.password);
  }
  l->pending_auth.clear();
}

void Gateway::resume_sessions(Link* l) {
  const PoolState::Resumable r = *l->resuming;
  l->resuming.reset();
  const auto& sub = l->session->subscription();
  const std::string& pool = pools_[l->pool]->cfg->name;
  if (sub.extranonce1 != r.extranonce1 || sub.extranonce2_size != r.extranonce2_size) {
    log::info("pool_session_not_resumed").kv("pool", pool).kv("link", l->id).kv("session_id", r.session_id);
    return;  // the held miners move when their wait ends
  }
  uint64_t n = 0;
  std::vector<Miner*> held;
  for (auto& [sid, m] : miners_)
    if (m->held_until > 0 && m->held_pool == l->pool && m->held_extranonce1 == r.extranonce1 && !m->link_id)
      held.push_back(m);
  for (Miner* m : held) {
    m->held_until = 0;
    if (!l->prefixes->take(m->held_prefix)) continue;  // moves like any other
    orphans_.erase(m->session->id());
    place_session(l, m, m->held_prefix, true);  // the same space: no message, the next job is clean
    ++n;
  }
  log::info("pool_session_resumed").kv("pool", pool).kv("link", l->id).kv("session_id", r.session_id)
      .kv("miners_kept", n);
}

void Gateway::release_held(size_t pool) {
  std::vector<Miner*> held;
  for (auto& [sid, m] : miners_)
    if (m->held_until > 0 && m->held_pool == pool) held.push_back(m);
  for (Miner* m : held) {
    m->held_until = 0;
    if (!m->link_id) move_session(m);
  }
}

void Gateway::bind_session(Link* l, Miner* m) { place_session(l, m, *l->prefixes->allocate(), false); }

void Gateway::place_session(Link* l, Miner* m, uint32_t prefix, bool in_place) {
  m->link_id = l->id;
  m->prefix = prefix;
  m->has_prefix = true;
  l->sessions.insert(m->session->id());
  if (in_place) {
    m->checking_move = true;
    m->bad_after_move = 0;
    m->session->send_set_extranonce(make_binding(l, prefix, m), now());
  } else {
    m->session->bind(make_binding(l, prefix, m), now());
    drain_session_events(m);
  }
  flush(m);
}

void Gateway::link_lost(Link* l, const std::string& reason, Loss kind) {
  if (l->dead) return;
  l->dead = true;
  PoolState& ps = *pools_[l->pool];
  ps.breaker.on_failure(now(), double(random_u64() % 1000000) / 1e6, kind == Loss::kUnusable);
  // A failure where a client.reconnect sent us: back to the configured endpoint.
  if (l->redirected) end_redirect(ps, reason);
  log::warn("pool_disconnected")
      .kv("pool", ps.cfg->name)
      .kv("link", l->id)
      .kv("reason", reason)
      .kv("sessions", uint64_t(l->sessions.size()))
      .kv("breaker", ps.breaker.state_name())
      .kv("retry_in", std::max(0.0, ps.breaker.retry_at() - now()));
  size_t lost = 0;
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.link_id == l->id) {
      it = forwards_.erase(it);
      ++lost;
    } else {
      ++it;
    }
  }
  if (lost) log::warn("pool_answers_lost").kv("pool", ps.cfg->name).kv("link", l->id).kv("shares", uint64_t(lost));
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
  if (kind == Loss::kDropped && !passthrough && !life_.stopping() && l->subscribed && !sub.session_id.empty() &&
      ps.breaker.retry_at() < now() + kResumeWindowSeconds) {
    // Offer the pool its session back; the miners that would need a
    // reconnect wait for it a moment, keeping their prefix.
    const double until = now() + kResumeWindowSeconds;
    ps.resumable.push_back({sub.session_id, sub.extranonce1, sub.extranonce2_size, until});
    for (uint64_t sid : bound) {
      auto mit = miners_.find(sid);
      if (mit == miners_.end() || can_move_in_place(mit->second) || !mit->second->has_prefix) continue;
      Miner* m = mit->second;
      m->held_until = until;
      m->held_pool = uint32_t(l->pool);
      m->held_extranonce1 = sub.extranonce1;
      m->held_prefix = m->prefix;
    }
  }
  dispose_link(l);
  if (life_.stopping()) return maybe_finish_stop();
  maintain_links();
  // The lost connection's extranonce space is gone: its miners move (a
  // passthrough miner's connection was its own: it reconnects).
  rehome(bound, passthrough);
  for (uint64_t sid : waiting) {
    auto mit = miners_.find(sid);
    if (mit == miners_.end()) continue;
    mit->second->link_id = 0;
    assign_upstream(mit->second);
  }
  for (uint64_t sid : movers)
    if (auto mit = miners_.find(sid); mit != miners_.end() && !mit->second->link_id) move_session(mit->second);
}

void Gateway::dispose_link(Link* l) {
  l->dead = true;
  // Passthrough: authorizes not yet sent (the connection never subscribed)
  // stay with their miner for its next connection.
  if (l->owner_session && !l->pending_auth.empty() && miners_.count(l->owner_session)) {
    auto& parked = parked_auth_[l->owner_session];
    for (auto& a : l->pending_auth) parked.push_back(std::move(a));
    l->pending_auth.clear();
  }
  if (l->transport) l->transport->close();
  l->transport = nullptr;
  jobs_.retire_link(l->id);
  links_.erase(l->id);
  // The Link is freed once libuv has let go of its timer.
  uv_close(reinterpret_cast<uv_handle_t*>(&l->connect_timer), [](uv_handle_t* h) { delete static_cast<Link*>(h->data); });
}

// ---------------------------------------------------------------- timers, stop

void Gateway::on_tick() {
  double t = now();
  if (accounts_.ledger_due(unix_now())) accounts_.flush_ledger(unix_now());
  publish_snapshot();
  if (writer_.lingering()) writer_.close_lingering(now());
  log::flush_suppressed();
  for (auto& ps : pools_)
    if (ps->test_pool) ps->test_pool->on_tick(t);
  for (auto& [id, l] : links_)
    if (l->transport) l->transport->poll();
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
  for (auto& [pool, why] : integrity_->tick(t)) fail_pool(pool, why);
  serving_pool();  // fails back when a better pool has been healthy long enough
  if (++ticks_ % 10 == 0) {
    accounts_.age(now(), unix_now());
    rebalance_weights();
    for (auto& ps : pools_) ps->window_accepted = 0;
  }
  if (!orphans_.empty()) {
    std::vector<uint64_t> waiting(orphans_.begin(), orphans_.end());
    orphans_.clear();
    for (uint64_t sid : waiting)
      if (auto it = miners_.find(sid); it != miners_.end() && !it->second->link_id) {
        if (it->second->session->subscribed()) {
          move_session(it->second);
        } else {
          assign_upstream(it->second);
        }
      }
  }
}

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
  for (size_t i = 0; i < pools_.size(); ++i) {
    const PoolState& ps = *pools_[i];
    PoolSnapshot p;
    p.name = ps.cfg->name;
    p.url = ps.cfg->url;
    p.priority = ps.cfg->priority;
    p.weight = ps.cfg->weight;
    p.enabled = ps.enabled;
    p.breaker = ps.breaker.state_name();
    const bool ready = ready_link(i, false) != nullptr;
    any_ready = any_ready || ready;
    p.state = !ps.enabled ? "disabled" : !ready ? "down" : i == active_pool_ ? "active" : "standby";
    JobRef newest;  // the pool's current job, for the economics
    for (const auto& [id, l] : links_)
      if (l->pool == i && !l->dead) {
        ++p.connections;
        p.sessions += l->sessions.size();
        if (JobRef j = jobs_.latest(id); j && (!newest || j->seq > newest->seq)) newest = j;
      }
    if (economics_) econ_pools.push_back({ps.cfg->name, newest, i == active_pool_});
    p.accepted = ps.accepted;
    p.rejected = ps.rejected;
    p.accepted_difficulty = ps.accepted_difficulty;
    p.hashgate_accepted_difficulty = ps.hashgate_accepted_difficulty;
    p.jobs_coalesced = ps.jobs_coalesced;
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
    for (size_t i = 0; i < pools_.size(); ++i)
      if (pools_[i]->cfg->name == c.target) set_pool_enabled(i, c.kind == AdminCommand::Kind::kPoolEnable);
  }
  publish_snapshot();
}

void Gateway::set_pool_enabled(size_t pool, bool enabled) {
  PoolState& ps = *pools_[pool];
  if (ps.enabled == enabled || life_.stopping()) return;
  ps.enabled = enabled;
  log::warn(enabled ? "pool_enabled" : "pool_disabled").kv("pool", ps.cfg->name).kv("by", "admin api");
  if (!enabled) vacate_pool(pool, "disabled", true);
  if (enabled)
    for (auto& [id, l] : links_)
      if (l->pool == pool) l->retire_at = 0;  // still draining: kept
  serving_pool();
  maintain_links();
}

void Gateway::vacate_pool(size_t pool, const char* why, bool drain) {
  std::vector<Link*> ls;
  for (auto& [id, l] : links_)
    if (l->pool == pool) ls.push_back(l);
  std::vector<uint64_t> bound, passthrough_bound, waiting;
  if (drain) {
    // A planned move: the pool still works, so its connections stay until
    // the miners have moved, answering and forwarding the shares of the
    // jobs they leave (retired in check_link_timeouts).
    const double until = now() + cfg_.failover.reconnect_spread_seconds + cfg_.failover.reconnect_grace_seconds + 2;
    std::vector<Miner*> movers;
    for (Link* l : ls) {
      if (l->owner_session) continue;  // passthrough: the miner's own connection, closed below
      for (uint64_t sid : l->sessions)
        if (auto it = miners_.find(sid); it != miners_.end()) movers.push_back(it->second);
      bound.insert(bound.end(), l->movers.begin(), l->movers.end());
      l->movers.clear();
      l->retire_at = until;
    }
    ls.erase(std::remove_if(ls.begin(), ls.end(), [](Link* l) { return !l->owner_session; }), ls.end());
    if (active_pool_ == pool) serving_pool();
    maintain_links();
    for (Miner* m : movers) {
      unbind_miner(m);
      move_session(m);
    }
  }
  for (Link* l : ls) {
    auto& into = l->owner_session ? passthrough_bound : bound;
    into.insert(into.end(), l->sessions.begin(), l->sessions.end());
    bound.insert(bound.end(), l->movers.begin(), l->movers.end());
    waiting.insert(waiting.end(), l->waiting.begin(), l->waiting.end());
    l->waiting.clear();
    log::info("pool_connection_closed").kv("pool", pools_[pool]->cfg->name).kv("link", l->id).kv("reason", why);
    dispose_link(l);
  }
  if (active_pool_ == pool) serving_pool();
  maintain_links();
  rehome(bound, false);
  rehome(passthrough_bound, true);
  for (uint64_t sid : waiting)
    if (auto it = miners_.find(sid); it != miners_.end()) {
      it->second->link_id = 0;
      assign_upstream(it->second);
    }
}

void Gateway::fail_pool(size_t pool, const std::string& reason) {
  std::vector<Link*> ls;
  for (auto& [id, l] : links_)
    if (l->pool == pool && !l->dead) ls.push_back(l);
  for (Link* l : ls) link_lost(l, reason, Loss::kUnusable);
  integrity_->pool_down(pool);
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

  // Pools: the same name and URL keeps its state and connections.
  auto same_pool = [](const conf::Pool& a, const conf::Pool& b) {
    return a.name == b.name && a.url == b.url && a.user == b.user && a.password == b.password &&
           a.tls.has_value() == b.tls.has_value() &&
           (!a.tls || (a.tls->ca == b.tls->ca && a.tls->server_name == b.tls->server_name &&
                       a.tls->pins == b.tls->pins && a.tls->verify == b.tls->verify));
  };
  std::vector<std::unique_ptr<PoolState>> next_pools(next.pools.size());
  std::vector<long> old_to_new(pools_.size(), -1);
  for (size_t i = 0; i < next.pools.size(); ++i)
    for (size_t j = 0; j < pools_.size(); ++j)
      if (pools_[j] && old_to_new[j] < 0 && same_pool(next.pools[i], *pools_[j]->cfg)) {
        old_to_new[j] = long(i);
        break;
      }
  std::vector<size_t> removed;
  for (size_t j = 0; j < pools_.size(); ++j) {
    if (old_to_new[j] < 0) {
      removed.push_back(j);
      log::warn("pool_removed").kv("pool", pools_[j]->cfg->name).kv("by", "reload");
    }
  }
  // Sessions of removed pools move like a failover, without a breaker charge.
  for (size_t j : removed) {
    pools_[j]->enabled = false;
    vacate_pool(j, "removed by reload");
  }
  const std::string active_name = pools_[active_pool_]->cfg->name;
  for (size_t j = 0; j < pools_.size(); ++j)
    if (old_to_new[j] >= 0) next_pools[size_t(old_to_new[j])] = std::move(pools_[j]);
  // Links keep pointing at their pool, by its new index.
  for (auto& [id, l] : links_)
    if (old_to_new[l->pool] >= 0) l->pool = size_t(old_to_new[l->pool]);
  for (auto& [sid, m] : miners_) {
    if (m->held_until == 0) continue;
    if (old_to_new[m->held_pool] < 0) {
      m->held_until = 0;  // its pool is gone: it moves on the next tick
    } else {
      m->held_pool = uint32_t(old_to_new[m->held_pool]);
    }
  }

  const bool level_changed = next.logging.level != cfg_.logging.level;
  cfg_ = std::move(next);
  listeners_.rebind_config(cfg_.listeners);  // the same listeners (kept above)
  pools_ = std::move(next_pools);
  for (size_t i = 0; i < cfg_.pools.size(); ++i) {
    const conf::Pool& p = cfg_.pools[i];
    if (!pools_[i]) {
      auto st = make_pool_state(p);
      std::string err;
      if (!setup_pool_tls(*st, err)) {
        notes.push_back(err + " (the pool stays disabled)");
        st->enabled = false;
      }
      log::warn("pool_added").kv("pool", p.name).kv("url", p.url).kv("priority", p.priority).kv("by", "reload");
      pools_[i] = std::move(st);
    }
    pools_[i]->cfg = &p;
    // A reload is the operator's word on where each pool is.
    end_redirect(*pools_[i], "config reloaded");
  }
  pool_order_.clear();
  for (size_t i = 0; i < cfg_.pools.size(); ++i) pool_order_.push_back(i);
  std::stable_sort(pool_order_.begin(), pool_order_.end(),
                   [&](size_t a, size_t b) { return cfg_.pools[a].priority < cfg_.pools[b].priority; });
  active_pool_ = pool_order_.front();
  for (size_t i = 0; i < pools_.size(); ++i)
    if (pools_[i]->cfg->name == active_name) active_pool_ = i;

  breaker_cfg_ = BreakerConfig{cfg_.failover.failures_to_open, cfg_.failover.backoff_initial_seconds,
                               cfg_.failover.backoff_max_seconds, 0.2};
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
      .kv("active_pool", pools_[active_pool_]->cfg->name)
      .kv("kept_until_restart", uint64_t(notes.size()));
  for (const std::string& n : notes) log::warn("config_reload_note").kv("note", n);
  // A better pool may be usable now; new pools get their connections.
  serving_pool();
  maintain_links();
  publish_snapshot();
}

void Gateway::stop(const char* why) {
  const auto action = life_.stop(!miners_.empty(), now(), cfg_.admin.drain_seconds);
  if (action == Lifecycle::StopAction::kNone) return;
  if (action == Lifecycle::StopAction::kEndDrain) return end_drain();
  // Local boards stop first: their shares in flight are answered like any miner's.
  if (boards_) boards_->stop();
  log::info("stopping").kv("reason", why).kv("miners", uint64_t(miners_.size()))
      .kv("shares_awaiting_pool", uint64_t(forwards_.size()));
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
      .kv("shares_awaiting_pool", uint64_t(forwards_.size()));
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
  if (!life_.finish(forwards_.size(), now())) return;
  if (!forwards_.empty())
    log::warn("stop_deadline").kv("shares_without_pool_answer", uint64_t(forwards_.size()));
  accounts_.close_ledger(5, unix_now());
  log_summary();
  std::vector<Link*> ls;
  for (auto& [id, l] : links_) ls.push_back(l);
  for (Link* l : ls) dispose_link(l);
  shares_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&link_check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&job_release_), nullptr);
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
  for (const auto& ps : pools_)
    log::info("pool_stats")
        .kv("pool", ps->cfg->name)
        .kv("accepted_difficulty", ps->accepted_difficulty)
        .kv("breaker", ps->breaker.state_name());
  for (const auto& ps : pools_) {
    if (!ps->test_pool) continue;
    const TestPoolStats& s = ps->test_pool->stats();
    log::info("test_pool_stats")
        .kv("pool", ps->cfg->name)
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
