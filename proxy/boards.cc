#include "proxy/boards.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <unordered_map>

#include "hashing/bytes.h"
#include "hashing/header.h"
#include "hw/driver.h"
#include "hw/serial.h"
#include "protocol/upstream_session.h"
#include "proxy/log.h"

namespace hashgate {
namespace {

constexpr double kTickSeconds = 0.1;
constexpr double kBackoffInitial = 0.5, kBackoffMax = 30;
constexpr double kClientRetrySeconds = 1;
constexpr size_t kErrorWindow = 100, kErrorWindowMin = 20;

double mono() { return double(uv_hrtime()) / 1e9; }
double unix_now() {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return double(tv.tv_sec) + tv.tv_usec / 1e6;
}

double default_work_seconds(const std::string& driver) {
  // Bitaxe-class chips sweep 2^32 nonces (times the rolled versions) in well
  // under a second; the scrypt boards take minutes.
  return driver.rfind("bm", 0) == 0 ? 0.5 : 10;
}

unsigned default_chips(const std::string& driver) { return driver == "gc3355" ? 5 : driver == "zeus" ? 6 : 1; }

U256 scale_target(const U256& t, double scale) {
  if (scale == 1) return t;
  double v = t.to_double() * scale;
  return v >= U256::max().to_double() ? U256::max() : U256::from_double(v);
}

struct WriteReq {
  uv_write_t req;
  std::string data;
};

}  // namespace

struct BoardManager::Board {
  BoardManager* mgr = nullptr;
  conf::Board cfg;
  std::unique_ptr<hw::Driver> driver;
  StratumParser parser{65536};
  std::unique_ptr<UpstreamSession> session;

  // serial
  int fd = -1;
  uv_poll_t* poll = nullptr;
  std::vector<hw::DriverAction> out;  // waiting for the tty to take them
  bool want_write = false;
  uv_timer_t* pace = nullptr;  // ends a driver's pause between writes
  double pace_until = 0;
  double reopen_at = 0;
  double backoff = kBackoffInitial;
  bool ever_opened = false;

  // Stratum client to the gateway
  uv_tcp_t* tcp = nullptr;
  uv_connect_t connect_req;
  bool connected = false;
  double client_retry_at = 0;

  // work
  struct Work {
    std::string job_id;
    Bytes extranonce2;
    uint32_t ntime = 0, version = 0, version_mask = 0;
    Header header{};
    U256 share_target, board_target;
    double difficulty = 0;
    bool used = false;
    // Replaced by a clean job: its nonces are still the board's good work
    // (chips finish what they had), counted but not submitted.
    bool stale = false;
  };
  std::unordered_map<uint8_t, Work> works;
  std::optional<NotifyParams> job;
  uint64_t extranonce2_counter = 0;
  double next_work_at = 0;
  double mining_since = 0;
  bool paused = false;  // by the profit guard (proxy/farm_economics.h)
  std::unordered_map<uint64_t, double> submitted;  // token -> difficulty
  uint64_t next_token = 1;

  // health
  std::vector<bool> verdicts;  // last kErrorWindow nonces: true = hardware error
  size_t verdict_pos = 0;
  double last_nonce_mono = 0;
  uv_timer_t* timer = nullptr;

  BoardSnapshot st;
  std::vector<char> read_buf = std::vector<char>(16384);
  std::mt19937 rng{std::random_device{}()};

  double now() const { return mono(); }

  void set_state(const std::string& s, const std::string& why = {}) {
    if (st.state == s) return;
    st.state = s;
    if (!why.empty()) st.last_error = why;
    auto e = (s == "down") ? log::warn("board_state") : log::info("board_state");
    e.kv("board", cfg.name).kv("driver", cfg.driver).kv("path", cfg.path).kv("state", s);
    if (!why.empty()) e.kv("reason", why);
  }

  // ---------------------------------------------------------------- serial
  void open_port() {
    std::string err;
    uint32_t baud = hw::initial_baud(cfg.driver);
    fd = hw::open_serial(cfg.path, baud, err);
    if (fd < 0) {
      schedule_reopen(err);
      return;
    }
    // DTR and RTS up (GridSeed boards need RTS; a pty has neither line).
    if (!hw::set_modem_lines(fd, true, true))
      log::debug("board_no_modem_lines").kv("board", cfg.name).kv("path", cfg.path);
    if (ever_opened) ++st.reopens;
    ever_opened = true;
    poll = new uv_poll_t;
    uv_poll_init(mgr->loop_, poll, fd);
    poll->data = this;
    update_poll();
    works.clear();
    verdicts.assign(0, false);
    set_state("initialising");
    driver->start(now());
    pump_driver();
  }

