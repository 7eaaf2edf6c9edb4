// loadgen: drives one whole scenario against a running hashgate from one
// libuv loop — the pool hashgate connects to, and N miner sessions from
// several 127.x.y.z addresses. Measures connect rate, job fan-out (pool
// notify to each session), share answer latency at fixed share rates, and
// hashgate's RSS and CPU per phase (from /proc). Shares are real: headers
// are built and hashed here with OpenSSL, independently of hashing/.
//
//   loadgen --pool-port P --gateway-file F --miners N [--sources 127.0.0.1,...]
//           [--algorithm sha256d|scrypt] [--rates 2000,5000,10000] [--share-seconds 5]
//           [--clean-jobs 5] [--report out.json]
// The gateway file holds "PORT PID" once hashgate listens (bench/scale.py writes it).
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <simdjson.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace {

using Bytes = std::vector<uint8_t>;

uint64_t now_ns() { return uv_hrtime(); }

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}

Bytes unhex(std::string_view s) {
  Bytes b;
  for (size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(uint8_t(std::stoul(std::string(s.substr(i, 2)), nullptr, 16)));
  return b;
}

void sha256d(const uint8_t* p, size_t n, uint8_t out[32]) {
  uint8_t t[32];
  SHA256(p, n, t);
  SHA256(t, 32, out);
}

struct Options {
  int pool_port = 0;
  std::string gateway_file;
  int miners = 1000;
  std::vector<std::string> sources = {"127.0.0.1"};
  bool scrypt = false;
  std::vector<double> rates = {2000};
  double share_seconds = 5;
  int clean_jobs = 5;
  std::string report;
  int max_connecting = 400;
};

struct Percentiles {
  static std::string of(std::vector<double> v) {
    if (v.empty()) return "{\"n\":0}";
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1)))] * 1000.0; };
    char buf[256];
    std::snprintf(buf, sizeof buf, "{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}",
                  v.size(), at(0.5), at(0.99), at(0.999), v.back() * 1000.0);
    return buf;
  }
};

// ------------------------------------------------------------------ lines over TCP

struct Conn {
  uv_tcp_t tcp;
  std::string in;
  bool closed = false;
  virtual ~Conn() = default;
  virtual void on_line(std::string_view line) = 0;
  virtual void on_close() {}

  void start_reading() {
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&tcp),
        [](uv_handle_t*, size_t, uv_buf_t* b) {
          static char buf[65536];
          *b = uv_buf_init(buf, sizeof buf);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
          auto* c = static_cast<Conn*>(s->data);
          if (n < 0) {
            c->closed = true;
            c->on_close();
            uv_read_stop(s);
            return;
          }
          c->in.append(b->base, size_t(n));
          size_t pos = 0, nl;
          while ((nl = c->in.find('\n', pos)) != std::string::npos) {
            c->on_line(std::string_view(c->in).substr(pos, nl - pos));
            pos = nl + 1;
          }
          c->in.erase(0, pos);
        });
  }

  void send(std::string s) {
    if (closed) return;
    struct W {
      uv_write_t req;
      std::string data;
    };
    auto* w = new W{{}, std::move(s)};
    uv_buf_t buf = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                 [](uv_write_t* r, int) { delete reinterpret_cast<W*>(r); }) < 0)
      delete w;
  }
};

simdjson::dom::parser g_json;

std::string_view str(simdjson::simdjson_result<simdjson::dom::element> e) {
  std::string_view v;
  return e.get(v) ? std::string_view() : v;
}

int64_t num(simdjson::simdjson_result<simdjson::dom::element> e) {
  int64_t v = 0;
  return e.get(v) ? 0 : v;
}

bool flag(simdjson::simdjson_result<simdjson::dom::element> e) {
  bool v = false;
  return e.get(v) ? false : v;
}

// ------------------------------------------------------------------ the pool side

struct Job {
  std::string id;
  uint32_t ntime = 0;  // unique per job: how miners' copies (with hashgate's own job ids) are matched
  std::string notify;  // the whole line
  uint64_t sent_ns = 0;
};

struct Loadgen;

