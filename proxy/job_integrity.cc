#include "proxy/job_integrity.h"

#include "protocol/address.h"
#include "proxy/clock.h"
#include "proxy/log.h"

namespace hashgate {
namespace {

IntegrityOptions options(const conf::Integrity& c) {
  IntegrityOptions o;
  o.stale_grace_seconds = c.stale_grace_seconds;
  o.stale_move_seconds = c.stale_move_seconds;
  o.stale_move = c.stale_action == "move";
  o.ahead_blocks = c.ahead_blocks;
  o.chain_height_window = c.chain_height_window;
  o.ntime_window_seconds = c.ntime_window_seconds;
  if (c.node) o.node_chain = c.node->chain;
  return o;
}

std::vector<PoolRules> pool_rules(const conf::Config& cfg) {
  std::vector<PoolRules> v;
  for (const conf::Pool& p : cfg.pools) {
    PoolRules r;
    r.name = p.name;
    r.chain = p.integrity.chain;
    r.lock_outputs = p.integrity.lock_outputs;
    for (const auto& o : p.integrity.require_outputs) {
      std::string error;
      auto script = address_script(o.text, error);
      if (!script) throw conf::ConfigError(o.where + ": '" + o.text + "' is not usable: " + error);
      r.required_outputs.emplace_back(std::move(*script), o.text);
    }
    v.push_back(std::move(r));
  }
  return v;
}

const char* action_name(IntegrityAction a) {
  switch (a) {
    case IntegrityAction::kFlag: return "flagged";
    case IntegrityAction::kClear: return "cleared";
    case IntegrityAction::kRefuseJob: return "refused";
    case IntegrityAction::kFailPool: return "moved";
  }
  return "?";
}

}  // namespace

JobIntegrity::JobIntegrity(const conf::Config& cfg)
    : enabled_(cfg.integrity.enabled), monitor_(options(cfg.integrity), pool_rules(cfg)) {
  for (const conf::Pool& p : cfg.pools) names_.push_back(p.name);
  judged_.resize(names_.size());
  if (enabled_ && cfg.integrity.node) {
    node_ = std::make_unique<NodePoller>(*cfg.integrity.node);
    node_url_ = cfg.integrity.node->url;
  }
}

void JobIntegrity::validate(const conf::Config& cfg) { pool_rules(cfg); }

void JobIntegrity::start() {
  if (node_) node_->start();
}

void JobIntegrity::drain(std::string* why) {
  IntegrityEvent e;
  while (monitor_.next_event(e)) {
    const bool serious = e.action == IntegrityAction::kRefuseJob || e.action == IntegrityAction::kFailPool;
    // Per-job sanity events can come with every job of a pool: rate-limited
    // like any peer-caused line (log.h), counted regardless.
    log::Event ev(e.action == IntegrityAction::kClear ? spdlog::level::info
                  : serious                          ? spdlog::level::err
                                                     : spdlog::level::warn,
                  "pool_integrity");
    ev.kv("pool", names_[e.pool]).kv("check", integrity_check_name(e.check)).kv("action", action_name(e.action));
    std::string reason = std::string("integrity ") + integrity_check_name(e.check);
    for (const auto& [k, v] : e.evidence) {
      ev.kv(k, v);
      if (k == "missing" || k == "reason" || k == "error" || k == "lag_seconds") reason += " " + k + "=" + v;
    }
    if (e.action == IntegrityAction::kRefuseJob && why) *why = reason;
    if (e.action == IntegrityAction::kFailPool) fail_.emplace_back(e.pool, reason);
  }
}

bool JobIntegrity::job(size_t pool, const NotifyParams& n, const SubscribeResult& sub, uint32_t version_mask,
                       double now, std::string& why) {
  if (!enabled_ || pool >= names_.size()) return true;
  std::optional<Judged>& last = judged_[pool];
  if (last && last->job_id == n.job_id && last->prevhash == n.prevhash && last->coinb1 == n.coinb1 &&
      last->coinb2 == n.coinb2 && last->version == n.version && last->nbits == n.nbits && last->ntime == n.ntime &&
      last->mask == version_mask && last->extranonce1_size == sub.extranonce1.size() &&
      last->extranonce2_size == sub.extranonce2_size) {
    why = last->why;
    return last->ok;
  }
  const JobFacts f = job_facts(n, sub.extranonce1.size(), sub.extranonce2_size);
  const bool ok = monitor_.on_job(pool, f, version_mask, now, unix_now());
  drain(&why);
  last = Judged{n.job_id, n.prevhash, n.coinb1, n.coinb2, n.version, n.nbits, n.ntime, version_mask,
                sub.extranonce1.size(), sub.extranonce2_size, ok, why};
  return ok;
}

bool JobIntegrity::set_extranonce(size_t pool, const SubscribeResult& sub, std::string& why) {
  if (!enabled_ || pool >= names_.size()) return true;
  const bool ok = monitor_.on_set_extranonce(pool, sub.extranonce1.size(), sub.extranonce2_size);
  drain(&why);
  return ok;
}

void JobIntegrity::pool_down(size_t pool) {
  if (!enabled_ || pool >= names_.size()) return;
  judged_[pool].reset();  // a reconnect's first job is judged again
  monitor_.on_pool_down(pool);
  drain(nullptr);
}

std::vector<std::pair<size_t, std::string>> JobIntegrity::tick(double now) {
  if (!enabled_) return {};
  if (node_) {
    NodeState s = node_->state();
    if (s.polls > 0 && (!node_logged_ || s.up != node_state_.up)) {
      if (s.up) {
        log::info("node_up").kv("url", node_url_).kv("height", uint64_t(s.height)).kv("best", hex_encode(s.best));
      } else {
        log::warn("node_down").kv("url", node_url_).kv("error", s.error).kv("effect", "pools are compared with each other only");
      }
      node_logged_ = true;
    }
    if (s.up && (s.height != node_state_.height || s.best != node_state_.best || !node_state_.up))
      monitor_.on_node_tip(s.best, s.height, now);
    if (s.polls > 0) node_state_ = s;
  }
  monitor_.on_tick(now);
  drain(nullptr);
  std::vector<std::pair<size_t, std::string>> fail;
  fail.swap(fail_);
  return fail;
}

void JobIntegrity::fill(size_t pool, PoolSnapshot& p, double now) const {
  if (!enabled_ || pool >= names_.size()) return;
  const PoolIntegrityView v = monitor_.view(pool, now);
  p.chain = v.chain;
  if (v.has_tip) p.tip = prevhash_display_hex(v.prevhash);
  p.height = v.height ? int64_t(*v.height) : -1;
  p.tip_lag_seconds = v.lag_seconds;
  p.tip_lag_blocks = v.lag_blocks ? *v.lag_blocks : -1;
  for (size_t c = 0; c < kIntegrityChecks; ++c) {
    if (v.flags & (1u << c)) p.integrity_flags.push_back(integrity_check_name(IntegrityCheck(c)));
    p.integrity_events.emplace_back(integrity_check_name(IntegrityCheck(c)), v.events[c]);
  }
}

void JobIntegrity::fill(Snapshot& s) const {
  if (!node_) {
    s.node_state = enabled_ ? "none" : "off";
    return;
  }
  s.node_state = node_state_.polls == 0 ? "starting" : node_state_.up ? "up" : "down";
  s.node_height = node_state_.answered ? int64_t(node_state_.height) : -1;
  s.node_best = node_state_.answered ? hex_encode(node_state_.best) : "";
  s.node_error = node_state_.up ? "" : node_state_.error;
}

}  // namespace hashgate
