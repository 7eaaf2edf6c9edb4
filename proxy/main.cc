// hashgate's entry point: arguments, config, logging, signals, the loop.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifdef HASHGATE_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "conf/config.h"
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

struct Signals {
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

  Signals sig;
  auto on_stop = [](uv_signal_t* s, int signum) {
    auto* gw = static_cast<hashgate::Gateway*>(s->data);
    gw->stop(signum == SIGINT ? "SIGINT" : "SIGTERM");
    auto* all = static_cast<Signals*>(s->loop->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&all->term), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&all->intr), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&all->hup), nullptr);
  };
  loop->data = &sig;
  for (uv_signal_t* s : {&sig.term, &sig.intr, &sig.hup}) {
    uv_signal_init(loop, s);
    s->data = &gateway;
  }
  uv_signal_start(&sig.term, on_stop, SIGTERM);
  uv_signal_start(&sig.intr, on_stop, SIGINT);
  // Until live reload exists, SIGHUP must not kill the process (its default).
  uv_signal_start(
      &sig.hup,
      [](uv_signal_t*, int) {
        hashgate::log::warn("sighup_ignored").kv("reason", "live config reload is not available in this version");
      },
      SIGHUP);

  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  hashgate::log::info("stopped");
  return 0;
}
