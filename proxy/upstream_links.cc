#include "proxy/upstream_links.h"

#include <openssl/rand.h>

#include <cmath>
#include <random>

#include "proxy/log.h"

namespace hashgate {
namespace {

uint64_t random_seed() {
  uint64_t v = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) v = std::random_device{}();
  return v;
}

// What makes a reload see another pool besides name, url and credentials.
std::string tls_identity(const conf::Pool& p) {
  if (!p.tls) return {};
  std::string id = "tls|" + p.tls->ca + "|" + p.tls->server_name + "|" + (p.tls->verify ? "1" : "0");
  for (const auto& pin : p.tls->pins) id += "|" + std::string(reinterpret_cast<const char*>(pin.data()), pin.size());
  return id;
}

}  // namespace

routing::RouterConfig router_config(const conf::Config& cfg, const FirmwareProfile* fallback, uint64_t seed) {
  routing::RouterConfig rc;
  for (const conf::Pool& p : cfg.pools) {
    routing::PoolConfig pc;
    pc.name = p.name;
    pc.url = p.url;
    pc.endpoint = routing::Endpoint{p.endpoint.host, p.endpoint.port};
    pc.builtin = p.scheme == conf::PoolScheme::kTest;
    pc.user = p.user;
    pc.password = p.password;
    pc.priority = p.priority;
    pc.weight = p.weight;
    pc.identity = tls_identity(p);
    rc.pools.push_back(std::move(pc));
  }
  rc.strategy = cfg.aggregation.mode == conf::AggregationMode::kPassthrough ? routing::Strategy::kPassthrough
                                                                           : routing::Strategy::kAggregate;
  rc.prefix_bytes = cfg.aggregation.prefix_bytes;
  rc.min_extranonce2_size = cfg.aggregation.min_extranonce2_size;
  rc.sessions_per_upstream = cfg.aggregation.sessions_per_upstream;
  rc.version_mask = cfg.version_rolling.enabled ? cfg.version_rolling.mask : 0;
  rc.agent = "hashgate/" HASHGATE_VERSION;
  const auto& f = cfg.failover;
  rc.connect_timeout_seconds = f.connect_timeout_seconds;
  rc.job_timeout_seconds = f.job_timeout_seconds;
  rc.submit_timeout_seconds = f.submit_timeout_seconds;
  rc.max_malformed = f.max_malformed;
  rc.max_reject_ratio = f.max_reject_ratio;
  rc.breaker = BreakerConfig{f.failures_to_open, f.backoff_initial_seconds, f.backoff_max_seconds, 0.2};
  rc.failback_after_seconds = f.failback_after_seconds;
  rc.warm_standby = f.warm_standby;
  rc.reconnect_spread_seconds = f.reconnect_spread_seconds;
  rc.reconnect_grace_seconds = f.reconnect_grace_seconds;
  rc.follow_reconnect_to_other_hosts = f.follow_reconnect_to_other_hosts;
  rc.job_interval_seconds = cfg.limits.pool_job_interval_seconds;
  rc.fallback_profile = fallback;
  rc.seed = seed ? seed : random_seed();
  return rc;
}

UpstreamLinks::UpstreamLinks(uv_loop_t* loop, const conf::Config& cfg, routing::RouterConfig rc, JobBook& jobs,
                             routing::JobVetting* vetting, const routing::SessionRules* rules, Algorithm algo,
                             std::function<void()> commands_waiting)
    : loop_(loop),
      algo_(algo),
      router_(std::move(rc), jobs, vetting, rules),
      commands_waiting_(std::move(commands_waiting)) {
  test_difficulty_ = cfg.vardiff.min;
  for (const conf::Pool& p : cfg.pools) pools_.push_back(make_pool(p));
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

UpstreamLinks::~UpstreamLinks() = default;

std::unique_ptr<UpstreamLinks::PoolIo> UpstreamLinks::make_pool(const conf::Pool& p) {
  auto io = std::make_unique<PoolIo>();
  io->cfg = &p;
  if (p.scheme == conf::PoolScheme::kTest) {
    TestPoolOptions o;
    o.difficulty = p.test_difficulty > 0 ? p.test_difficulty : test_difficulty_;
    o.job_interval_seconds = p.test_job_interval;
    o.extranonce2_size = p.test_extranonce2_size;
    io->test_pool = std::make_unique<TestPool>(algo_, o, random_seed(), now());
  }
  return io;
}

bool UpstreamLinks::setup_pool_tls(PoolIo& io, std::string& error) {
  const conf::Pool& p = *io.cfg;
  if (!p.tls) return true;
  TlsClientOptions o;
  o.ca_file = p.tls->ca;
  o.verify = p.tls->verify;
  o.pins = p.tls->pins;
  io.tls = TlsContext::client(o, error);
  if (!io.tls) error = "pool " + p.name + ": " + error;
  return io.tls != nullptr;
}

bool UpstreamLinks::setup_tls(std::string& error) {
  for (auto& io : pools_)
    if (!setup_pool_tls(*io, error)) return false;
  return true;
}

void UpstreamLinks::start() {
  router_.start(now());
  commands_waiting_();
}

void UpstreamLinks::arm() {
  if (!timer_) return;
  const double next = router_.next_timeout();
  if (!std::isfinite(next)) {
    uv_timer_stop(timer_);
    return;
  }
  // Rounded up: the router acts on deadlines that have come, not on the millisecond before.
  const double delay = std::max(0.0, next - now());
  uv_timer_start(
      timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<UpstreamLinks*>(t->data);
        self->router_.on_timeout(self->now());
        self->commands_waiting_();
      },
      uint64_t(std::ceil(delay * 1000)), 0);
}

