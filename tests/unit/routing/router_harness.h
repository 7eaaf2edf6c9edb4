// The routing core on a virtual clock, paired with scripted in-memory pools
// and real miner sessions: the test executes the router's commands the way
// proxy/ does (transports, miner sessions), with no socket and no sleep.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol/downstream_session.h"
#include "protocol/firmware_profile.h"
#include "protocol/line_framer.h"
#include "protocol/stratum_codec.h"
#include "routing/router.h"

namespace hashgate::routing::testing {

// A pool server with knobs for every failure the router must judge.
class ScriptedPool {
 public:
  struct Conn {
    Bytes extranonce1;
    uint16_t port = 0;
    LineFramer framer{65536};
    std::string out;
    bool subscribed = false;
    bool authorized = false;
  };

  bool up = true;                 // accepts connections
  bool silent = false;            // sends no new jobs
  bool session_ids = false;       // offers its subscription for resume
  bool reject_shares = false;
  uint16_t refuse_port = 0;       // connections to this port are refused
  uint32_t extranonce2_size = 8;
  double job_interval = 5;
  uint32_t next_extranonce1 = 0x10000000;
  std::map<uint32_t, Conn> conns;  // by link
  std::map<std::string, Bytes> issued;  // session id -> extranonce1
  std::vector<std::string> users;  // each mining.authorize's user, in order
  uint64_t submits = 0, jobs_sent = 0;
  double last_job_at = 0;

  bool accept(uint32_t link, uint16_t port) {
    if (!up || (refuse_port && port == refuse_port)) return false;
    Conn& c = conns[link];
    c.port = port;
    return true;
  }
  void receive(uint32_t link, std::string_view bytes) {
    auto it = conns.find(link);
    if (it == conns.end()) return;
    Conn& c = it->second;
    c.framer.feed(bytes);
    std::string_view line;
    while (c.framer.next_line(line) == LineFramer::Status::kLine) {
      auto m = parser_.parse(line);
      REQUIRE(m);
      handle(c, *m);
    }
  }
  void garbage(uint32_t link, int lines) {
    for (int i = 0; i < lines; ++i) conns.at(link).out += "this is not json\n";
  }
  void set_extranonce(uint32_t link, uint32_t extranonce2) {
    Conn& c = conns.at(link);
    c.extranonce1 = make_extranonce1();
    write_set_extranonce(c.out, c.extranonce1, extranonce2);
  }
  void reconnect(uint32_t link, uint16_t port, uint32_t wait) { write_reconnect(conns.at(link).out, "", port, wait); }
  void notify_all(bool clean, double now) {
    ++jobs_sent;
    last_job_at = now;
    for (auto& [link, c] : conns)
      if (c.authorized) write_notify(c.out, std::to_string(jobs_sent), job(), clean);
  }

 private:
  Bytes make_extranonce1() {
    const uint32_t v = next_extranonce1++;
    return Bytes{uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
  }
  static NotifyParams job() {
    NotifyParams p;
    p.prevhash.fill(0x11);
    p.coinb1 = Bytes(40, 0x22);
    p.coinb2 = Bytes(20, 0x33);
    p.version = 0x20000000;
    p.nbits = 0x1d00ffff;
    p.ntime = 0x60000000;
    return p;
  }
  void handle(Conn& c, const Incoming& m) {
    if (m.is_response) return;
    if (m.method == "mining.subscribe") {
      std::string resume;
      if (m.param_count > 1 && m.params[1].is_string()) resume = std::string(std::string_view(m.params[1].get_string().value()));
      if (session_ids && issued.count(resume)) {
        c.extranonce1 = issued[resume];
      } else {
        c.extranonce1 = make_extranonce1();
        resume = session_ids ? "s" + std::to_string(issued.size() + 1) : "";
        if (session_ids) issued[resume] = c.extranonce1;
      }
      c.subscribed = true;
      write_subscribe_result(c.out, m.id, resume, c.extranonce1, extranonce2_size);
    } else if (m.method == "mining.authorize") {
      if (m.param_count > 0 && m.params[0].is_string()) users.emplace_back(std::string_view(m.params[0].get_string().value()));
      c.authorized = true;
      write_result_true(c.out, m.id);
      write_set_difficulty(c.out, 1);
      write_notify(c.out, std::to_string(jobs_sent), job(), true);
    } else if (m.method == "mining.submit") {
      ++submits;
      if (reject_shares) {
        write_error(c.out, m.id, ErrorCode::kLowDifficulty, "low difficulty share");
      } else {
        write_result_true(c.out, m.id);
      }
    } else {
      write_result_true(c.out, m.id);  // extranonce.subscribe, configure
    }
  }
  StratumParser parser_{65536};
};

struct Event {
  double t;
  Command c;
};

class Harness {
 public:
  explicit Harness(RouterConfig cfg, size_t pools, JobVetting* vetting = nullptr) {
    ctx_.parser = &miner_parser_;
    ctx_.jobs = &jobs_;
    ctx_.algorithm = Algorithm::kSha256d;
    ctx_.vardiff = VardiffConfig{1, 1, 1, 10};
    cfg.breaker.jitter = 0;  // exact schedules
    for (size_t i = 0; i < pools; ++i) this->pools.push_back(std::make_unique<ScriptedPool>());
    router = std::make_unique<Router>(std::move(cfg), jobs_, vetting);
    router->start(now);
    apply();
  }