struct PoolConn final : Conn {
  Loadgen* lg = nullptr;
  uint32_t en1 = 0;
  bool authorized = false;
  void on_line(std::string_view line) override;
};

// ------------------------------------------------------------------ a miner

struct MinerJob {
  std::string id;
  Bytes prevhash_header;  // header order
  Bytes coinb1, coinb2;
  std::vector<Bytes> branch;
  uint32_t version = 0, nbits = 0, ntime = 0;
};

struct Miner final : Conn {
  Loadgen* lg = nullptr;
  int index = 0;
  std::string worker;
  uv_connect_t connect_req;
  Bytes en1;
  uint32_t en2_size = 0;
  bool subscribed = false, authorized = false;
  std::shared_ptr<MinerJob> job;
  uint64_t en2_counter = 0;
  std::string last_valid;  // params of the last valid share, for a duplicate
  std::unordered_map<uint64_t, std::pair<uint64_t, char>> pending;  // id -> (sent ns, kind)
  uint64_t next_id = 10;
  std::unordered_map<uint32_t, uint64_t> job_recv_ns;  // job ntime -> first receipt
  void on_line(std::string_view line) override;
  void on_close() override;
  bool make_share(char kind, std::string& params);
};

struct Loadgen {
  Options o;
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t pool_listener;
  std::vector<PoolConn*> pool_conns;
  std::vector<Job> jobs;
  int job_seq = 0;
  std::vector<std::unique_ptr<Miner>> miners;
  int gateway_port = 0;
  int gateway_pid = 0;
  double share_difficulty_byte = 0x7f;  // a hash with its top byte under this meets the share target
  // counters
  uint64_t accepted = 0, rejected_expected = 0, rejected_unexpected = 0, answers_late = 0;
  std::map<char, uint64_t> sent_by_kind;
  std::vector<double> latencies;  // seconds, valid shares only, current phase
  uint64_t connect_failures = 0, disconnects = 0;
  int connecting = 0, next_miner = 0;
  std::ostringstream report;

  std::unordered_map<uint32_t, int> job_receipts;  // job ntime -> miners that got it
  std::vector<std::pair<std::string, std::shared_ptr<MinerJob>>> notify_cache;  // the last few lines, parsed
  std::shared_ptr<MinerJob> parsed_notify(std::string_view line) const {
    for (const auto& [text, job] : notify_cache)
      if (text == line) return job;
    return nullptr;
  }
  void remember_notify(std::string_view line, std::shared_ptr<MinerJob> job) {
    if (notify_cache.size() >= 16) notify_cache.erase(notify_cache.begin());
    notify_cache.emplace_back(std::string(line), std::move(job));
  }

  void pool_broadcast(bool clean);
  std::string make_notify(const std::string& id, bool clean);
  void connect_more();
  int ready_miners() const {
    int n = 0;
    for (auto& m : miners) n += m->authorized && m->job ? 1 : 0;
    return n;
  }
  // From /proc: resident KiB and CPU seconds of the gateway.
  void gateway_usage(double& rss_kib, double& cpu_s) const {
    rss_kib = cpu_s = 0;
    std::ifstream st("/proc/" + std::to_string(gateway_pid) + "/status");
    std::string line;
    while (std::getline(st, line))
      if (line.rfind("VmRSS:", 0) == 0) rss_kib = std::stod(line.substr(6));
    std::ifstream s2("/proc/" + std::to_string(gateway_pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(s2)), {});
    auto close = all.rfind(')');
    std::istringstream fields(all.substr(close + 2));
    std::string f;
    double ut = 0, stt = 0;
    for (int i = 3; fields >> f; ++i) {
      if (i == 14) ut = std::stod(f);
      if (i == 15) {
        stt = std::stod(f);
        break;
      }
    }
    cpu_s = (ut + stt) / double(sysconf(_SC_CLK_TCK));
  }
};