  void update_poll() {
    if (!poll) return;
    int events = UV_READABLE | UV_DISCONNECT | (want_write ? UV_WRITABLE : 0);
    uv_poll_start(poll, events, [](uv_poll_t* h, int status, int events) {
      auto* b = static_cast<Board*>(h->data);
      if (!b) return;
      if (status < 0) return b->close_port(std::string("poll: ") + uv_strerror(status), true);
      if (events & UV_WRITABLE) b->flush_out();
      if (b->fd >= 0 && (events & (UV_READABLE | UV_DISCONNECT))) b->read_port();
    });
  }

  void read_port() {
    uint8_t buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        driver->on_bytes({buf, size_t(n)}, now());
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      // EIO (the other side of a pty closed, a USB adapter unplugged) or end of file.
      return close_port(n == 0 ? "the device hung up" : std::string("read: ") + std::strerror(errno), true);
    }
    pump_driver();
  }

  void flush_out() {
    while (!out.empty() && fd >= 0) {
      hw::DriverAction& a = out.front();
      if (a.kind == hw::DriverAction::kPause) {
        // Wait on a timer, not in the loop: other boards and the gateway go on.
        double t = now();
        if (pace_until == 0) pace_until = t + a.seconds;
        if (t < pace_until) {
          arm_pace(pace_until - t);
          break;
        }
        pace_until = 0;
        out.erase(out.begin());
        continue;
      }
      if (a.kind == hw::DriverAction::kSetBaud) {
        std::string err;
        if (!hw::set_serial_baud(fd, a.baud, err)) return close_port("baud " + std::to_string(a.baud) + ": " + err, true);
        out.erase(out.begin());
        continue;
      }
      ssize_t n = ::write(fd, a.bytes.data(), a.bytes.size());
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return close_port(std::string("write: ") + std::strerror(errno), true);
      a.bytes.erase(0, size_t(n));
      if (a.bytes.empty()) out.erase(out.begin());
    }
    bool ww = !out.empty() && out.front().kind != hw::DriverAction::kPause;
    if (ww != want_write) {
      want_write = ww;
      update_poll();
    }
  }

  void arm_pace(double seconds) {
    if (!pace) {
      pace = new uv_timer_t;
      uv_timer_init(mgr->loop_, pace);
      pace->data = this;
    }
    uv_timer_start(
        pace, [](uv_timer_t* t) { if (t->data) static_cast<Board*>(t->data)->flush_out(); },
        uint64_t(std::ceil(seconds * 1000)), 0);
  }

  void close_port(const std::string& why, bool reopen) {
    if (pace) {
      pace->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(pace), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      pace = nullptr;
    }
    pace_until = 0;
    if (poll) {
      poll->data = nullptr;
      uv_poll_stop(poll);
      uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll = nullptr;
    }
    if (fd >= 0) ::close(fd);
    fd = -1;
    out.clear();
    want_write = false;
    works.clear();
    if (reopen) schedule_reopen(why);
  }