  // Runs the virtual clock to `t`: the router's own deadlines, and a tick
  // every whole second (the pools' jobs, then on_timeout and on_tick), as
  // proxy/upstream_links drives it.
  void run_until(double t) {
    for (;;) {
      const double due = std::min(router->next_timeout(), next_tick_);
      if (due > t) break;
      now = std::max(now, due);
      if (due == next_tick_) {
        next_tick_ += 1;
        for (size_t p = 0; p < pools.size(); ++p) {
          ScriptedPool& sp = *pools[p];
          if (!sp.silent && now - sp.last_job_at >= sp.job_interval) sp.notify_all(false, now);
        }
        deliver();
        router->on_timeout(now);
        apply();
        router->on_tick(now);
      } else {
        router->on_timeout(now);
      }
      apply();
    }
    now = t;
  }

  // A miner: subscribe (and extranonce.subscribe when it moves in place), authorize.
  uint64_t add_miner(bool in_place, const std::string& worker = "w") {
    const uint64_t sid = next_sid_++;
    auto s = std::make_unique<DownstreamSession>(ctx_, sid, now);
    s->set_profile(&profile_);
    DownstreamSession& ds = *s;
    miners[sid] = std::move(s);
    std::string in = "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"t\"]}\n";
    if (in_place) in += "{\"id\":2,\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n";
    in += "{\"id\":3,\"method\":\"mining.authorize\",\"params\":[\"" + worker + std::to_string(sid) + "\",\"x\"]}\n";
    ds.receive(in, now);
    drain(sid);
    apply();
    return sid;
  }

  void kill_pool(size_t p) {
    pools[p]->up = false;
    std::vector<uint32_t> links;
    for (auto& [link, c] : pools[p]->conns) links.push_back(link);
    pools[p]->conns.clear();
    for (uint32_t l : links) {
      open_links.erase(l);
      router->link_dropped(l, "pool closed the connection", now);
      apply();
    }
  }

  // Lets a pool's queued output reach the router.
  void deliver() {
    for (int round = 0; round < 100; ++round) {
      bool any = false;
      for (size_t p = 0; p < pools.size(); ++p)
        for (auto& [link, c] : pools[p]->conns) {
          if (c.out.empty()) continue;
          std::string bytes;
          bytes.swap(c.out);
          router->link_data(link, bytes, now);
          any = true;
          apply();
          break;  // conns may have changed
        }
      if (!any) return;
    }
  }

  void apply() {
    std::vector<Command> cs;
    while (router->take_commands(cs)) {
      for (Command& c : cs) execute(c);
    }
  }

  // The commands seen, by kind (and optionally session).
  std::vector<Event> seen(Command::Kind k) const {
    std::vector<Event> out;
    for (const Event& e : events)
      if (e.c.kind == k) out.push_back(e);
    return out;
  }
  std::vector<Event> logs(const std::string& name) const {
    std::vector<Event> out;
    for (const Event& e : events)
      if (e.c.kind == Command::Kind::kLog && e.c.log.name == name) out.push_back(e);
    return out;
  }
  std::vector<double> connect_times(size_t pool) const {
    std::vector<double> out;
    for (const Event& e : events)
      if (e.c.kind == Command::Kind::kConnectLink && e.c.pool == pool) out.push_back(e.t);
    return out;
  }
  // Where each live miner sits now (its last binding), by session.
  std::map<uint64_t, Binding> placements() const {
    std::map<uint64_t, Binding> out;
    for (const Event& e : events) {
      if (!miners.count(e.c.session)) continue;
      if (e.c.kind == Command::Kind::kBind || e.c.kind == Command::Kind::kSetExtranonce) out[e.c.session] = e.c.binding;
      if (e.c.kind == Command::Kind::kUnbind) out.erase(e.c.session);
    }
    return out;
  }
  uint32_t link_of_pool(size_t p) const {
    for (const auto& l : router->links())
      if (l.pool == p && l.ready) return l.id;
    return 0;
  }