std::string Loadgen::make_notify(const std::string& id, bool clean) {
  uint8_t prev[32], c1[40], c2[30], br[32];
  for (int i = 0; i < 32; ++i) prev[i] = uint8_t(job_seq * 7 + i);
  for (int i = 0; i < 40; ++i) c1[i] = uint8_t(i + 1);
  for (int i = 0; i < 30; ++i) c2[i] = uint8_t(0x80 + i);
  for (int i = 0; i < 32; ++i) br[i] = uint8_t(0x40 + i + job_seq);
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"id\":null,\"method\":\"mining.notify\",\"params\":[\"%s\",\"%s\",\"%s\",\"%s\",[\"%s\"],"
                "\"20000000\",\"%s\",\"%08x\",%s]}\n",
                id.c_str(), hex(prev, 32).c_str(), hex(c1, 40).c_str(), hex(c2, 30).c_str(), hex(br, 32).c_str(),
                o.scrypt ? "1e0ffff0" : "1d00ffff", unsigned(1700000000 + job_seq), clean ? "true" : "false");
  return buf;
}

void Loadgen::pool_broadcast(bool clean) {
  ++job_seq;
  Job j;
  j.id = "j" + std::to_string(job_seq);
  j.notify = make_notify(j.id, clean);
  j.ntime = uint32_t(1700000000 + job_seq);
  j.sent_ns = now_ns();
  for (PoolConn* c : pool_conns)
    if (c->authorized) c->send(j.notify);
  jobs.push_back(std::move(j));
}

void PoolConn::on_line(std::string_view line) {
  simdjson::dom::element doc;
  if (g_json.parse(line.data(), line.size()).get(doc)) return;
  const int64_t id = num(doc["id"]);
  const std::string_view method = str(doc["method"]);
  if (method.empty()) return;
  char buf[512];
  if (method == "mining.subscribe") {
    std::snprintf(buf, sizeof buf,
                  "{\"id\":%lld,\"result\":[[[\"mining.notify\",\"s%u\"]],\"%08x\",8],\"error\":null}\n",
                  (long long)id, en1, en1);
    send(buf);
  } else if (method == "mining.authorize") {
    std::snprintf(buf, sizeof buf, "{\"id\":%lld,\"result\":true,\"error\":null}\n", (long long)id);
    send(buf);
    // The pool's target: a hundred times the miners' (about 1 % forwarded).
    std::snprintf(buf, sizeof buf, "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[%.12g]}\n",
                  (lg->o.scrypt ? 65535.0 / 2147483648.0 : 65535.0 / 140737488355328.0) * 128);
    send(buf);
    authorized = true;
    if (lg->jobs.empty()) {
      lg->pool_broadcast(true);
    } else {
      send(lg->jobs.back().notify);
    }
  } else if (method == "mining.submit" || method == "mining.configure" || method == "mining.extranonce.subscribe" ||
             method == "mining.suggest_difficulty") {
    std::snprintf(buf, sizeof buf, "{\"id\":%lld,\"result\":true,\"error\":null}\n", (long long)id);
    send(buf);
  }
}

// ------------------------------------------------------------------ miner side

