// hashgate's entry point: arguments, config, logging, signals, the loop.
#include <uv.h>

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
#include "proxy/gateway.h"
#include "proxy/log.h"

namespace {

const char kUsage[] =
    "usage: hashgate --config FILE      run the gateway\n"
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

struct Runtime {
  hashgate::Gateway* gateway;
  hashgate::AdminServer* admin;
  std::string config_path;
  uv_signal_t term, intr, hup;
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("hashgate %s\nallocator: %s\n", HASHGATE_VERSION, allocator_description().c_str());
      return 0;
    } else if ((a == "--config" || a == "--check-config" || a == "-c") && i + 1 < argc) {
      config_path = argv[++i];
      check_only = a == "--check-config";
    } else {
      std::fprintf(stderr, "hashgate: unknown argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }

  hashgate::conf::Config cfg;
  try {
    cfg = hashgate::conf::load_file(config_path);
  } catch (const hashgate::conf::ConfigError& e) {
    std::fprintf(stderr, "hashgate: config error: %s\n", e.what());
    return 1;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  hashgate::log::init(cfg.logging.level, cfg.logging.format);
  hashgate::log::info("starting")
      .kv("version", HASHGATE_VERSION)
      .kv("config", config_path)
      .kv("algorithm", cfg.algorithm)
      .kv("allocator", allocator_description());

  uv_loop_t* loop = uv_default_loop();
  hashgate::Gateway gateway(loop, cfg);
  std::string error;
  if (gateway.start(error) != 0) {
    hashgate::log::error("start_failed").kv("error", error);
    gateway.stop("start failed");
    uv_run(loop, UV_RUN_DEFAULT);
    return 1;
  }

  std::unique_ptr<hashgate::AdminServer> admin;
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

  // Signal handles never keep the loop alive on their own (unref): the loop
  // ends when the gateway has released everything after a stop.
  Runtime rt{&gateway, admin.get(), config_path, {}, {}, {}};
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
      [](uv_signal_t* s, int) {
        auto* rt = static_cast<Runtime*>(s->loop->data);
        hashgate::log::info("config_reload").kv("config", rt->config_path);
        hashgate::conf::Config next;
        try {
          next = hashgate::conf::load_file(rt->config_path);
        } catch (const hashgate::conf::ConfigError& e) {
          rt->gateway->reload_failed(e.what());
          return;
        }
        const std::string token = next.admin.token;
        std::vector<std::string> notes;
        rt->gateway->reload(std::move(next), notes);
        if (rt->admin) rt->admin->set_token(token);
      },
      SIGHUP);

  uv_run(loop, UV_RUN_DEFAULT);
  for (uv_signal_t* s : {&rt.term, &rt.intr, &rt.hup}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  if (admin) admin->stop();
  uv_loop_close(loop);
  hashgate::log::info("stopped");
  return 0;
}
