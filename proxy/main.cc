// hashgate's entry point: arguments, config, logging, signals, the loop.
#include <uv.h>

#include <netdb.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifdef HASHGATE_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "conf/config.h"
#include "proxy/admin.h"
#include "proxy/config_reload.h"
#include "proxy/gateway.h"
#include "proxy/guard.h"
#include "proxy/log.h"

namespace {

const char kUsage[] =
    "usage: hashgate --config FILE [--watch-config SECONDS]\n"
    "                                   run the gateway; with --watch-config, reload (as on SIGHUP)\n"
    "                                   when FILE changes (checked every SECONDS; e.g. a Kubernetes ConfigMap)\n"
    "       hashgate --healthcheck [HOST:PORT | --config FILE]\n"
    "                                   GET /healthz on the admin server: HOST:PORT, or FILE's admin.bind\n"
    "                                   (a wildcard address probes loopback), default 127.0.0.1:9100;\n"
    "                                   exit 0 if healthy\n"
    "       hashgate --check-config FILE  validate FILE; exit 0, or 1 with the error\n"
    "       hashgate --version          print the version and allocator\n"
    "       hashgate --help             this text\n";

std::string allocator_description() {
#ifdef HASHGATE_WITH_MIMALLOC
  // malloc is replaced when memory from plain malloc lies in mimalloc's heap.
  void* p = std::malloc(64);
  if (p) std::memset(p, 0, 64);
  bool replaced = mi_is_in_heap_region(p);
  std::free(p);
  int v = mi_version();
  return "mimalloc " + std::to_string(v / 100) + "." + std::to_string((v / 10) % 10) + "." + std::to_string(v % 10) +
         (replaced ? " (replaces malloc)" : " (linked, but malloc is NOT replaced)");
#else
  return "system malloc";
#endif
}

// A blocking GET /healthz with a 3 s timeout, for container health checks
// (the runtime image has no curl).
int healthcheck(const std::string& where) {
  auto ep = hashgate::conf::parse_endpoint(where);
  if (!ep) {
    std::fprintf(stderr, "hashgate: --healthcheck needs host:port, got '%s'\n", where.c_str());
    return 2;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(ep->host.c_str(), std::to_string(ep->port).c_str(), &hints, &res) != 0 || !res) {
    std::fprintf(stderr, "unhealthy: cannot resolve %s\n", ep->host.c_str());
    return 1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const bool connected = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  if (!connected) {
    std::fprintf(stderr, "unhealthy: cannot connect to %s: %s\n", where.c_str(), std::strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  const std::string req = "GET /healthz HTTP/1.0\r\nHost: " + ep->host + "\r\n\r\n";
  std::string resp;
  if (send(fd, req.data(), req.size(), 0) == ssize_t(req.size())) {
    char buf[512];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0 && resp.size() < 4096) resp.append(buf, size_t(n));
  }
  close(fd);
  const bool ok = resp.rfind("HTTP/1.1 200", 0) == 0 || resp.rfind("HTTP/1.0 200", 0) == 0;
  auto body = resp.find("\r\n\r\n");
  std::fprintf(ok ? stdout : stderr, "%s%s", ok ? "" : "unhealthy: ",
               body == std::string::npos ? "no answer\n" : resp.substr(body + 4).c_str());
  return ok ? 0 : 1;
}

// The address a health check probes for a config: its admin.bind, with a
// wildcard host replaced by loopback (the probe runs beside the gateway, e.g.
// a container's HEALTHCHECK, so it follows HASHGATE_ADMIN_BIND or a mounted
// config instead of a fixed port).
int healthcheck_config(const std::string& path) {
  hashgate::conf::Config cfg;
  try {
    cfg = hashgate::conf::load_file(path);
  } catch (const hashgate::conf::ConfigError& e) {
    std::fprintf(stderr, "unhealthy: config error: %s\n", e.what());
    return 2;
  }
  if (!cfg.admin.bind) {
    std::fprintf(stderr, "unhealthy: %s has no admin.bind, nothing to probe\n", path.c_str());
    return 2;
  }
  std::string host = cfg.admin.bind->host;
  if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host == "::" || host == "[::]") host = "::1";
  const bool v6 = host.find(':') != std::string::npos;
  return healthcheck((v6 ? "[" + host + "]" : host) + ":" + std::to_string(cfg.admin.bind->port));
}

struct Runtime {
  hashgate::Gateway* gateway;
  hashgate::ConfigReloader* reloader;
  uv_signal_t term, intr, hup;
  uv_timer_t watch;
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  bool health_only = false;
  std::string health_target;
  double watch_seconds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("hashgate %s\nallocator: %s\n", HASHGATE_VERSION, allocator_description().c_str());
      return 0;
    } else if (a == "--healthcheck") {
      health_only = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') health_target = argv[++i];
    } else if (a == "--watch-config" && i + 1 < argc) {
      char* end = nullptr;
      watch_seconds = std::strtod(argv[++i], &end);
      if (*end || !(watch_seconds > 0)) {
        std::fprintf(stderr, "hashgate: --watch-config needs a number of seconds, got '%s'\n", argv[i]);
        return 2;
      }
    } else if ((a == "--config" || a == "--check-config" || a == "-c") && i + 1 < argc) {
      config_path = argv[++i];
      check_only = a == "--check-config";
    } else {
      std::fprintf(stderr, "hashgate: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (health_only) {
    if (!health_target.empty() || config_path.empty())
      return healthcheck(health_target.empty() ? "127.0.0.1:9100" : health_target);
    return healthcheck_config(config_path);
  }
  if (config_path.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }

  hashgate::conf::Config cfg;
  try {
    cfg = hashgate::conf::load_file(config_path);
    hashgate::JobIntegrity::validate(cfg);
  } catch (const hashgate::conf::ConfigError& e) {
    std::fprintf(stderr, "hashgate: config error: %s\n", e.what());
    return 1;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  // Every miner is a socket: take all the descriptors the system allows.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  getrlimit(RLIMIT_NOFILE, &nofile);
  hashgate::log::init(cfg.logging.level, cfg.logging.format);
  hashgate::log::info("starting")
      .kv("version", HASHGATE_VERSION)
      .kv("config", config_path)
      .kv("algorithm", cfg.algorithm)
      .kv("allocator", allocator_description())
      .kv("max_open_files", uint64_t(nofile.rlim_cur));
  // Said loudly once: limits that refuse part of a farm behind one NAT
  // address when it restarts (issue 17.11).
  if (const uint32_t n = hashgate::nat_burst_admitted(cfg.limits); n < hashgate::kNatFarmMiners)
    hashgate::log::warn("limits_refuse_nat_burst")
        .kv("limits.max_connections_per_address", uint64_t(cfg.limits.max_connections_per_address))
        .kv("limits.new_connections_per_second", cfg.limits.new_connections_per_second)
        .kv("admitted_at_once", uint64_t(n))
        .kv("farm_behind_one_address", uint64_t(hashgate::kNatFarmMiners))
        .kv("advice", "miners behind one NAT address past admitted_at_once are refused when they reconnect together: "
                      "raise the limits or put the address in bans.allowlist");

  uv_loop_t* loop = uv_default_loop();
  hashgate::Gateway gateway(loop, cfg);
  std::unique_ptr<hashgate::AdminServer> admin;

  // Signals are handled before any listener is up: an operator or a test
  // may send SIGHUP as soon as the `listening` line shows, and its default
  // action would end the process. Signal handles never keep the loop alive
  // on their own (unref): the loop ends when the gateway has released
  // everything after a stop. SIGHUP and the file watch read the file on a
  // thread of their own (proxy/config_reload.h); the loop applies the result.
  hashgate::ConfigReloader reloader(
      loop, config_path,
      [&gateway, &admin](hashgate::conf::Config next) {
        const std::string token = next.admin.token;
        std::vector<std::string> notes;
        gateway.reload(std::move(next), notes);
        if (admin) admin->set_token(token);
      },
      [&gateway](const std::string& why) { gateway.reload_failed(why); });
  Runtime rt{&gateway, &reloader, {}, {}, {}, {}};
  loop->data = &rt;
  for (uv_signal_t* s : {&rt.term, &rt.intr, &rt.hup}) {
    uv_signal_init(loop, s);
    uv_unref(reinterpret_cast<uv_handle_t*>(s));
  }
  // SIGTERM/SIGINT: drain then stop; a second one stops without waiting for miners.
  auto on_stop = [](uv_signal_t* s, int signum) {
    static_cast<Runtime*>(s->loop->data)->gateway->stop(signum == SIGINT ? "SIGINT" : "SIGTERM");
  };
  uv_signal_start(&rt.term, on_stop, SIGTERM);
  uv_signal_start(&rt.intr, on_stop, SIGINT);
  // SIGHUP: reload. A bad config is refused and the running one stays.
  uv_signal_start(
      &rt.hup,
      [](uv_signal_t* s, int) { static_cast<Runtime*>(s->loop->data)->reloader->request("SIGHUP", false); }, SIGHUP);
  uv_timer_init(loop, &rt.watch);
  uv_unref(reinterpret_cast<uv_handle_t*>(&rt.watch));
  if (watch_seconds > 0) {
    const auto ms = uint64_t(watch_seconds * 1000);
    uv_timer_start(
        &rt.watch,
        [](uv_timer_t* t) { static_cast<Runtime*>(t->loop->data)->reloader->request("file changed", true); },
        ms, ms);
  }

  std::string error;
  if (gateway.start(error) != 0) {
    hashgate::log::error("start_failed").kv("error", error);
    gateway.stop("start failed");
    uv_run(loop, UV_RUN_DEFAULT);
    return 1;
  }

  if (cfg.admin.bind) {
    admin = std::make_unique<hashgate::AdminServer>(
        gateway.snapshots(), cfg.admin, [&gateway](hashgate::AdminCommand c) { gateway.post_command(std::move(c)); });
    if (!admin->start(error)) {
      hashgate::log::error("start_failed").kv("error", error);
      gateway.stop("start failed");
      uv_run(loop, UV_RUN_DEFAULT);
      return 1;
    }
    hashgate::log::info("admin_listening").kv("bind", cfg.admin.bind->to_string()).kv("port", admin->port())
        .kv("changes", cfg.admin.token.empty() ? "disabled (no admin.token)" : "bearer token");
  }

  uv_run(loop, UV_RUN_DEFAULT);
  for (uv_signal_t* s : {&rt.term, &rt.intr, &rt.hup}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&rt.watch), nullptr);
  reloader.close();
  uv_run(loop, UV_RUN_DEFAULT);
  if (admin) admin->stop();
  uv_loop_close(loop);
  hashgate::log::info("stopped");
  return 0;
}
