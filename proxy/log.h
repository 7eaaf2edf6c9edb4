// Structured logs for operators: one event per line, text (`key=value`) or
// JSON, through spdlog. Secrets are never passed in: callers log pool
// names and users, never passwords.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace hashgate::log {

// `format` is "text" or "json"; `level` one of trace/debug/info/warn/error.
void init(const std::string& level, const std::string& format);
void set_level(const std::string& level);
bool json();
// Writes the count of lines held back by the per-event rate limit (peer-caused
// events: at most 20 lines per event name per second). Called each second.
void flush_suppressed();

// Builds one event and emits it when destroyed:
//   log::Event(spdlog::level::info, "session_closed").kv("peer", p).kv("reason", r);
class Event {
 public:
  Event(spdlog::level::level_enum level, std::string_view name);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  Event& kv(std::string_view key, std::string_view value);
  Event& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, int64_t value);
  Event& kv(std::string_view key, uint64_t value);
  Event& kv(std::string_view key, int value) { return kv(key, int64_t(value)); }
  Event& kv(std::string_view key, unsigned value) { return kv(key, uint64_t(value)); }
  Event& kv(std::string_view key, double value);
  Event& kv(std::string_view key, bool value);

 private:
  void raw(std::string_view key, std::string_view json_value, std::string_view text_value);
  spdlog::level::level_enum level_;
  bool enabled_;
  std::string line_;
};

inline Event info(std::string_view name) { return Event(spdlog::level::info, name); }
inline Event warn(std::string_view name) { return Event(spdlog::level::warn, name); }
inline Event error(std::string_view name) { return Event(spdlog::level::err, name); }
inline Event debug(std::string_view name) { return Event(spdlog::level::debug, name); }

}  // namespace hashgate::log