  double now = 0;
  std::unique_ptr<Router> router;
  std::vector<std::unique_ptr<ScriptedPool>> pools;
  std::map<uint64_t, std::unique_ptr<DownstreamSession>> miners;
  std::vector<Event> events;
  std::map<uint32_t, size_t> open_links;  // link -> pool

 private:
  void drain(uint64_t sid) {
    auto it = miners.find(sid);
    if (it == miners.end()) return;
    DownstreamSession& s = *it->second;
    SessionEvent ev;
    while (s.next_event(ev)) {
      if (ev.kind == SessionEventKind::kNeedUpstream) router->need_upstream(sid, s, std::nullopt, now);
      if (ev.kind == SessionEventKind::kAuthorize &&
          !router->authorize(sid, s, std::nullopt, ev.id, ev.auth, now))
        s.authorize_result(ev.id, ev.auth.user, true, {});
    }
    std::vector<OutChunk> out;
    s.take_output(out);  // what the miner would read: not checked here
  }

  void execute(Command& c) {
    events.push_back(Event{now, c});
    auto miner = [&]() -> DownstreamSession* {
      auto it = miners.find(c.session);
      return it == miners.end() ? nullptr : it->second.get();
    };
    switch (c.kind) {
      case Command::Kind::kConnectLink: {
        const uint16_t port = c.endpoint ? c.endpoint->port : 0;
        if (!pools[c.pool]->accept(c.link, port)) {
          router->link_dropped(c.link, "connection refused", now);
          return;
        }
        open_links[c.link] = c.pool;
        router->link_connected(c.link, now);
        return;
      }
      case Command::Kind::kWriteLink: {
        auto it = open_links.find(c.link);
        if (it == open_links.end()) return;
        ScriptedPool& sp = *pools[it->second];
        sp.receive(c.link, c.bytes);
        auto ci = sp.conns.find(c.link);
        if (ci == sp.conns.end()) return;
        std::string reply;
        reply.swap(ci->second.out);
        if (!reply.empty()) router->link_data(c.link, reply, now);
        return;
      }
      case Command::Kind::kCloseLink:
        if (auto it = open_links.find(c.link); it != open_links.end()) {
          pools[it->second]->conns.erase(c.link);
          open_links.erase(it);
        }
        return;
      case Command::Kind::kBind:
        if (DownstreamSession* s = miner()) {
          s->bind(c.binding, now);
          drain(c.session);
        }
        return;
      case Command::Kind::kSetExtranonce:
        if (DownstreamSession* s = miner()) s->send_set_extranonce(c.binding, now);
        return;
      case Command::Kind::kUnbind:
        if (DownstreamSession* s = miner()) s->unbind();
        return;
      case Command::Kind::kReconnect:
      case Command::Kind::kCloseSession:
        // The miner leaves (it comes back as a new session).
        if (miners.erase(c.session)) router->session_closed(c.session);
        return;
      case Command::Kind::kJob:
        for (uint64_t sid : c.sessions)
          if (auto it = miners.find(sid); it != miners.end()) it->second->on_job(c.job, false);
        return;
      case Command::Kind::kVersionMask:
      case Command::Kind::kAuthorizeResult:
      case Command::Kind::kVerdict:
      case Command::Kind::kPoolFailover:
      case Command::Kind::kLog:
        return;
    }
  }

  JobBook jobs_{Algorithm::kSha256d};
  StratumParser miner_parser_{16384};
  SessionContext ctx_;
  FirmwareProfile profile_;
  double next_tick_ = 1;
  uint64_t next_sid_ = 1;

 public:
  JobBook& jobs() { return jobs_; }
  // The one firmware profile every miner of this harness has.
  FirmwareProfile& profile() { return profile_; }
};

// Pools "a" (priority 0) and "b" (priority 1), the failover defaults but a
// 30 s job timeout.
inline RouterConfig two_pools() {
  RouterConfig cfg;
  for (int i = 0; i < 2; ++i) {
    PoolConfig p;
    p.name = i == 0 ? "a" : "b";
    p.url = "stratum+tcp://127.0.0.1:" + std::to_string(3333 + i);
    p.endpoint = Endpoint{"127.0.0.1", uint16_t(3333 + i)};
    p.user = "farm";
    p.priority = i;
    cfg.pools.push_back(p);
  }
  cfg.job_timeout_seconds = 30;
  return cfg;
}

}  // namespace hashgate::routing::testing