  void schedule_reopen(const std::string& why) {
    double jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng);
    reopen_at = now() + backoff * jitter;
    log::warn("board_down").kv("board", cfg.name).kv("path", cfg.path).kv("reason", why).kv("retry_seconds", backoff * jitter);
    backoff = std::min(backoff * 2, kBackoffMax);
    st.state = "";  // force the transition log below
    set_state("down", why);
  }

  // A board that went silent or erred too much: re-initialised from a fresh open.
  void restart(const std::string& why) {
    ++st.restarts;
    log::warn("board_restart").kv("board", cfg.name).kv("reason", why).kv("restarts", st.restarts);
    close_port(why, true);
  }

  void pump_driver() {
    for (auto& a : driver->take_actions()) out.push_back(std::move(a));
    flush_out();
    for (auto& e : driver->take_events()) on_driver_event(e);
  }

  void on_driver_event(const hw::DriverEvent& e) {
    switch (e.kind) {
      case hw::DriverEvent::kReady:
        st.chips_found = e.count;
        backoff = kBackoffInitial;
        log::info("board_ready").kv("board", cfg.name).kv("driver", cfg.driver).kv("chips", e.count)
            .kv("chips_expected", st.chips_expected).kv("detail", e.detail);
        if (e.count < st.chips_expected)
          log::warn("board_chips_missing").kv("board", cfg.name).kv("found", e.count).kv("expected", st.chips_expected);
        st.nonces_by_chip.resize(std::max<size_t>(st.nonces_by_chip.size(), st.chips_expected));
        st.hardware_errors_by_chip.resize(st.nonces_by_chip.size());
        mining_since = now();
        last_nonce_mono = now();
        next_work_at = 0;
        maybe_work();
        break;
      case hw::DriverEvent::kInitFailed:
        restart(e.detail);
        break;
      case hw::DriverEvent::kCrcError: ++st.crc_errors; break;
      case hw::DriverEvent::kJunk: st.junk_bytes += e.count; break;
      case hw::DriverEvent::kNonce: on_nonce(e); break;
    }
  }

  void note_verdict(bool hw_error) {
    if (verdicts.size() < kErrorWindow) {
      verdicts.push_back(hw_error);
    } else {
      verdicts[verdict_pos] = hw_error;
      verdict_pos = (verdict_pos + 1) % kErrorWindow;
    }
  }

  void on_nonce(const hw::DriverEvent& e) {
    const Work* found = nullptr;
    Header h{};
    Hash256 hash{};
    for (uint8_t id : e.work_ids) {
      auto it = works.find(id);
      if (it == works.end()) continue;
      const Work& w = it->second;
      h = w.header;
      if (w.version_mask) put_le32(h.data(), (w.version & ~w.version_mask) | (e.version & w.version_mask));
      put_le32(h.data() + 76, e.nonce);
      hash = pow_hash(mgr->algo_, h);
      if (U256::from_hash(hash) <= w.board_target) {
        found = &w;
        break;
      }
    }
    size_t chip = e.chip;
    if (chip >= st.nonces_by_chip.size()) {
      st.nonces_by_chip.resize(chip + 1);
      st.hardware_errors_by_chip.resize(chip + 1);
    }
    if (!found) {
      ++st.hardware_errors;
      ++st.hardware_errors_by_chip[chip];
      note_verdict(true);
      log::warn("board_hardware_error").kv("board", cfg.name).kv("chip", unsigned(chip)).kv("core", e.core)
          .kv("nonce", hex_u32_string(e.nonce));
      check_error_ratio();
      return;
    }
    ++st.nonces;
    ++st.nonces_by_chip[chip];
    note_verdict(false);
    last_nonce_mono = now();
    st.last_nonce_unix = unix_now();
    if (found->stale) return;
    if (!(U256::from_hash(hash) <= found->share_target)) {
      ++st.below_share_target;
      return;
    }
    if (!session || !connected) return;  // no pool path now: the nonce is counted, not lost silently
    std::optional<uint32_t> vbits;
    if (found->version_mask) vbits = get_le32(h.data()) & found->version_mask;
    uint64_t token = next_token++;
    submitted[token] = found->difficulty;
    session->submit(token, cfg.worker, found->job_id, found->extranonce2, found->ntime, e.nonce, vbits, now());
    ++st.submitted;
    flush_client();
  }

  void mark_stale() {
    for (auto& [id, w] : works) w.stale = true;
  }

  void check_error_ratio() {
    if (verdicts.size() < kErrorWindowMin) return;
    size_t bad = size_t(std::count(verdicts.begin(), verdicts.end(), true));
    if (double(bad) / double(verdicts.size()) > cfg.max_hardware_error_ratio)
      restart("hardware errors: " + std::to_string(bad) + " of the last " + std::to_string(verdicts.size()) + " nonces");
  }

  // ---------------------------------------------------------------- work
  void maybe_work() {
    if (paused) {
      if (driver->ready() && fd >= 0) set_state("paused");
      return;
    }
    if (!driver->ready() || fd < 0 || !session || session->state() != UpstreamSession::State::kSubscribed ||
        !session->authorized() || !job) {
      if (driver->ready() && fd >= 0) set_state("waiting_for_work");
      return;
    }
    const SubscribeResult& sub = session->subscription();
    if (sub.extranonce2_size == 0) {
      set_state("waiting_for_work", "the gateway gave no extranonce2 space");
      return;
    }
    Work w;
    w.job_id = job->job_id;
    w.extranonce2.resize(sub.extranonce2_size);
    uint64_t c = extranonce2_counter++;
    for (size_t i = 0; i < w.extranonce2.size() && i < 8; ++i) w.extranonce2[i] = uint8_t(c >> (8 * i));
    w.ntime = job->ntime;
    w.version = job->version;
    w.version_mask = session->version_mask();
    Hash256 cb = coinbase_hash(job->coinb1, sub.extranonce1, w.extranonce2, job->coinb2);
    Hash256 root = merkle_root(cb, job->merkle_branch);
    w.header = build_header(job->version, job->prevhash, root, job->ntime, job->nbits, 0);
    w.difficulty = session->difficulty();
    w.share_target = target_from_difficulty(mgr->algo_, w.difficulty);
    w.board_target = scale_target(driver->chip_target(w.share_target), cfg.difficulty_scale);
    hw::BoardWork bw;
    bw.header = w.header;
    bw.target = driver->chip_target(w.share_target);
    bw.version_mask = w.version_mask;
    uint8_t id = driver->send_work(bw);
    works[id] = std::move(w);
    ++st.works_sent;
    next_work_at = now() + cfg.work_seconds;
    set_state("mining");
    pump_driver();
  }

  // ---------------------------------------------------------------- Stratum client
  void connect_client() {
    tcp = new uv_tcp_t;
    uv_tcp_init(mgr->loop_, tcp);
    tcp->data = this;
    connect_req.data = this;
    sockaddr_storage addr{};
    std::string host = mgr->gateway_.host;
    if (uv_ip4_addr(host.c_str(), mgr->gateway_.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0)
      uv_ip6_addr(host.c_str(), mgr->gateway_.port, reinterpret_cast<sockaddr_in6*>(&addr));
    int rc = uv_tcp_connect(&connect_req, tcp, reinterpret_cast<sockaddr*>(&addr), [](uv_connect_t* req, int status) {
      auto* b = static_cast<Board*>(req->data);
      if (!b || !b->tcp) return;
      if (status < 0) return b->client_lost(std::string("connect: ") + uv_strerror(status));
      b->client_connected();
    });
    if (rc != 0) client_lost(std::string("connect: ") + uv_strerror(rc));
  }

  void client_connected() {
    connected = true;
    UpstreamOptions o;
    o.agent = "hashgate-board/" + cfg.driver;
    o.user = cfg.worker;
    o.password = "x";
    o.version_mask = driver->algorithm() == Algorithm::kSha256d ? 0x1fffe000 : 0;
    o.extranonce_subscribe = true;
    session = std::make_unique<UpstreamSession>(parser, o);
    session->start();
    flush_client();
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          // One buffer per board on the heap (a thread_local this size would
          // come out of every thread's stack, civetweb's small ones included).
          auto* b = static_cast<Board*>(h->data);
          *buf = b ? uv_buf_init(b->read_buf.data(), unsigned(b->read_buf.size())) : uv_buf_init(nullptr, 0);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* b = static_cast<Board*>(s->data);
          if (!b) return;
          if (n < 0) return b->client_lost(n == UV_EOF ? "the gateway closed the connection" : uv_strerror(int(n)));
          if (n == 0) return;
          b->session->receive({buf->base, size_t(n)}, b->now());
          b->client_events();
        });
  }

  void client_events() {
    UpstreamEvent ev;
    while (session && session->next_event(ev)) {
      switch (ev.kind) {
        case UpstreamEventKind::kJob:
          job = ev.notify;
          if (ev.notify.clean_jobs) mark_stale();  // old work would only yield stale shares
          maybe_work();
          break;
        case UpstreamEventKind::kSetExtranonce:
          mark_stale();
          maybe_work();
          break;
        case UpstreamEventKind::kAuthorized:
          if (!ev.ok) log::warn("board_authorize_refused").kv("board", cfg.name).kv("worker", cfg.worker)
                          .kv("error", ev.error.message);
          maybe_work();
          break;
        case UpstreamEventKind::kSubmitResult: {
          auto it = submitted.find(ev.token);
          double d = it != submitted.end() ? it->second : 0;
          if (it != submitted.end()) submitted.erase(it);
          if (ev.ok) {
            ++st.accepted;
            st.accepted_difficulty += d;
          } else {
            ++st.rejected;
            if (ev.error.code == ErrorCode::kStaleJob) ++st.rejected_stale;
            else log::warn("board_share_rejected").kv("board", cfg.name).kv("code", int(ev.error.code))
                     .kv("error", ev.error.message);
          }
          break;
        }
        case UpstreamEventKind::kReconnect:
          client_lost("the gateway asked for a reconnect");
          return;
        case UpstreamEventKind::kProtocolError:
          client_lost("protocol error from the gateway: " + ev.error.message);
          return;
        default: break;
      }
    }
    flush_client();
  }

  void flush_client() {
    if (!session || !tcp || !connected || session->output().empty()) return;
    auto* w = new WriteReq;
    w->data.swap(session->output());
    uv_buf_t buf = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp), &buf, 1,
                      [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); });
    if (rc != 0) {
      delete w;
      client_lost(std::string("write: ") + uv_strerror(rc));
    }
  }

  void close_client() {
    if (tcp) {
      tcp->data = nullptr;
      connect_req.data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      tcp = nullptr;
    }
    connected = false;
    session.reset();
    submitted.clear();
    job.reset();
  }

  void client_lost(const std::string& why) {
    log::info("board_client_reconnecting").kv("board", cfg.name).kv("reason", why);
    close_client();
    works.clear();
    client_retry_at = now() + kClientRetrySeconds;
    if (driver->ready() && fd >= 0) set_state("waiting_for_work");
  }

  // ---------------------------------------------------------------- clock
  void tick() {
    double t = now();
    if (fd < 0 && reopen_at > 0 && t >= reopen_at) {
      reopen_at = 0;
      open_port();
    }
    if (!tcp && client_retry_at > 0 && t >= client_retry_at) {
      client_retry_at = 0;
      connect_client();
    }
    if (fd < 0) return;
    driver->on_tick(t);
    pump_driver();
    if (fd < 0) return;
    if (st.state == "mining") {
      if (t - last_nonce_mono > cfg.silent_seconds) return restart("silent for " + std::to_string(int(cfg.silent_seconds)) + " s");
      if (t >= next_work_at) maybe_work();
    }
  }
};