void Miner::on_line(std::string_view line) {
  const uint64_t t = now_ns();
  // Every session of one pool connection gets the same notify line: each
  // distinct one is parsed once, so that loadgen's own work (which shares
  // this machine's cores with hashgate) stays small next to hashgate's.
  if (std::shared_ptr<MinerJob> seen = lg->parsed_notify(line)) {
    if (job_recv_ns.emplace(seen->ntime, t).second) ++lg->job_receipts[seen->ntime];
    job = std::move(seen);
    return;
  }
  simdjson::dom::element doc;
  if (g_json.parse(line.data(), line.size()).get(doc)) return;
  const std::string_view method = str(doc["method"]);
  if (!method.empty()) {
    if (method == "mining.notify") {
      simdjson::dom::array p;
      if (doc["params"].get(p)) return;
      if (p.size() < 9) return;
      auto j = std::make_shared<MinerJob>();
      j->id = std::string(str(p.at(0)));
      Bytes prev = unhex(str(p.at(1)));
      if (prev.size() != 32) return;
      for (size_t w = 0; w < 8; ++w)
        for (int b = 3; b >= 0; --b) j->prevhash_header.push_back(prev[w * 4 + size_t(b)]);
      j->coinb1 = unhex(str(p.at(2)));
      j->coinb2 = unhex(str(p.at(3)));
      simdjson::dom::array br;
      if (!p.at(4).get(br))
        for (simdjson::dom::element e : br) {
          std::string_view v;
          if (!e.get(v)) j->branch.push_back(unhex(v));
        }
      j->version = uint32_t(std::stoul(std::string(str(p.at(5))), nullptr, 16));
      j->nbits = uint32_t(std::stoul(std::string(str(p.at(6))), nullptr, 16));
      j->ntime = uint32_t(std::stoul(std::string(str(p.at(7))), nullptr, 16));
      if (job_recv_ns.emplace(j->ntime, t).second) ++lg->job_receipts[j->ntime];
      lg->remember_notify(line, j);
      job = j;
    }
    return;
  }
  const int64_t id = num(doc["id"]);
  if (id == 1) {  // subscribe
    simdjson::dom::array r;
    if (doc["result"].get(r) || r.size() < 3) return;
    en1 = unhex(str(r.at(1)));
    en2_size = uint32_t(num(r.at(2)));
    subscribed = true;
    return;
  }
  if (id == 2) {
    authorized = flag(doc["result"]);
    return;
  }
  auto it = pending.find(uint64_t(id));
  if (it == pending.end()) return;
  const auto [sent, kind] = it->second;
  pending.erase(it);
  const bool ok = flag(doc["result"]);
  if (kind == 'v') {
    lg->latencies.push_back(double(t - sent) / 1e9);
    ok ? ++lg->accepted : ++lg->rejected_unexpected;
  } else {
    ok ? ++lg->rejected_unexpected : ++lg->rejected_expected;  // low, stale, duplicate must be refused
  }
}

void Miner::on_close() { ++lg->disconnects; }

// A share of the given kind for the current job: v(alid), l(ow), s(tale), d(uplicate).
bool Miner::make_share(char kind, std::string& params) {
  if (!job || !authorized) return false;
  if (kind == 'd') {
    if (last_valid.empty()) return false;
    params = last_valid;
    return true;
  }
  const MinerJob& j = *job;
  Bytes en2(en2_size);
  uint64_t c = ++en2_counter;
  for (size_t i = 0; i < en2_size && i < 8; ++i) en2[en2_size - 1 - i] = uint8_t(c >> (8 * i));
  Bytes cb = j.coinb1;
  cb.insert(cb.end(), en1.begin(), en1.end());
  cb.insert(cb.end(), en2.begin(), en2.end());
  cb.insert(cb.end(), j.coinb2.begin(), j.coinb2.end());
  uint8_t root[64];
  sha256d(cb.data(), cb.size(), root);
  for (const Bytes& b : j.branch) {
    std::memcpy(root + 32, b.data(), 32);
    sha256d(root, 64, root);
  }
  uint8_t h[80];
  auto le32 = [](uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
  };
  le32(h, j.version);
  std::memcpy(h + 4, j.prevhash_header.data(), 32);
  std::memcpy(h + 36, root, 32);
  le32(h + 68, j.ntime);
  le32(h + 72, j.nbits);
  uint32_t nonce = uint32_t(c * 2654435761u);
  for (int tries = 0; tries < 64; ++tries, ++nonce) {
    le32(h + 76, nonce);
    uint8_t out[32];
    if (lg->o.scrypt) {
      EVP_PBE_scrypt(reinterpret_cast<const char*>(h), 80, h, 80, 1024, 1, 1, 0, out, 32);
    } else {
      sha256d(h, 80, out);
    }
    // Share target: 2^255 (half of all hashes). Keep off the boundary.
    const bool meets = out[31] < 0x7f, misses = out[31] >= 0x81;
    if ((kind == 'v' && meets) || (kind == 'l' && misses) || kind == 's') {
      char buf[256];
      std::snprintf(buf, sizeof buf, "[\"%s\",\"%s\",\"%s\",\"%08x\",\"%08x\"]", worker.c_str(),
                    kind == 's' ? "deadbeef" : j.id.c_str(), hex(en2.data(), en2.size()).c_str(), j.ntime, nonce);
      params = buf;
      if (kind == 'v') last_valid = params;
      return true;
    }
  }
  return false;
}

