// hashgate's configuration: one YAML file, validated once into typed
// objects. Every error names the file, the line and the key path. The
// shape is a contract with operators and the Helm chart (DESIGN.md).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hashgate::conf {

// `what` may quote the operator's file: control characters and bytes that
// are not UTF-8 (a binary file given as the config) are written as \xNN,
// so an error never puts raw bytes on a terminal or into a log.
std::string printable(std::string_view text);

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& what) : std::runtime_error(printable(what)) {}
};

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};

struct TlsFiles {
  std::string cert;
  std::string key;
};

// A stratum+ssl:// pool's certificate checks.
struct PoolTls {
  std::string ca;           // CA file (PEM); empty: the system's CAs
  std::string server_name;  // SNI and the name checked; empty: the URL's host
  // SHA-256 of a SubjectPublicKeyInfo in the pool's chain; any one matches.
  std::vector<std::array<uint8_t, 32>> pins;
  bool verify = true;       // false (pins only) is refused without pins
};

// PROXY protocol (HAProxy's v1 text / v2 binary header) on a listener.
enum class ProxyProtocol { kOff, kV1, kV2, kAny };
const char* proxy_protocol_name(ProxyProtocol p);

struct Listener {
  std::string name;
  Endpoint bind;
  std::optional<TlsFiles> tls;
  // A firmware profile for every miner on this listener (instead of the
  // user agent's); empty: matched by user agent. `profile_where` is
  // "file:line: path" for the error if no profile has that name.
  std::string profile;
  std::string profile_where;
  // The host:port miners use to reach this listener (NAT, a load balancer),
  // named in client.reconnect; none: the address a miner connected to.
  std::optional<Endpoint> advertise;
  // With proxy_protocol on, a connection from a trusted_proxies address must
  // start with a PROXY header and is judged by the address inside it; any
  // other peer is a direct client and may not send one.
  ProxyProtocol proxy_protocol = ProxyProtocol::kOff;
  std::vector<std::string> trusted_proxies;  // CIDRs, non-empty when proxy_protocol is on
};

enum class PoolScheme { kTcp, kSsl, kTest };

// A pool's job integrity rules (pools[].integrity, issue 21).
struct PoolIntegrity {
  std::string chain;  // empty: recognised from heights and block hashes
  // Output scripts every coinbase must pay: an address or "script:<hex>",
  // with "file:line: key" for the error when the gateway cannot decode it.
  struct Output {
    std::string text;
    std::string where;
  };
  std::vector<Output> require_outputs;
  bool lock_outputs = false;  // the outputs first seen must never change
};

struct Pool {
  std::string name;
  std::string url;  // as written
  PoolScheme scheme = PoolScheme::kTcp;
  Endpoint endpoint;  // host and port for tcp/ssl
  std::optional<PoolTls> tls;  // set exactly for stratum+ssl://
  // test:// options (query string): difficulty, job_interval, extranonce2_size.
  double test_difficulty = 0;  // 0: vardiff.min
  double test_job_interval = 30;
  uint32_t test_extranonce2_size = 8;
  std::string user;
  std::string password;
  int priority = 0;
  double weight = 1;
  PoolIntegrity integrity;
};

enum class AggregationMode { kAggregate, kPassthrough };

struct Aggregation {
  AggregationMode mode = AggregationMode::kAggregate;
  int prefix_bytes = -1;  // -1: auto
  uint32_t min_extranonce2_size = 4;
  uint64_t sessions_per_upstream = 4096;
};

struct Vardiff {
  double initial = 1024;
  double min = 1;
  double max = 4194304;
  double target_share_seconds = 10;
};

struct VersionRolling {
  bool enabled = true;
  uint32_t mask = 0x1fffe000;
};