BoardManager::BoardManager(uv_loop_t* loop, const std::vector<conf::Board>& boards, Algorithm algo,
                           conf::Endpoint gateway)
    : loop_(loop), algo_(algo), gateway_(std::move(gateway)) {
  for (const conf::Board& c : boards) {
    auto b = std::make_unique<Board>();
    b->mgr = this;
    b->cfg = c;
    if (b->cfg.chips == 0) b->cfg.chips = default_chips(c.driver);
    if (b->cfg.worker.empty()) b->cfg.worker = "board." + c.name;
    if (b->cfg.work_seconds <= 0) b->cfg.work_seconds = default_work_seconds(c.driver);
    b->driver = hw::make_driver({c.driver, b->cfg.chips, c.frequency, c.baud});
    b->st.name = c.name;
    b->st.driver = c.driver;
    b->st.path = c.path;
    b->st.worker = b->cfg.worker;
    b->st.chips_expected = b->cfg.chips;
    b->st.frequency = c.frequency;
    b->st.state = c.enabled ? "opening" : "disabled";
    boards_.push_back(std::move(b));
  }
}

BoardManager::~BoardManager() = default;

void BoardManager::start() {
  for (auto& b : boards_) {
    if (!b->cfg.enabled) continue;
    b->timer = new uv_timer_t;
    uv_timer_init(loop_, b->timer);
    b->timer->data = b.get();
    uv_timer_start(
        b->timer, [](uv_timer_t* t) { if (t->data) static_cast<Board*>(t->data)->tick(); },
        uint64_t(kTickSeconds * 1000), uint64_t(kTickSeconds * 1000));
    log::info("board_configured").kv("board", b->cfg.name).kv("driver", b->cfg.driver).kv("path", b->cfg.path)
        .kv("baud", b->cfg.baud).kv("chips", b->cfg.chips).kv("worker", b->cfg.worker);
    b->open_port();
    b->connect_client();
  }
}