void Loadgen::connect_more() {
  while (connecting < o.max_connecting && next_miner < o.miners) {
    auto m = std::make_unique<Miner>();
    m->lg = this;
    m->index = next_miner;
    m->worker = "lg." + std::to_string(next_miner);
    uv_tcp_init(loop, &m->tcp);
    m->tcp.data = m.get();
    sockaddr_in src{}, dst{};
    uv_ip4_addr(o.sources[size_t(next_miner) % o.sources.size()].c_str(), 0, &src);
    uv_ip4_addr("127.0.0.1", gateway_port, &dst);
    uv_tcp_bind(&m->tcp, reinterpret_cast<sockaddr*>(&src), 0);
    m->connect_req.data = m.get();
    ++connecting;
    ++next_miner;
    int rc = uv_tcp_connect(&m->connect_req, &m->tcp, reinterpret_cast<sockaddr*>(&dst), [](uv_connect_t* r, int st) {
      auto* m = static_cast<Miner*>(r->data);
      --m->lg->connecting;
      if (st < 0) {
        ++m->lg->connect_failures;
        m->closed = true;
      } else {
        m->start_reading();
        m->send("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"loadgen/1\"]}\n{\"id\":2,\"method\":"
                "\"mining.authorize\",\"params\":[\"" + m->worker + "\",\"x\"]}\n");
      }
      m->lg->connect_more();
    });
    if (rc < 0) {
      --connecting;
      ++connect_failures;
    }
    miners.push_back(std::move(m));
  }
}

