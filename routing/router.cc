#include "routing/router.h"

#include <algorithm>

#include "protocol/firmware_profile.h"

namespace hashgate::routing {

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

LogEvent& LogEvent::kv(std::string key, std::string v) {
  LogField f;
  f.key = std::move(key);
  f.s = std::move(v);
  fields.push_back(std::move(f));
  return *this;
}
LogEvent& LogEvent::kvi(std::string key, int64_t v) {
  LogField f;
  f.key = std::move(key);
  f.type = LogField::Type::kInt;
  f.i = v;
  fields.push_back(std::move(f));
  return *this;
}
LogEvent& LogEvent::kv(std::string key, uint64_t v) {
  LogField f;
  f.key = std::move(key);
  f.type = LogField::Type::kUint;
  f.u = v;
  fields.push_back(std::move(f));
  return *this;
}
LogEvent& LogEvent::kv(std::string key, double v) {
  LogField f;
  f.key = std::move(key);
  f.type = LogField::Type::kDouble;
  f.d = v;
  fields.push_back(std::move(f));
  return *this;
}
LogEvent& LogEvent::kv(std::string key, bool v) {
  LogField f;
  f.key = std::move(key);
  f.type = LogField::Type::kBool;
  f.b = v;
  fields.push_back(std::move(f));
  return *this;
}
LogEvent& LogEvent::peer(uint64_t session) {
  LogField f;
  f.key = "peer";
  f.type = LogField::Type::kPeer;
  f.u = session;
  fields.push_back(std::move(f));
  return *this;
}
const LogField* LogEvent::find(std::string_view key) const {
  for (const LogField& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

Router::Router(RouterConfig cfg, JobBook& jobs, JobVetting* vetting, const SessionRules* rules)
    : cfg_(std::move(cfg)),
      placement_(make_placement(cfg_.strategy)),
      jobs_(jobs),
      vetting_(vetting),
      rules_(rules),
      pool_parser_(65536),
      breaker_cfg_(cfg_.breaker),
      rng_(cfg_.seed) {
  for (const PoolConfig& p : cfg_.pools) {
    auto st = std::make_unique<PoolState>(breaker_cfg_);
    st->cfg = p;
    st->endpoint = p.endpoint;
    pools_.push_back(std::move(st));
  }
  sort_pools();
  active_pool_ = pool_order_.empty() ? 0 : pool_order_.front();
}

Router::~Router() = default;

void Router::sort_pools() {
  pool_order_.clear();
  for (size_t i = 0; i < pools_.size(); ++i) pool_order_.push_back(i);
  std::stable_sort(pool_order_.begin(), pool_order_.end(),
                   [&](size_t a, size_t b) { return pools_[a]->cfg.priority < pools_[b]->cfg.priority; });
}

void Router::enter(double now) {
  now_ = now;
  graveyard_.clear();  // no pointer into them outlives the call that disposed them
}

bool Router::take_commands(std::vector<Command>& out) {
  out.clear();
  out.swap(commands_);
  return !out.empty();
}

Router::SessionRec* Router::rec(uint64_t sid) {
  auto it = sessions_.find(sid);
  return it == sessions_.end() ? nullptr : &it->second;
}

Router::SessionRec& Router::track(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred) {
  SessionRec& m = sessions_[sid];
  m.id = sid;
  m.s = &s;
  if (preferred) m.preferred_pool = preferred;
  return m;
}

Router::Link* Router::find_link(uint32_t id) const {
  auto it = links_.find(id);
  return it == links_.end() ? nullptr : it->second.get();
}

void Router::start(double now) {
  enter(now);
  maintain_links();
}

// ---------------------------------------------------------------- sessions

void Router::need_upstream(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred, double now) {
  enter(now);
  assign_upstream(track(sid, s, preferred));
}

bool Router::authorize(uint64_t sid, const DownstreamSession& s, std::optional<size_t> preferred, const RpcId& id,
                       const AuthorizeParams& auth, double now) {
  enter(now);
  track(sid, s, preferred);
  return placement_->authorize(*this, sid, id, auth);
}

void Router::assign_upstream(SessionRec& m) {
  if (m.link_id) return;
  placement_->assign(*this, m.id);
}

void Router::session_closed(uint64_t sid) {
  SessionRec* m = rec(sid);
  if (m) {
    if (Link* l = find_link(m->link_id)) {
      l->sessions.erase(sid);
      l->waiting.erase(std::remove(l->waiting.begin(), l->waiting.end(), sid), l->waiting.end());
      if (m->has_prefix && l->prefixes) l->prefixes->release(m->prefix);
      // Passthrough: the connection belongs to this miner alone. It stays
      // until the shares the miner sent before leaving are hashed and answered.
      if (l->owner_session == sid && !l->dead) {
        l->owner_left = true;
        retire_if_done(l);
      }
    }
    sessions_.erase(sid);
  }
  orphans_.erase(sid);
  parked_auth_.erase(sid);
}

void Router::move_again(uint64_t sid, double now) {
  enter(now);
  SessionRec* m = rec(sid);
  if (!m) return;
  unbind_session(*m);
  move_session(*m);
}

uint32_t Router::session_link(uint64_t sid) const {
  auto it = sessions_.find(sid);
  return it == sessions_.end() ? 0 : it->second.link_id;
}

bool Router::owes_answer(uint64_t sid) const {
  if (parked_auth_.count(sid)) return true;
  auto it = sessions_.find(sid);
  if (it == sessions_.end()) return false;
  const Link* l = find_link(it->second.link_id);
  return l && l->owner_session == sid && (!l->pending_auth.empty() || !l->auth_ids.empty());
}

// ---------------------------------------------------------------- placement

bool Router::link_ready(const Link* l) const {
  return !l->dead && l->subscribed && l->has_job && pools_[l->pool]->enabled;
}

Router::Link* Router::ready_link(size_t pool, bool need_room) const {
  for (const auto& [id, l] : links_)
    if (l->pool == pool && !l->owner_session && link_ready(l.get()) && (!need_room || !l->prefixes->full()))
      return l.get();
  return nullptr;
}

Binding Router::make_binding(Link* l, uint32_t prefix, const SessionRec& m) {
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
  static const FirmwareProfile kNoLimits;
  const FirmwareProfile* prof = m.s->profile() ? m.s->profile()
                                : cfg_.fallback_profile ? cfg_.fallback_profile
                                                        : &kNoLimits;
  const SpaceShape shape = shape_space(*prof, sub.extranonce2_size, p, cfg_.min_extranonce2_size);
  b.extranonce1.insert(b.extranonce1.end(), shape.fixed_bytes, uint8_t(0));
  b.extranonce2_size = shape.miner_extranonce2;
  if (shape.below_minimum || (prof->max_extranonce1_size && b.extranonce1.size() > prof->max_extranonce1_size))
    log(LogLevel::kWarn, "miner_space_outside_profile")
        .kv("session", m.id).peer(m.id).kv("profile", prof->name)
        .kv("extranonce1_bytes", uint64_t(b.extranonce1.size())).kv("extranonce1_max", uint64_t(prof->max_extranonce1_size))
        .kv("extranonce2_bytes", uint64_t(shape.miner_extranonce2)).kv("extranonce2_min", uint64_t(cfg_.min_extranonce2_size))
        .kv("why", "the pool's extranonce leaves this firmware less room than it needs; its shares may be lost");
  b.version_mask = l->session->version_mask();
  return b;
}

void Router::bind_session(Link* l, SessionRec& m) { place_session(l, m, *l->prefixes->allocate(), false); }

void Router::place_session(Link* l, SessionRec& m, uint32_t prefix, bool in_place) {
  m.link_id = l->id;
  m.prefix = prefix;
  m.has_prefix = true;
  l->sessions.insert(m.id);
  emit({.kind = in_place ? Command::Kind::kSetExtranonce : Command::Kind::kBind,
        .link = l->id,
        .pool = l->pool,
        .session = m.id,
        .binding = make_binding(l, prefix, m)});
}

void Router::unbind_session(SessionRec& m) {
  if (Link* l = find_link(m.link_id)) {
    l->sessions.erase(m.id);
    if (m.has_prefix && l->prefixes) l->prefixes->release(m.prefix);
  }
  m.link_id = 0;
  m.has_prefix = false;
  emit({.kind = Command::Kind::kUnbind, .session = m.id});
}

void Router::reset_prefixes(Link* l) {
  // Aggregation keeps p bytes per session; a passthrough link is one miner's.
  const auto& sub = l->session->subscription();
  uint32_t p = 0;
  uint64_t cap = 1;
  if (!l->owner_session) {
    p = choose_prefix_bytes(cfg_.prefix_bytes, sub.extranonce2_size, cfg_.min_extranonce2_size,
                            cfg_.sessions_per_upstream);
    cap = cfg_.sessions_per_upstream;
  }
  l->prefixes.emplace(p, cap);
}

void Router::retire_if_done(Link* l) {
  if (l->owner_left && !l->dead && l->hashing == 0 && l->session->pending_submits() == 0) dispose_link(l);
}

// ---------------------------------------------------------------- shares

void Router::share_hashing(uint32_t link) {
  if (Link* l = find_link(link)) ++l->hashing;
}

void Router::share_judged(uint32_t link, double now) {
  enter(now);
  if (Link* l = find_link(link)) {
    --l->hashing;
    retire_if_done(l);
  }
}

bool Router::forward_share(uint64_t sid, uint32_t worker, const std::string& worker_name, const ShareWork& work,
                           bool block, uint64_t stamp, double now) {
  enter(now);
  Link* l = find_link(work.job->link_id);
  // A job retired while the share was checked is stale at the pool: keep it.
  if (!l || !l->subscribed || !jobs_.find(work.job->seq)) {
    log(LogLevel::kInfo, "share_not_forwarded").kv("session", sid).kv("worker", worker_name)
        .kv("reason", "job no longer valid at the pool");
    return false;
  }
  if (work.version_bits && (*work.version_bits & ~l->session->version_mask())) {
    // Checked under a mask the pool has since narrowed: it would reject it.
    log(LogLevel::kInfo, "share_not_forwarded").kv("session", sid).kv("worker", worker_name)
        .kv("reason", "version bits outside the pool's new mask");
    return false;
  }
  const uint64_t token = next_token_++;
  forwards_.emplace(token, Forward{sid, worker, l->id, block, work.job->pool_difficulty, stamp});
  l->session->submit(token, placement_->upstream_worker(pools_[l->pool]->cfg, worker_name), work.job->params.job_id,
                     std::span<const uint8_t>(work.upstream_extranonce2.data(), work.upstream_extranonce2_size),
                     work.ntime, work.nonce, work.version_bits, now_);
  flush(l);
  return true;
}

// ---------------------------------------------------------------- queries

size_t Router::link_pool(uint32_t link) const {
  const Link* l = find_link(link);
  return l ? l->pool : active_pool_;
}

std::vector<Router::LinkInfo> Router::links() const {
  std::vector<LinkInfo> out;
  for (const auto& [id, l] : links_)
    if (!l->dead) out.push_back(LinkInfo{id, l->pool, l->sessions.size(), link_ready(l.get())});
  return out;
}

}  // namespace hashgate::routing