struct Failover {
  double connect_timeout_seconds = 10;  // connect, subscribe, authorize and first job
  double job_timeout_seconds = 180;     // a pool silent this long has failed
  double submit_timeout_seconds = 10;   // a share unanswered this long: the pool has failed
  unsigned max_malformed = 5;           // malformed messages from a pool before it has failed
  // A pool rejecting more than this share of the last 50 forwarded shares
  // (once 20 are answered) has failed: hashgate checked them already.
  double max_reject_ratio = 0.5;
  unsigned failures_to_open = 3;
  double backoff_initial_seconds = 1;
  double backoff_max_seconds = 60;
  double failback_after_seconds = 60;   // healthy this long before miners go back
  bool warm_standby = true;             // keep the next pool subscribed
  double reconnect_spread_seconds = 3;  // client.reconnect waits spread over this
  // A miner still connected this long after its client.reconnect wait is
  // closed (every firmware reconnects at once after a close).
  double reconnect_grace_seconds = 2;
  // A pool's client.reconnect to another host is refused unless allowed.
  bool follow_reconnect_to_other_hosts = false;
};

// A local Litecoin Core / Bitcoin Core node as the reference for the tip.
struct NodeRpc {
  std::string url;      // http://host:port as written
  Endpoint endpoint;
  std::string user;     // with password
  std::string password;
  std::string cookie_file;  // or the node's .cookie (read at every poll: it changes at restart)
  double poll_seconds = 2;
  double timeout_seconds = 2;
  std::string chain;    // the node's chain name; empty: recognised
};

// Pool job integrity (issue 21): tips, chains, coinbase rules, sanity.
struct Integrity {
  bool enabled = true;
  double stale_grace_seconds = 30;   // on an old tip this long after another source moved on: flagged
  double stale_move_seconds = 90;    // this long: its miners move (stale_action: move)
  std::string stale_action = "flag"; // flag | move
  uint32_t ahead_blocks = 3;
  uint32_t chain_height_window = 1000;
  double ntime_window_seconds = 600;
  std::optional<NodeRpc> node;
};

struct Hashing {
  std::string path = "auto";  // auto | portable | sse2 | avx2 | avx512
  int threads = -1;           // -1: auto (one per core for scrypt, 0 for sha256d)
  // A batch of at most one lane group, with nothing in flight, is hashed on
  // the loop instead of waking a thread.
  bool inline_small_batches = true;
};

// Writing one job to thousands of sessions: helper threads share the
// sockets' sends with the loop (proxy/fanout_writer.h).
struct Fanout {
  int threads = -1;  // helpers besides the loop; -1: auto (cores - 1, at most 3)
};

struct Limits {
  uint32_t max_line_bytes = 16384;
  uint32_t max_connections_per_address = 1000;  // a farm behind one NAT address needs many
  double new_connections_per_second = 100;       // per address; bursts of five seconds' worth
  double messages_per_second = 100;              // per session; bursts of five seconds' worth
  double subscribe_timeout_seconds = 30;         // from connect to mining.subscribe
  double authorize_timeout_seconds = 60;         // from connect to a successful mining.authorize
  double idle_timeout_seconds = 900;             // no message at all for this long
  uint64_t max_pending_output_bytes = 1 << 20;   // a miner that stops reading is closed past this
  // A pool's jobs reach miners at most once per this interval per pool
  // connection, the newest held (protocol/notify_throttle.h); 0 passes every job.
  double pool_job_interval_seconds = 0.25;
  // Worker rows (one per distinct name): rows without a session this long are
  // dropped (their totals stay in the ledger); past the cap, new names count
  // under one shared row.
  uint32_t max_workers = 100000;
  double worker_idle_seconds = 600;
};

struct Bans {
  bool enabled = true;
  double threshold = 100;                // violation score that bans an address
  double ban_seconds = 60;               // the first ban; each next one doubles
  double max_ban_seconds = 3600;
  double score_half_life_seconds = 60;   // scores decay: honest noise never adds up
  std::vector<std::string> allowlist;    // CIDRs never banned nor limited (the farm's racks)
};