void BoardManager::stop() {
  for (auto& b : boards_) {
    if (b->timer) {
      b->timer->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(b->timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      b->timer = nullptr;
    }
    b->close_port("hashgate stopping", false);
    b->close_client();
  }
}

void BoardManager::set_paused(const std::string& board, bool paused) {
  for (auto& b : boards_) {
    if (b->cfg.name != board || b->paused == paused) continue;
    b->paused = paused;
    b->works.clear();  // nonces for old work after a pause would be stale anyway
    // A resumed board starts its silence count afresh and gets work at once.
    b->last_nonce_mono = b->now();
    b->next_work_at = 0;
    b->maybe_work();
  }
}

std::vector<BoardSnapshot> BoardManager::snapshot() const {
  std::vector<BoardSnapshot> out;
  const double per_diff = hashes_per_difficulty(algo_);
  for (auto& b : boards_) {
    BoardSnapshot s = b->st;
    double up = b->mining_since > 0 ? std::max(1.0, mono() - b->mining_since) : 0;
    s.hashrate = up > 0 ? s.accepted_difficulty * per_diff / up : 0;
    s.chips_found = b->driver->chips_found();
    out.push_back(std::move(s));
  }
  return out;
}

void BoardManager::log_summary() const {
  for (const BoardSnapshot& s : snapshot())
    log::info("board_stats").kv("board", s.name).kv("state", s.state).kv("nonces", s.nonces)
        .kv("hardware_errors", s.hardware_errors).kv("submitted", s.submitted).kv("accepted", s.accepted)
        .kv("rejected", s.rejected).kv("restarts", s.restarts).kv("reopens", s.reopens)
        .kv("crc_errors", s.crc_errors);
}

}  // namespace hashgate
