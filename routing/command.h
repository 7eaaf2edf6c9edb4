// What the routing core asks its shell to do: connect, write to or close a
// pool connection; bind, move or close a miner session; hand a job to a set
// of sessions; report a pool's verdict on a forwarded share; log an event.
// Commands are values, built whole and then emitted (designated initializers:
// every member has a default), taken in order (Router::take_commands); a
// command naming a session that has gone since is simply skipped by the shell.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/downstream_session.h"
#include "protocol/job.h"
#include "protocol/stratum_codec.h"
#include "routing/router_config.h"

namespace hashgate::routing {

// A log line as data: the shell writes it with its logger. Field types are
// kept (JSON logs tell numbers from strings).
struct LogField {
  enum class Type : uint8_t { kString, kInt, kUint, kDouble, kBool, kPeer };
  std::string key;
  Type type = Type::kString;
  std::string s;
  int64_t i = 0;
  uint64_t u = 0;  // kUint, and kPeer: the session whose peer address goes here
  double d = 0;
  bool b = false;
};

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

struct LogEvent {
  LogLevel level = LogLevel::kInfo;
  std::string name;
  std::vector<LogField> fields;

  LogEvent& kv(std::string key, std::string v);
  LogEvent& kv(std::string key, const char* v) { return kv(std::move(key), std::string(v)); }
  LogEvent& kv(std::string key, int v) { return kvi(std::move(key), v); }
  LogEvent& kv(std::string key, int64_t v) { return kvi(std::move(key), v); }
  LogEvent& kv(std::string key, uint64_t v);
  LogEvent& kv(std::string key, unsigned v) { return kv(std::move(key), uint64_t(v)); }
  LogEvent& kv(std::string key, double v);
  LogEvent& kv(std::string key, bool v);
  // The shell puts the session's peer address here.
  LogEvent& peer(uint64_t session);
  // Finds a field (tests).
  const LogField* find(std::string_view key) const;

 private:
  LogEvent& kvi(std::string key, int64_t v);
};

struct Command {
  enum class Kind : uint8_t {
    kConnectLink,      // link, pool, endpoint: open the transport now
    kWriteLink,        // link, bytes
    kCloseLink,        // link: close the transport (no callback expected)
    kBind,             // session, binding: answer its subscribe with this slice
    kSetExtranonce,    // session, binding: move it in place (mining.set_extranonce)
    kUnbind,           // session: it leaves its slice (its shares in flight stay answerable)
    kReconnect,        // session, pool, endpoint (none: a built-in pool), wait: client.reconnect
    kCloseSession,     // session, text (reason), reason_class
    kJob,              // link, job, sessions, clean (force clean_jobs): give the job to these sessions
    kVersionMask,      // sessions, mask: the pool changed its version mask
    kAuthorizeResult,  // session, rpc_id, text (user), ok, error (passthrough: the pool's answer)
    kVerdict,          // the pool's answer on a forwarded share: token, session, worker, link, pool, ...
    kPoolFailover,     // pool: the serving pool moved off this one (counted per pool)
    kLog,              // log
  };
  Kind kind = Kind::kLog;
  uint32_t link = 0;
  size_t pool = 0;
  uint64_t session = 0;
  Binding binding{};
  std::string bytes{};
  std::optional<Endpoint> endpoint{};
  uint32_t wait = 0;
  std::string text{};
  const char* reason_class = "";
  JobRef job{};
  std::vector<uint64_t> sessions{};
  uint32_t mask = 0;
  bool clean = false;
  RpcId rpc_id{};
  bool ok = false;
  Error error{};
  // kVerdict
  uint64_t token = 0;
  uint32_t worker = 0;
  bool block = false;
  double difficulty = 0;  // the pool's difficulty for the job: what an accept is worth
  uint64_t stamp = 0;     // given with the share at forward_share (the shell's send time)
  LogEvent log{};
};

}  // namespace hashgate::routing
