#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>

#include "protocol/json_writer.h"

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
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
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

Event::Event(spdlog::level::level_enum level, std::string_view name)
    : level_(level), enabled_(spdlog::should_log(level)) {
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
