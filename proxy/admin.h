// The admin HTTP server (HttpServer: its own threads): /metrics, /healthz,
// /readyz, /api/v1/..., and the dashboard at /. It reads the snapshots the
// loop publishes and hands changes to the loop as commands; it never touches
// the loop's data.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "proxy/http_server.h"
#include "proxy/snapshot.h"

namespace hashgate {

struct AdminCommand {
  enum class Kind { kPoolEnable, kPoolDisable, kUnban };
  Kind kind;
  std::string target;  // a pool name, or an address to unban
};

class AdminServer {
 public:
  // `submit` runs on an admin thread: it must only queue the command.
  AdminServer(const SnapshotBox& box, conf::Admin cfg, std::function<void(AdminCommand)> submit);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and starts serving; false with `error` saying why.
  bool start(std::string& error);
  int port() const { return port_; }
  void stop();
  // A reload may change the token; requests read it under its own mutex.
  void set_token(const std::string& token);

  // Rendering, public for tests: the Prometheus text exposition of a snapshot.
  static std::string metrics_text(const Snapshot& s);

 private:
  // Health on the I/O thread; nullopt for the rest, which go to a worker.
  std::optional<HttpResponse> fast(const HttpRequest& r);
  HttpResponse handle(const HttpRequest& r);
  // GET/HEAD: health, /metrics (admin_metrics.cc), /api/v1 reads
  // (admin_api.cc), the dashboard.
  HttpResponse read_route(const HttpRequest& r, const Snapshot& s);
  // POST/DELETE: changes, behind the bearer token; queued for the loop.
  HttpResponse change_route(const HttpRequest& r, const Snapshot& s);
  // The bearer token, compared in constant time; at most kMaxGuesses wrong
  // ones per client address a minute (past it, nothing is compared).
  bool token_ok(const std::string& peer, const std::string* auth, const std::string& token);
  static constexpr unsigned kMaxGuesses = 10;
  static constexpr double kGuessWindowSeconds = 60;
  static constexpr size_t kMaxGuessers = 4096;

  const SnapshotBox& box_;
  conf::Admin cfg_;
  std::function<void(AdminCommand)> submit_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  mutable std::mutex token_mu_;
  std::string token_;
  std::mutex guess_mu_;
  std::unordered_map<std::string, std::pair<double, unsigned>> guesses_;  // peer -> window start, wrong tokens
};

}  // namespace hashgate
