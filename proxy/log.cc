#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <cstdio>

#include "protocol/json_writer.h"
#include "proxy/clock.h"

namespace hashgate::log {
namespace {
bool g_json = false;

spdlog::level::level_enum parse_level(const std::string& level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  return spdlog::level::info;
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}
}  // namespace

void init(const std::string& level, const std::string& format) {
  g_json = format == "json";
  auto logger = spdlog::stderr_logger_mt("hashgate");
  spdlog::set_default_logger(logger);
  if (g_json) {
    spdlog::set_pattern("{\"ts\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\",%v}", spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
  }
  set_level(level);
  spdlog::flush_on(spdlog::level::trace);
}

void set_level(const std::string& level) { spdlog::set_level(parse_level(level)); }
bool json() { return g_json; }

namespace {

// Events a peer can cause at any rate: at most kRepeatsPerSecond lines per
// event name each second; the rest are counted and reported as one
// log_suppressed line.
constexpr unsigned kRepeatsPerSecond = 20;
const std::unordered_set<std::string_view> kRateLimited = {
    "share_rejected",     "share_rejected_by_pool", "miner_protocol_error", "pool_protocol_error",
    "share_not_forwarded", "accept_failed", "miner_space_outside_profile", "miner_contradicts_profile",         "admin_unauthorized",   "admin_http",
    // A pool can cause these at any rate too (a reconnect loop).
    "pool_reconnect_followed", "pool_connecting",   "pool_disconnected",
    // One line per authorize: a peer reconnecting in a loop writes as many.
    "miner_authorized",

    // A peer sending PROXY headers it may not send.
    "proxy_header_refused",
    // Miners refused at the per-address cap or at the descriptor limit.
    "address_connection_limit", "connection_refused_fd_limit"};

struct Window {
  int64_t second = 0;
  unsigned lines = 0;
  uint64_t suppressed = 0;
};
std::mutex g_rate_mu;
std::unordered_map<std::string_view, Window> g_windows;

int64_t now_second() {
  return int64_t(mono_now());
}

void report_suppressed(std::string_view name, uint64_t n) {
  Event(spdlog::level::warn, "log_suppressed").kv("repeated_event", name).kv("lines", n);
}

// True when this line may be written.
bool admit(std::string_view name) {
  auto it = kRateLimited.find(name);
  if (it == kRateLimited.end()) return true;
  uint64_t report = 0;
  bool ok;
  {
    std::lock_guard<std::mutex> g(g_rate_mu);
    Window& w = g_windows[*it];
    const int64_t sec = now_second();
    if (sec != w.second) {
      report = w.suppressed;
      w = Window{sec, 0, 0};
    }
    ok = ++w.lines <= kRepeatsPerSecond;
    if (!ok) ++w.suppressed;
  }
  if (report) report_suppressed(name, report);
  return ok;
}

}  // namespace

void flush_suppressed() {
  std::vector<std::pair<std::string_view, uint64_t>> out;
  {
    std::lock_guard<std::mutex> g(g_rate_mu);
    const int64_t sec = now_second();
    for (auto& [name, w] : g_windows)
      if (w.suppressed && w.second != sec) {
        out.emplace_back(name, w.suppressed);
        w.suppressed = 0;
      }
  }
  for (auto& [name, n] : out) report_suppressed(name, n);
}

Event::Event(spdlog::level::level_enum level, std::string_view name)
    : level_(level), enabled_(spdlog::should_log(level)) {
  if (enabled_) enabled_ = admit(name);
  if (!enabled_) return;
  if (g_json) {
    line_ = "\"event\":";
    json_append_string(line_, name);
  } else {
    line_.assign(name);
  }
}

Event::~Event() {
  // In JSON mode the pattern opens and closes the object around line_.
  if (enabled_) spdlog::log(level_, "{}", line_);
}

void Event::raw(std::string_view key, std::string_view json_value, std::string_view text_value) {
  if (!enabled_) return;
  if (g_json) {
    line_.push_back(',');
    json_append_string(line_, key);
    line_.push_back(':');
    line_ += json_value;
  } else {
    line_.push_back(' ');
    line_ += key;
    line_.push_back('=');
    line_ += text_value;
  }
}

Event& Event::kv(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  std::string quoted;
  json_append_string(quoted, value);
  raw(key, quoted, needs_quotes(value) ? std::string_view(quoted) : value);
  return *this;
}

Event& Event::kv(std::string_view key, int64_t value) {
  std::string s = std::to_string(value);
  raw(key, s, s);
  return *this;
}

Event& Event::kv(std::string_view key, uint64_t value) {
  std::string s = std::to_string(value);
  raw(key, s, s);
  return *this;
}

Event& Event::kv(std::string_view key, double value) {
  std::string s;
  json_append_double(s, value);
  raw(key, s, s);
  return *this;
}

Event& Event::kv(std::string_view key, bool value) {
  raw(key, value ? "true" : "false", value ? "true" : "false");
  return *this;
}

}  // namespace hashgate::log