// Runs the loop until `done` or `seconds` pass.
template <typename F>
bool run_until(uv_loop_t* loop, double seconds, F done) {
  const uint64_t end = now_ns() + uint64_t(seconds * 1e9);
  while (!done()) {
    if (now_ns() > end) return false;
    uv_run(loop, UV_RUN_ONCE);  // a 1 ms ticker keeps this from blocking longer
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  Loadgen lg;
  Options& o = lg.o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--pool-port") o.pool_port = std::stoi(v);
    else if (k == "--gateway-file") o.gateway_file = v;
    else if (k == "--miners") o.miners = std::stoi(v);
    else if (k == "--algorithm") o.scrypt = v == "scrypt";
    else if (k == "--share-seconds") o.share_seconds = std::stod(v);
    else if (k == "--clean-jobs") o.clean_jobs = std::stoi(v);
    else if (k == "--report") o.report = v;
    else if (k == "--sources" || k == "--rates") {
      std::stringstream ss(v);
      std::string x;
      if (k == "--sources") o.sources.clear(); else o.rates.clear();
      while (std::getline(ss, x, ',')) {
        if (k == "--sources") o.sources.push_back(x); else o.rates.push_back(std::stod(x));
      }
    } else {
      std::fprintf(stderr, "loadgen: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  // The pool side.
  uv_tcp_init(lg.loop, &lg.pool_listener);
  lg.pool_listener.data = &lg;
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", o.pool_port, &a);
  if (uv_tcp_bind(&lg.pool_listener, reinterpret_cast<sockaddr*>(&a), 0) ||
      uv_listen(reinterpret_cast<uv_stream_t*>(&lg.pool_listener), 64, [](uv_stream_t* s, int) {
        auto* lg = static_cast<Loadgen*>(s->data);
        auto* c = new PoolConn;
        c->lg = lg;
        c->en1 = 0xb0000000u + uint32_t(lg->pool_conns.size());
        uv_tcp_init(lg->loop, &c->tcp);
        c->tcp.data = c;
        if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) == 0) {
          lg->pool_conns.push_back(c);
          c->start_reading();
        }
      })) {
    std::fprintf(stderr, "loadgen: cannot listen on 127.0.0.1:%d\n", o.pool_port);
    return 1;
  }
  uv_timer_t ticker;
  uv_timer_init(lg.loop, &ticker);
  uv_timer_start(&ticker, [](uv_timer_t*) {}, 1, 1);
  std::printf("{\"event\":\"pool_listening\",\"port\":%d}\n", o.pool_port);
  std::fflush(stdout);
  // Wait for hashgate: "PORT PID" in the gateway file, then its pool connection.
  if (!run_until(lg.loop, 60, [&] {
        std::ifstream f(o.gateway_file);
        return bool(f >> lg.gateway_port >> lg.gateway_pid);
      }) ||
      !run_until(lg.loop, 60, [&] {
        return std::any_of(lg.pool_conns.begin(), lg.pool_conns.end(), [](PoolConn* c) { return c->authorized; });
      })) {
    std::fprintf(stderr, "loadgen: hashgate did not show up\n");
    return 1;
  }
  double rss0, cpu0;
  lg.gateway_usage(rss0, cpu0);
  auto& r = lg.report;
  r << "{\"miners\":" << o.miners << ",\"algorithm\":\"" << (o.scrypt ? "scrypt" : "sha256d") << "\"";
  r << ",\"gateway_rss_kib_idle\":" << rss0;

  // 1. Connect every miner.
  const uint64_t t0 = now_ns();
  lg.connect_more();
  const bool all_in = run_until(lg.loop, 120, [&] { return lg.ready_miners() + int(lg.connect_failures) >= o.miners; });
  const double connect_s = double(now_ns() - t0) / 1e9;
  run_until(lg.loop, 2, [] { return false; });  // settle
  double rss1, cpu1;
  lg.gateway_usage(rss1, cpu1);
  r << ",\"connected\":" << lg.ready_miners() << ",\"connect_failures\":" << lg.connect_failures
    << ",\"connect_seconds\":" << connect_s << ",\"connects_per_second\":" << double(lg.ready_miners()) / connect_s
    << ",\"gateway_rss_kib_connected\":" << rss1
    << ",\"rss_kib_per_session\":" << (rss1 - rss0) / std::max(1, lg.ready_miners());
  if (!all_in) std::fprintf(stderr, "loadgen: only %d of %d miners ready\n", lg.ready_miners(), o.miners);

  // 2. Fan-out: clean jobs one second apart; every miner must get each.
  std::vector<double> fan;
  std::vector<double> fan_last;
  int complete_jobs = 0;
  for (int k = 0; k < o.clean_jobs; ++k) {
    const int ready = lg.ready_miners();
    lg.pool_broadcast(true);
    const Job& j = lg.jobs.back();
    auto got = [&] { return lg.job_receipts[j.ntime]; };  // counted as lines arrive: no walk per loop turn
    run_until(lg.loop, 10, [&] { return got() >= ready; });
    fan_last.clear();
    for (auto& m : lg.miners)
      if (auto it = m->job_recv_ns.find(j.ntime); it != m->job_recv_ns.end())
        fan_last.push_back(double(it->second - j.sent_ns) / 1e9);
    fan.insert(fan.end(), fan_last.begin(), fan_last.end());
    complete_jobs += got() >= ready ? 1 : 0;
    run_until(lg.loop, 1, [] { return false; });
  }
  r << ",\"clean_jobs\":" << o.clean_jobs << ",\"clean_jobs_to_every_miner\":" << complete_jobs
    << ",\"fanout_all\":" << Percentiles::of(fan) << ",\"fanout_last_job\":" << Percentiles::of(fan_last);

  // 3. Shares at each rate: 97 % valid, 1 % each low, stale, duplicate.
  r << ",\"share_phases\":[";
  for (size_t ri = 0; ri < o.rates.size(); ++ri) {
    const double rate = o.rates[ri];
    lg.latencies.clear();
    lg.accepted = lg.rejected_expected = lg.rejected_unexpected = 0;
    // Every share of the phase is made before the clock starts (for scrypt
    // each is hashed here with OpenSSL, ~0.3 ms a hash): sending is then
    // cheap, so loadgen's own hashing neither caps the rate nor takes the
    // cores from hashgate while it is measured.
    struct Planned {
      Miner* m;
      char kind;
      std::string params;
    };
    // Slot i goes to miner i mod N with kind(i); threads take disjoint sets
    // of miners (make_share changes only its miner), so the plan is the
    // same whatever the thread count. hashgate is idle meanwhile.
    const size_t planned = size_t(rate * o.share_seconds);
    std::vector<Planned> slots(planned);
    std::vector<char> made(planned, 0);
    const size_t nthreads = std::max(1u, std::thread::hardware_concurrency());
    auto plan_part = [&](size_t t) {
      for (size_t i = 0; i < planned; ++i) {
        Miner& m = *lg.miners[i % lg.miners.size()];
        if ((i % lg.miners.size()) % nthreads != t || m.closed) continue;
        const uint64_t n = i + 1;
        char kind = n % 100 == 0 ? 'l' : n % 100 == 1 ? 's' : n % 100 == 2 ? 'd' : 'v';
        std::string params;
        if (!m.make_share(kind, params)) {
          kind = 'v';  // no valid share to duplicate yet on this miner
          if (!m.make_share(kind, params)) continue;
        }
        slots[i] = Planned{&m, kind, std::move(params)};
        made[i] = 1;
      }
    };
    std::vector<std::thread> planners;
    for (size_t t = 1; t < nthreads; ++t) planners.emplace_back(plan_part, t);
    plan_part(0);
    for (std::thread& t : planners) t.join();
    std::vector<Planned> plan;
    plan.reserve(planned);
    for (size_t i = 0; i < planned; ++i)
      if (made[i]) plan.push_back(std::move(slots[i]));
    double rss_a, cpu_a;
    lg.gateway_usage(rss_a, cpu_a);
    const uint64_t start = now_ns();
    uint64_t sent = 0;
    size_t next = 0;
    const uint64_t end = start + uint64_t(o.share_seconds * 1e9);
    while (now_ns() < end) {
      const uint64_t due = uint64_t(rate * double(now_ns() - start) / 1e9);
      // At most 1 ms of sending before answers are read again: a longer
      // burst would be counted as hashgate's latency.
      const uint64_t burst_end = now_ns() + 1000000;
      while (sent < due && next < plan.size() && now_ns() < burst_end) {
        Planned& p = plan[next++];
        if (p.m->closed) continue;
        const uint64_t id = p.m->next_id++;
        p.m->pending[id] = {now_ns(), p.kind};
        p.m->send("{\"id\":" + std::to_string(id) + ",\"method\":\"mining.submit\",\"params\":" + p.params + "}\n");
        ++lg.sent_by_kind[p.kind];
        ++sent;
      }
      // Wait for answers or the 1 ms ticker rather than spin (a spinning
      // loadgen would hold one of the cores hashgate runs on), unless
      // shares are already due.
      const bool behind = next < plan.size() && sent < uint64_t(rate * double(now_ns() - start) / 1e9);
      uv_run(lg.loop, behind ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    }
    // Answers still on their way.
    run_until(lg.loop, 10, [&] {
      for (auto& m : lg.miners)
        if (!m->pending.empty()) return false;
      return true;
    });
    const double secs = double(now_ns() - start) / 1e9;
    double rss_b, cpu_b;
    lg.gateway_usage(rss_b, cpu_b);
    uint64_t unanswered = 0;
    for (auto& m : lg.miners) unanswered += m->pending.size(), m->pending.clear();
    r << (ri ? "," : "") << "{\"target_rate\":" << rate << ",\"sent\":" << sent
      << ",\"achieved_rate\":" << double(sent) / o.share_seconds << ",\"accepted\":" << lg.accepted
      << ",\"refused_as_expected\":" << lg.rejected_expected << ",\"unexpected_answers\":" << lg.rejected_unexpected
      << ",\"unanswered\":" << unanswered << ",\"latency_valid\":" << Percentiles::of(lg.latencies)
      << ",\"gateway_cpu_seconds\":" << (cpu_b - cpu_a)
      << ",\"gateway_cpu_seconds_per_1000_shares\":" << (cpu_b - cpu_a) * 1000.0 / std::max<double>(1, double(sent))
      << ",\"gateway_rss_kib\":" << rss_b << ",\"seconds\":" << secs << "}";
  }
  r << "],\"disconnects\":" << lg.disconnects << "}";
  std::string out = r.str();
  if (!o.report.empty()) std::ofstream(o.report) << out << "\n";
  std::printf("%s\n", out.c_str());
  return 0;
}
