#include "proxy/reload.h"

namespace hashgate {
namespace {

bool listeners_differ(const std::vector<conf::Listener>& x, const std::vector<conf::Listener>& y) {
  if (x.size() != y.size()) return true;
  for (size_t i = 0; i < x.size(); ++i) {
    const auto &a = x[i], &b = y[i];
    if (a.name != b.name || a.bind.to_string() != b.bind.to_string() || a.tls.has_value() != b.tls.has_value() ||
        (a.tls && (a.tls->cert != b.tls->cert || a.tls->key != b.tls->key)) ||
        a.proxy_protocol != b.proxy_protocol || a.trusted_proxies != b.trusted_proxies)
      return true;
  }
  return false;
}

}  // namespace

void keep_restart_only(const conf::Config& running, conf::Config& next, std::vector<std::string>& notes) {
  auto keep = [&](bool changed, const char* what) {
    if (changed) notes.push_back(std::string(what) + " changed: takes effect after a restart");
  };
  keep(next.algorithm != running.algorithm, "algorithm");
  next.algorithm = running.algorithm;
  keep(listeners_differ(next.listeners, running.listeners), "listeners");
  next.listeners = running.listeners;
  keep(next.hashing.path != running.hashing.path || next.hashing.threads != running.hashing.threads, "hashing");
  // The fan-out threads are read once, at start: a new count is only noted.
  keep(next.fanout.threads != running.fanout.threads, "fanout");
  next.hashing = running.hashing;
  keep(next.aggregation.mode != running.aggregation.mode ||
           next.aggregation.prefix_bytes != running.aggregation.prefix_bytes,
       "aggregation");
  next.aggregation = running.aggregation;
  // The admin server is bound by main at start: a new address is only noted.
  keep(next.admin.bind.has_value() != running.admin.bind.has_value() ||
           (next.admin.bind && next.admin.bind->to_string() != running.admin.bind->to_string()),
       "admin.bind");
  keep(next.logging.format != running.logging.format, "logging.format");
  next.logging.format = running.logging.format;
}

}  // namespace hashgate
