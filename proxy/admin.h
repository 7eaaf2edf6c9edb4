// The admin HTTP server (civetweb, its own threads): /metrics, /healthz,
// /readyz, /api/v1/..., and the dashboard at /. It reads the snapshots the
// loop publishes and hands changes to the loop as commands; it never touches
// the loop's data.
#pragma once

#include <functional>
#include <string>

#include "conf/config.h"
#include "proxy/snapshot.h"

struct mg_context;
struct mg_connection;

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
  static int dispatch(mg_connection* c, void* self);
  int handle(mg_connection* c);

  const SnapshotBox& box_;
  conf::Admin cfg_;
  std::function<void(AdminCommand)> submit_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  mutable std::mutex token_mu_;
  std::string token_;
};

}  // namespace hashgate
