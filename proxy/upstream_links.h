// The upstream side's I/O shell: feeds the routing core (routing/router.h)
// the bytes, connects, drops and time of the pool connections, and executes
// its link commands against libuv (transports: TCP, TLS, the in-process test
// pool). It owns what only I/O needs per pool (the test pool, the TLS
// context) and the pools' counters for snapshots and the summary. Commands
// that concern miners are the gateway's (proxy/gateway_routing.cc).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "protocol/test_pool.h"
#include "proxy/firmware_tracker.h"
#include "proxy/job_integrity.h"
#include "proxy/snapshot.h"
#include "proxy/tls.h"
#include "proxy/transport.h"
#include "routing/router.h"

namespace hashgate {

// The routing core's config from the YAML config (routing/ never sees conf/).
routing::RouterConfig router_config(const conf::Config& cfg, const FirmwareProfile* fallback, uint64_t seed);

// Job integrity (proxy/job_integrity.h) as the routing core's vetting; it
// follows the gateway's current JobIntegrity (rebuilt at each reload).
class IntegrityVetting final : public routing::JobVetting {
 public:
  explicit IntegrityVetting(std::unique_ptr<JobIntegrity>& integrity) : integrity_(integrity) {}
  bool job(size_t pool, const NotifyParams& n, const SubscribeResult& sub, uint32_t mask, double now,
           std::string& why) override {
    return integrity_->job(pool, n, sub, mask, now, why);
  }
  bool set_extranonce(size_t pool, const SubscribeResult& sub, std::string& why) override {
    return integrity_->set_extranonce(pool, sub, why);
  }
  void pool_down(size_t pool) override { integrity_->pool_down(pool); }

 private:
  std::unique_ptr<JobIntegrity>& integrity_;
};

// The firmware tracker's knowledge of how each session is moved, for the routing core.
class FirmwareRules final : public routing::SessionRules {
 public:
  explicit FirmwareRules(const FirmwareTracker& f) : f_(f) {}
  bool can_move_in_place(const DownstreamSession& s) const override { return f_.can_move_in_place(s); }
  bool ignores_reconnect(const DownstreamSession& s) const override { return f_.ignores_reconnect(s); }

 private:
  const FirmwareTracker& f_;
};

class UpstreamLinks {
 public:
  // What hashgate counts per pool (snapshots, the summary).
  struct PoolCounters {
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    double accepted_difficulty = 0;  // pool-accepted
    // Shares accepted by hashgate on this pool's jobs, at the session
    // difficulty (beside accepted_difficulty, what the pool credited).
    double hashgate_accepted_difficulty = 0;
    RateEstimator rate;
    RateEstimator accepted_rate;  // difficulty hashgate accepted on this pool's jobs
  };

  // `commands_waiting` is called after the router was fed (the gateway takes
  // and executes its commands, handing the link ones back to execute()).
  UpstreamLinks(uv_loop_t* loop, const conf::Config& cfg, routing::RouterConfig rc, JobBook& jobs,
                routing::JobVetting* vetting, const routing::SessionRules* rules, Algorithm algo,
                std::function<void()> commands_waiting);
  ~UpstreamLinks();

  routing::Router& router() { return router_; }
  const routing::Router& router() const { return router_; }
  // The pools' TLS contexts; false with `error` naming the pool.
  bool setup_tls(std::string& error);
  // Opens the standing connections and starts the timer.
  void start();
  // Executes a link command (connect, write, close); false for any other.
  bool execute(const routing::Command& c);
  // Re-arms the timer at the router's next deadline.
  void arm();
  // Once a second: the test pools' jobs, in-process transports, then the
  // router's deadlines and tick.
  void poll(double now);
  void tick(double now);
  // The pools of a reloaded config (kept, added, removed as the router
  // matches them); new pools whose TLS setup fails stay disabled, named in `notes`.
  void reload(const conf::Config& next, const routing::RouterConfig& rc, std::vector<std::string>& notes);
  // Closes every transport and the timer (the end of a stop).
  void close();

  PoolCounters& counters(size_t pool) { return pools_[pool]->counters; }
  const TestPool* test_pool(size_t pool) const { return pools_[pool]->test_pool.get(); }

 private:
  struct PoolIo {
    const conf::Pool* cfg = nullptr;
    std::unique_ptr<TestPool> test_pool;
    std::shared_ptr<TlsContext> tls;  // stratum+ssl://
    PoolCounters counters;
  };
  struct LinkIo final : TransportOwner {
    UpstreamLinks* owner = nullptr;
    uint32_t id = 0;
    Transport* transport = nullptr;
    void on_connected() override;
    void on_data(std::string_view b) override;
    void on_disconnected(const std::string& r) override;
  };

  double now() const { return double(uv_now(loop_)) / 1000.0; }
  std::unique_ptr<PoolIo> make_pool(const conf::Pool& p);
  double test_difficulty_ = 1;  // a test:// pool without its own: vardiff.min
  bool setup_pool_tls(PoolIo& io, std::string& error);

  uv_loop_t* loop_;
  Algorithm algo_;
  routing::Router router_;
  std::function<void()> commands_waiting_;
  std::vector<std::unique_ptr<PoolIo>> pools_;
  std::map<uint32_t, std::unique_ptr<LinkIo>> links_;
  uv_timer_t* timer_ = nullptr;  // freed in its close callback
};

}  // namespace hashgate