// Miners behind an HTTP proxy: "CONNECT host:port" on any Stratum listener.
struct ConnectRoute {
  std::string target;  // host:port as the miner's proxy asks for it (lower case)
  std::string pool;    // a pool name
};

struct HttpConnect {
  bool enabled = true;
  std::string user;      // Proxy-Authorization: Basic, when set
  std::string password;
  // Extra targets; every pool's own host:port (stratum+tcp/ssl URL) is a target too.
  std::vector<ConnectRoute> routes;
};

struct Admin {
  std::optional<Endpoint> bind;  // none: no admin server
  std::string token;             // bearer token for changes; empty: changes refused
  unsigned max_worker_labels = 100;  // workers beyond this are summed under worker="other"
  double drain_seconds = 10;     // SIGTERM: how long miners get to leave after client.reconnect
};

// The share ledger (proxy/ledger.h): per-minute and per-hour rows per
// worker and pool, written by a thread of its own. Off unless configured.
struct LedgerRetention {
  double minute_days = 7;   // minute rows older than this are deleted
  double hour_days = 400;   // hourly rollups are kept longer
};

struct Ledger {
  std::string backend = "off";  // sqlite | postgres | off
  std::string path = "/var/lib/hashgate/ledger.db";  // sqlite: the file (its folder must exist)
  std::string url;              // postgres: a libpq connection URI (url, url_file or $ENV)
  std::string instance;         // tag on every row; empty: the host name
  double flush_seconds = 1;     // a kill -9 loses at most this much
  uint64_t queue_rows = 100000; // rows waiting for the database past this are dropped (counted, logged)
  LedgerRetention retention;
};

struct Logging {
  std::string level = "info";
  std::string format = "text";
};

// An ASIC board on a serial port of this host (hw/). Its nonces enter the
// gateway like a miner's shares: the board is a Stratum client of the first
// plain listener, over loopback, with its own extranonce slice.
struct Board {
  std::string name;
  std::string driver;        // bm1366 | bm1368 | bm1370 | gc3355 | zeus
  std::string path;          // /dev/ttyUSB0, /dev/serial/by-id/...
  uint32_t baud = 115200;    // BM13xx: 115200 or 1000000 (the chips switch after init)
  unsigned chips = 0;        // 0: the driver's usual count (bm13xx 1, gc3355 5, zeus 6)
  double frequency = 0;      // MHz; 0: the driver's default
  std::string worker;        // empty: "board.<name>"
  double work_seconds = 0;   // fresh work (new extranonce2) this often; 0: driver default
  double silent_seconds = 120;           // no nonce this long while mining: restart
  double max_hardware_error_ratio = 0.2; // of the last 100 nonces (once 20 are seen): restart
  double difficulty_scale = 1;           // emulators only: the board reports at its target times this
  bool enabled = true;
};

struct Hardware {
  std::vector<Board> boards;
};

// A firmware profile the operator adds or overrides (compatibility.profiles[],
// protocol/firmware_profile.h). Unset rules come from `base`: a built-in
// profile's name (default: the built-in of the same name, else "default").
struct ProfileSpec {
  std::string name;
  std::vector<std::string> match;  // user-agent patterns ('*', '?')
  std::string base;
  std::string where;       // "file:line: compatibility.profiles[i]", for errors found later
  std::string base_where;  // the same for `base`
  std::optional<uint32_t> max_extranonce2_size, max_extranonce1_size, max_worker_name;
  std::optional<std::string> difficulty;  // fractional | integer | power_of_two
  std::optional<double> min_difficulty;
  std::optional<bool> set_extranonce;  // acts on mining.set_extranonce
  std::optional<bool> reconnect;       // follows client.reconnect
  std::optional<bool> version_rolling_without_configure;
};

