#include "proxy/admin.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>

#include "proxy/admin_api.h"
#include "proxy/admin_format.h"
#include "proxy/admin_ledger.h"
#include "proxy/clock.h"
#include "proxy/dashboard.h"
#include "proxy/economics_admin.h"
#include "proxy/log.h"

// The server itself: health on the I/O thread, the route table, and the
// change routes (token, throttled guesses, commands queued for the loop).
// Read routes are in admin_api.cc, /metrics in admin_metrics.cc.
namespace hashgate {
namespace {

using admin_format::error_json;
using admin_format::kv;

// A loop that has not published for this long is not responsive.
constexpr double kStallSeconds = 5;

HttpResponse reply(int status, const char* type, std::string body, const char* extra = "") {
  return HttpResponse{status, type, std::move(body), extra};
}

HttpResponse reply_json(int status, std::string body) { return reply(status, "application/json", std::move(body)); }

}  // namespace

AdminServer::AdminServer(const SnapshotBox& box, conf::Admin cfg, std::function<void(AdminCommand)> submit)
    : box_(box), cfg_(std::move(cfg)), submit_(std::move(submit)), token_(cfg_.token) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::set_token(const std::string& token) {
  std::lock_guard<std::mutex> g(token_mu_);
  token_ = token;
}

bool AdminServer::start(std::string& error) {
  HttpServerOptions o;
  o.host = cfg_.bind->host;
  o.port = cfg_.bind->port;
  // Health is answered on the server's I/O thread, never behind a worker
  // busy with /metrics or a client that does not finish its request.
  server_ = std::make_unique<HttpServer>(
      o, [this](const HttpRequest& r) { return fast(r); }, [this](const HttpRequest& r) { return handle(r); });
  if (!server_->start(error)) {
    server_.reset();
    return false;
  }
  port_ = server_->port();
  return true;
}

void AdminServer::stop() {
  if (server_) {
    server_->stop();
    server_.reset();
  }
}

std::optional<HttpResponse> AdminServer::fast(const HttpRequest& r) {
  if (r.method != "GET" && r.method != "HEAD") return std::nullopt;
  if (r.path != "/healthz" && r.path != "/readyz") return std::nullopt;
  return handle(r);
}

bool AdminServer::token_ok(const std::string& peer, const std::string* auth, const std::string& token) {
  const double t = mono_now();
  std::lock_guard<std::mutex> g(guess_mu_);
  if (guesses_.size() > kMaxGuessers) {
    for (auto it = guesses_.begin(); it != guesses_.end();)
      it = t - it->second.first > kGuessWindowSeconds ? guesses_.erase(it) : std::next(it);
  }
  auto& [since, count] = guesses_[peer];
  if (t - since > kGuessWindowSeconds) since = t, count = 0;
  if (count >= kMaxGuesses) return false;  // throttled: not even compared
  const std::string want = "Bearer " + token;
  // Constant time: how much of a guess is right must not show in the timing.
  const bool ok = auth && auth->size() == want.size() && CRYPTO_memcmp(auth->data(), want.data(), want.size()) == 0;
  if (!ok) ++count;
  return ok;
}

HttpResponse AdminServer::handle(const HttpRequest& ri) {
  auto snap = box_.load();
  if (!snap) return reply(503, "text/plain", "starting\n");
  if (ri.method == "GET" || ri.method == "HEAD") return read_route(ri, *snap);
  if (ri.method == "POST" || ri.method == "DELETE") return change_route(ri, *snap);
  return reply_json(405, error_json("method " + ri.method + " not allowed"));
}

HttpResponse AdminServer::read_route(const HttpRequest& ri, const Snapshot& s) {
  const std::string& uri = ri.path;
  if (uri == "/metrics") return reply(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(s));
  if (uri == "/healthz") {
    double age = mono_now() - s.published_mono;
    if (age > kStallSeconds)
      return reply(503, "text/plain", "event loop stalled: no snapshot for " + std::to_string(int(age)) + " s\n");
    return reply(200, "text/plain", "ok\n");
  }
  if (uri == "/readyz") {
    if (!s.ready) return reply(503, "text/plain", "not ready: " + s.not_ready_reason + "\n");
    return reply(200, "text/plain", "ready\n");
  }
  if (uri == "/api/v1/status") return reply_json(200, admin_api::status_json(s));
  if (uri == "/api/v1/pools") return reply_json(200, admin_api::pools_json(s));
  if (uri == "/api/v1/bans") return reply_json(200, admin_api::bans_json(s));
  if (uri == "/api/v1/boards") return reply_json(200, admin_api::boards_json(s));
  if (uri == "/api/v1/economics") return reply_json(200, economics_json(s));
  if (uri == "/api/v1/workers") {
    size_t limit = 1000;
    if (auto v = ri.query_value("limit"); v && !v->empty()) limit = size_t(std::max(0L, std::strtol(v->c_str(), nullptr, 10)));
    return reply_json(200, admin_api::workers_json(s, limit));
  }
  if (uri == "/" || uri == "/index.html") return reply(200, "text/html; charset=utf-8", std::string(kDashboardHtml));
  if (auto ledger = ledger_route(ri, s)) return *ledger;
  return reply_json(404, error_json("no such endpoint: " + uri));
}

HttpResponse AdminServer::change_route(const HttpRequest& ri, const Snapshot& s) {
  const std::string& method = ri.method;
  const std::string& uri = ri.path;
  // POST /api/v1/pools/<name>/enable|disable and DELETE /api/v1/bans/<address>, with the bearer token.
  const std::string prefix = "/api/v1/pools/";
  std::string token;
  {
    std::lock_guard<std::mutex> g(token_mu_);
    token = token_;
  }
  if (token.empty()) return reply_json(403, error_json("changes are disabled: set admin.token in the config"));
  if (!token_ok(ri.peer, ri.header("Authorization"), token)) {
    log::warn("admin_unauthorized").kv("uri", uri).kv("peer", ri.peer);
    return reply(401, "application/json", error_json("missing or wrong bearer token (at most " +
                                                      std::to_string(kMaxGuesses) + " wrong ones a minute)"),
                 "WWW-Authenticate: Bearer\r\n");
  }
  const std::string bans_prefix = "/api/v1/bans/";
  if (method == "DELETE" && uri.rfind(bans_prefix, 0) == 0) {
    std::string addr = uri.substr(bans_prefix.size());
    bool known = std::any_of(s.bans.begin(), s.bans.end(), [&](const BanSnapshot& b) { return b.address == addr; });
    if (!known) return reply_json(404, error_json("'" + addr + "' is not banned"));
    submit_(AdminCommand{AdminCommand::Kind::kUnban, addr});
    log::info("admin_command").kv("action", "unban").kv("address", addr).kv("peer", ri.peer);
    std::string body = "{\"queued\":true";
    kv(body, "unban", addr);
    body += "}";
    return reply_json(202, body);
  }
  if (method == "POST" && uri.rfind(prefix, 0) == 0) {
    std::string rest = uri.substr(prefix.size());
    auto slash = rest.rfind('/');
    std::string name = slash == std::string::npos ? "" : rest.substr(0, slash);
    std::string action = slash == std::string::npos ? rest : rest.substr(slash + 1);
    bool known = std::any_of(s.pools.begin(), s.pools.end(), [&](const PoolSnapshot& p) { return p.name == name; });
    if (!known) return reply_json(404, error_json("no pool named '" + name + "'"));
    if (action != "enable" && action != "disable")
      return reply_json(400, error_json("unknown action '" + action + "' (expected enable or disable)"));
    submit_(AdminCommand{action == "enable" ? AdminCommand::Kind::kPoolEnable : AdminCommand::Kind::kPoolDisable,
                         name});
    log::info("admin_command").kv("action", "pool_" + action).kv("pool", name).kv("peer", ri.peer);
    std::string body = "{\"queued\":true";
    kv(body, "pool", name);
    kv(body, "action", action);
    body += "}";
    return reply_json(202, body);
  }
  return reply_json(404, error_json("no such endpoint: " + uri));
}

}  // namespace hashgate