bool UpstreamLinks::execute(const routing::Command& c) {
  using K = routing::Command::Kind;
  switch (c.kind) {
    case K::kConnectLink: {
      PoolIo& ps = *pools_[c.pool];
      auto io = std::make_unique<LinkIo>();
      io->owner = this;
      io->id = c.link;
      LinkIo* l = io.get();
      links_[c.link] = std::move(io);
      const conf::Endpoint ep{c.endpoint ? c.endpoint->host : ps.cfg->endpoint.host,
                              c.endpoint ? c.endpoint->port : ps.cfg->endpoint.port};
      l->transport = ps.test_pool ? make_test_transport(loop_, l, *ps.test_pool)
                                  : make_tcp_transport(loop_, l, ep, ps.tls,
                                                       ps.cfg->tls ? ps.cfg->tls->server_name : std::string());
      l->transport->connect();
      return true;
    }
    case K::kWriteLink:
      if (auto it = links_.find(c.link); it != links_.end() && it->second->transport)
        it->second->transport->write(c.bytes);
      return true;
    case K::kCloseLink:
      if (auto it = links_.find(c.link); it != links_.end()) {
        // The transport frees itself once closed; no callback follows.
        if (it->second->transport) it->second->transport->close();
        links_.erase(it);
      }
      return true;
    default:
      return false;
  }
}

void UpstreamLinks::LinkIo::on_connected() {
  owner->router_.link_connected(id, owner->now());
  owner->commands_waiting_();
}

void UpstreamLinks::LinkIo::on_data(std::string_view b) {
  owner->router_.link_data(id, b, owner->now());
  owner->commands_waiting_();
}

void UpstreamLinks::LinkIo::on_disconnected(const std::string& r) {
  UpstreamLinks* o = owner;
  const uint32_t link = id;
  transport = nullptr;  // it is closing itself
  o->links_.erase(link);  // frees this object: nothing of it is used below
  o->router_.link_dropped(link, r, o->now());
  o->commands_waiting_();
}

void UpstreamLinks::poll(double now) {
  for (auto& ps : pools_)
    if (ps->test_pool) ps->test_pool->on_tick(now);
  std::vector<Transport*> ts;
  for (auto& [id, l] : links_)
    if (l->transport) ts.push_back(l->transport);
  for (Transport* t : ts) t->poll();
}

void UpstreamLinks::tick(double now) {
  router_.on_timeout(now);  // a net under the timer: deadlines are exact there
  router_.on_tick(now);
  commands_waiting_();
}

void UpstreamLinks::reload(const conf::Config& next, const routing::RouterConfig& rc, std::vector<std::string>& notes) {
  test_difficulty_ = next.vardiff.min;
  const std::vector<long> match = router_.match_pools(rc.pools);
  std::vector<std::unique_ptr<PoolIo>> next_pools(next.pools.size());
  for (size_t j = 0; j < pools_.size(); ++j)
    if (match[j] >= 0) next_pools[size_t(match[j])] = std::move(pools_[j]);
  std::vector<size_t> disabled;
  for (size_t i = 0; i < next.pools.size(); ++i) {
    if (next_pools[i]) {
      next_pools[i]->cfg = &next.pools[i];
      continue;
    }
    next_pools[i] = make_pool(next.pools[i]);
    std::string err;
    if (!setup_pool_tls(*next_pools[i], err)) {
      notes.push_back(err + " (the pool stays disabled)");
      disabled.push_back(i);
    }
  }
  pools_ = std::move(next_pools);
  router_.reload(rc, disabled, now());
}

void UpstreamLinks::close() {
  for (auto& [id, l] : links_)
    if (l->transport) l->transport->close();
  links_.clear();
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
}

}  // namespace hashgate