// Every miner from an address range gets one profile (compatibility.by_cidr[]).
struct CidrProfile {
  std::string cidr;
  std::string profile;
  std::string where;
};

struct Compatibility {
  std::vector<ProfileSpec> profiles;  // tried before the built-ins, in order
  std::vector<CidrProfile> by_cidr;   // first match wins; before user-agent matching
};

// What the farm earns and what its power costs (proxy/economics.h). Every
// part is optional: no price means coin figures only, no power price means
// no cost figures, and the guard acts only on the boards listed here.
struct PriceSource {
  std::optional<double> fixed;      // price of one coin; set: no fetching
  std::string url;                  // http(s):// JSON endpoint
  std::string path;                 // where the price is in its answer: "data.price", "result[0].last"
  double refresh_seconds = 60;
  double timeout_seconds = 10;
  std::string currency = "USD";     // a label for the figures
};

// An hour-of-day tariff: from_hour <= hour < to_hour (wrapping past
// midnight when to_hour <= from_hour), in UTC plus utc_offset_hours.
struct TariffBand {
  unsigned from_hour = 0, to_hour = 24;
  double price_per_kwh = 0;
};

struct Power {
  std::optional<double> price_per_kwh;  // none: no cost figures, the guard idles
  std::vector<TariffBand> tariff;       // first match wins; else price_per_kwh
  double utc_offset_hours = 0;
};

// Miners counted together for the farm-wide power view, drawing `watts` in
// all: workers whose name matches any pattern ('*' and '?'), whose last
// session came from any of the CIDRs, or got any of the firmware profiles.
struct MinerGroup {
  std::string name;
  std::vector<std::string> workers;
  std::vector<std::string> cidrs;
  std::vector<std::string> profiles;
  double watts = 0;
};

// A local board's power draw and the guard's say over it.
struct BoardPower {
  std::string name;            // a hardware.boards name
  double watts = 0;
  bool always_mine = false;    // the operator's pin: the guard never pauses it
};

struct ProfitGuardConfig {
  bool enabled = false;
  // Pause when earnings/hour < cost/hour * margin for window_seconds;
  // resume when earnings/hour >= cost/hour * resume_margin for window_seconds.
  double margin = 1.0;
  double resume_margin = 1.05;
  double window_seconds = 600;
};

struct Economics {
  bool enabled = false;  // true when the section is present
  PriceSource price;
  Power power;
  std::vector<MinerGroup> groups;
  std::vector<BoardPower> boards;
  ProfitGuardConfig guard;
};

struct Config {
  std::string source;  // file name, for messages
  std::string algorithm = "scrypt";
  std::vector<Listener> listeners;
  std::vector<Pool> pools;
  Aggregation aggregation;
  Vardiff vardiff;
  VersionRolling version_rolling;
  Failover failover;
  Hashing hashing;
  Fanout fanout;
  Limits limits;
  Bans bans;
  HttpConnect http_connect;
  Admin admin;
  Logging logging;
  Ledger ledger;
  Hardware hardware;
  Compatibility compatibility;
  Economics economics;
  Integrity integrity;
};

// Throws ConfigError naming file:line and the key path.
Config load_file(const std::string& path);
Config load_string(const std::string& yaml, const std::string& source_name);

// "${VAR}" and "${VAR:-default}" substitution; throws ConfigError for an
// unset variable without a default. Exposed for tests.
std::string substitute_env(const std::string& value, const std::string& where);

// economics.price.path: "data.price", "result[0].last", "[2]"; empty is the
// answer itself. nullopt for anything else (empty names, unclosed brackets).
struct JsonPathStep {
  std::string key;  // an object member, when !is_index
  size_t index = 0;
  bool is_index = false;
};
std::optional<std::vector<JsonPathStep>> parse_json_path(std::string_view path);

// Parses "host:port" or "[v6]:port".
std::optional<Endpoint> parse_endpoint(const std::string& s);

}  // namespace hashgate::conf
