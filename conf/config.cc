#include "conf/config.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace hashgate::conf {

std::string printable(std::string_view text) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto escape = [&](unsigned char c) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  };
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) escape(c);
      else out += char(c);
      ++i;
      continue;
    }
    // A whole, well-formed UTF-8 sequence is kept; anything else byte by byte.
    const size_t n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    bool ok = n && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      escape(c);
      ++i;
    }
  }
  return out;
}

namespace {

// Walks the YAML tree keeping the key path and the file name for errors.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& path, const std::string& what) const {
    std::ostringstream os;
    os << source_;
    if (node.IsDefined() && node.Mark().line >= 0) os << ":" << node.Mark().line + 1;
    os << ": " << path << ": " << what;
    throw ConfigError(os.str());
  }

  void only_keys(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) fail(map, path, "must be a mapping");
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) fail(kv.first, path.empty() ? "(top level)" : path, "keys must be plain names");
      std::string key = kv.first.as<std::string>();
      bool ok = false;
      for (const char* a : allowed) ok = ok || key == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        fail(kv.first, join(path, key), "unknown key (expected one of: " + list + ")");
      }
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, "must be a string");
    return substitute_env(n.Scalar(), location(n, path));
  }

  double number(const YAML::Node& n, const std::string& path) const {
    std::string s = str(n, path);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != 0 || !std::isfinite(v)) fail(n, path, "must be a number, got '" + s + "'");
    return v;
  }

  int64_t integer(const YAML::Node& n, const std::string& path) const {
    std::string s = str(n, path);
    int64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
      fail(n, path, "must be an integer, got '" + s + "'");
    return v;
  }

  // A number > 0 at map[key], if present.
  void positive(const YAML::Node& map, const std::string& section, const char* key, double& out) const {
    if (!map[key]) return;
    const std::string path = section + "." + key;
    out = number(map[key], path);
    if (!(out > 0)) fail(map[key], path, "must be greater than 0");
  }

  // An integer in [lo, hi] at map[key], if present.
  template <typename T>
  void in_range(const YAML::Node& map, const std::string& section, const char* key, int64_t lo, int64_t hi,
                T& out) const {
    if (!map[key]) return;
    const std::string path = section + "." + key;
    int64_t v = integer(map[key], path);
    if (v < lo || v > hi) fail(map[key], path, "must be " + std::to_string(lo) + ".." + std::to_string(hi));
    out = T(v);
  }

  bool boolean(const YAML::Node& n, const std::string& path) const {
    std::string s = str(n, path);
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(n, path, "must be true or false, got '" + s + "'");
  }

  std::string location(const YAML::Node& n, const std::string& path) const {
    std::string s = source_;
    if (n.Mark().line >= 0) s += ":" + std::to_string(n.Mark().line + 1);
    return s + ": " + path;
  }

 private:
  std::string source_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open file");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void parse_pool_url(const Reader& r, const YAML::Node& n, const std::string& path, Pool& pool) {
  const std::string url = pool.url;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) r.fail(n, path, "must look like stratum+tcp://host:port, got '" + url + "'");
  std::string scheme = url.substr(0, scheme_end);
  std::string rest = url.substr(scheme_end + 3);
  if (scheme == "stratum+tcp") {
    pool.scheme = PoolScheme::kTcp;
  } else if (scheme == "stratum+ssl" || scheme == "stratum+tls") {
    pool.scheme = PoolScheme::kSsl;
  } else if (scheme == "test") {
    pool.scheme = PoolScheme::kTest;
  } else {
    r.fail(n, path, "unknown scheme '" + scheme + "' (expected stratum+tcp, stratum+ssl or test)");
  }
  if (pool.scheme == PoolScheme::kTest) {
    // test://[name][?difficulty=D&job_interval=S&extranonce2_size=N]
    auto q = rest.find('?');
    if (q == std::string::npos) return;
    std::stringstream qs(rest.substr(q + 1));
    std::string kv;
    while (std::getline(qs, kv, '&')) {
      auto eq = kv.find('=');
      std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != 0 || !(d > 0)) r.fail(n, path, "test pool option '" + k + "' needs a positive number");
      if (k == "difficulty") {
        pool.test_difficulty = d;
      } else if (k == "job_interval") {
        pool.test_job_interval = d;
      } else if (k == "extranonce2_size") {
        if (d < 1 || d > 8 || d != std::floor(d)) r.fail(n, path, "test pool extranonce2_size must be 1..8");
        pool.test_extranonce2_size = uint32_t(d);
      } else {
        r.fail(n, path, "unknown test pool option '" + k + "' (expected difficulty, job_interval, extranonce2_size)");
      }
    }
    return;
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  auto ep = parse_endpoint(rest);
  if (!ep) r.fail(n, path, "must include host:port, got '" + url + "'");
  pool.endpoint = *ep;
}

bool valid_cidr(const std::string& text);

void load_proxy_protocol(const Reader& r, const YAML::Node& l, const std::string& path, Listener& out) {
  if (const YAML::Node& pp = l["proxy_protocol"]) {
    const std::string v = r.str(pp, path + ".proxy_protocol");
    if (v == "off") out.proxy_protocol = ProxyProtocol::kOff;
    else if (v == "v1") out.proxy_protocol = ProxyProtocol::kV1;
    else if (v == "v2") out.proxy_protocol = ProxyProtocol::kV2;
    else if (v == "any") out.proxy_protocol = ProxyProtocol::kAny;
    else r.fail(pp, path + ".proxy_protocol", "must be off, v1, v2 or any, got '" + v + "'");
  }
  if (const YAML::Node& tp = l["trusted_proxies"]) {
    if (!tp.IsSequence()) r.fail(tp, path + ".trusted_proxies", "must be a list of CIDRs, e.g. [10.0.0.0/8]");
    for (size_t i = 0; i < tp.size(); ++i) {
      const std::string at = path + ".trusted_proxies[" + std::to_string(i) + "]";
      std::string cidr = r.str(tp[i], at);
      if (!valid_cidr(cidr)) r.fail(tp[i], at, "must be an address or CIDR like 10.0.0.0/8 or fd00::/8, got '" + cidr + "'");
      out.trusted_proxies.push_back(cidr);
    }
  }
  // A header is only believed from the balancers: on without a list would
  // trust nobody (every header refused), a list with it off is a mistake.
  if (out.proxy_protocol != ProxyProtocol::kOff && out.trusted_proxies.empty())
    r.fail(l["proxy_protocol"], path + ".trusted_proxies",
           "is required with proxy_protocol " + std::string(proxy_protocol_name(out.proxy_protocol)) +
               ": the load balancers' addresses, e.g. [10.0.0.0/8]");
  if (out.proxy_protocol == ProxyProtocol::kOff && !out.trusted_proxies.empty())
    r.fail(l["trusted_proxies"], path + ".trusted_proxies", "has no effect unless proxy_protocol is v1, v2 or any");
}

void load_listeners(const Reader& r, const YAML::Node& n, Config& c) {
  if (!n.IsSequence() || n.size() == 0) r.fail(n, "listeners", "must be a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& l = n[i];
    std::string path = "listeners[" + std::to_string(i) + "]";
    r.only_keys(l, path, {"name", "bind", "tls", "profile", "advertise", "proxy_protocol", "trusted_proxies"});
    Listener out;
    if (!l["name"]) r.fail(l, path + ".name", "is required");
    out.name = r.str(l["name"], path + ".name");
    if (!names.insert(out.name).second) r.fail(l["name"], path + ".name", "duplicate listener name '" + out.name + "'");
    if (!l["bind"]) r.fail(l, path + ".bind", "is required");
    std::string bind = r.str(l["bind"], path + ".bind");
    auto ep = parse_endpoint(bind);
    if (!ep) r.fail(l["bind"], path + ".bind", "must be host:port, got '" + bind + "'");
    out.bind = *ep;
    if (l["advertise"]) {
      std::string adv = r.str(l["advertise"], path + ".advertise");
      auto a = parse_endpoint(adv);
      if (!a || a->host.empty() || a->port == 0 || a->host == "0.0.0.0" || a->host == "::")
        r.fail(l["advertise"], path + ".advertise",
               "must be the host:port miners use to reach this listener (not a wildcard, port not 0), got '" + adv + "'");
      out.advertise = *a;
    }
    if (l["tls"]) {
      r.only_keys(l["tls"], path + ".tls", {"cert", "key"});
      if (!l["tls"]["cert"] || !l["tls"]["key"]) r.fail(l["tls"], path + ".tls", "needs both cert and key");
      out.tls = TlsFiles{r.str(l["tls"]["cert"], path + ".tls.cert"), r.str(l["tls"]["key"], path + ".tls.key")};
      for (const char* k : {"cert", "key"}) {
        std::string file = r.str(l["tls"][k], path + ".tls." + k);
        if (!std::ifstream(file)) r.fail(l["tls"][k], path + ".tls." + k, "cannot read '" + file + "'");
      }
    }
    if (l["profile"]) {
      out.profile = r.str(l["profile"], path + ".profile");
      out.profile_where = r.location(l["profile"], path + ".profile");
    }
    load_proxy_protocol(r, l, path, out);
    c.listeners.push_back(std::move(out));
  }
}

bool valid_cidr(const std::string& text) {
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  unsigned char buf[16];
  int max = inet_pton(AF_INET, addr.c_str(), buf) == 1 ? 32 : inet_pton(AF_INET6, addr.c_str(), buf) == 1 ? 128 : -1;
  if (max < 0) return false;
  if (slash == std::string::npos) return true;
  std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), ::isdigit)) return false;
  return std::stoi(bits) <= max;
}

bool parse_pin(std::string_view text, std::array<uint8_t, 32>& out) {
  size_t n = 0;
  int hi = -1;
  for (char c : text) {
    if (c == ':') continue;
    const unsigned char u = static_cast<unsigned char>(c);
    if (!std::isxdigit(u) || n >= out.size()) return false;
    const int v = std::isdigit(u) ? u - '0' : std::tolower(u) - 'a' + 10;
    if (hi < 0) {
      hi = v;
    } else {
      out[n++] = uint8_t(hi << 4 | v);
      hi = -1;
    }
  }
  return n == out.size() && hi < 0;
}

PoolTls load_pool_tls(const Reader& r, const YAML::Node& n, const std::string& path) {
  PoolTls t;
  if (!n) return t;
  r.only_keys(n, path, {"ca", "server_name", "pin_sha256", "verify"});
  if (n["ca"]) {
    t.ca = r.str(n["ca"], path + ".ca");
    if (!std::ifstream(t.ca)) r.fail(n["ca"], path + ".ca", "cannot read '" + t.ca + "'");
  }
  if (n["server_name"]) t.server_name = r.str(n["server_name"], path + ".server_name");
  if (n["verify"]) t.verify = r.boolean(n["verify"], path + ".verify");
  if (const YAML::Node& pins = n["pin_sha256"]) {
    std::vector<YAML::Node> items;
    if (pins.IsSequence()) {
      for (const auto& x : pins) items.push_back(x);
    } else {
      items.push_back(pins);
    }
    for (const YAML::Node& x : items) {
      std::string s = r.str(x, path + ".pin_sha256");
      std::array<uint8_t, 32> pin{};
      if (!parse_pin(s, pin))
        r.fail(x, path + ".pin_sha256", "must be 64 hex digits (the SHA-256 of the public key), got '" + s + "'");
      t.pins.push_back(pin);
    }
  }
  if (!t.verify && t.pins.empty())
    r.fail(n["verify"], path + ".verify", "false needs pin_sha256: otherwise any certificate would be accepted");
  return t;
}

void load_pool_integrity(const Reader& r, const YAML::Node& n, const std::string& path, PoolIntegrity& out) {
  r.only_keys(n, path, {"chain", "require_outputs", "lock_outputs"});
  if (n["chain"]) {
    out.chain = r.str(n["chain"], path + ".chain");
    if (out.chain.empty() || out.chain.rfind("auto:", 0) == 0)
      r.fail(n["chain"], path + ".chain", "must be a name (not empty, not starting with auto:)");
  }
  if (n["lock_outputs"]) out.lock_outputs = r.boolean(n["lock_outputs"], path + ".lock_outputs");
  if (const YAML::Node& ro = n["require_outputs"]) {
    if (!ro.IsSequence() || ro.size() == 0)
      r.fail(ro, path + ".require_outputs", "must be a non-empty list of addresses or script:<hex>");
    for (size_t i = 0; i < ro.size(); ++i) {
      const std::string key = path + ".require_outputs[" + std::to_string(i) + "]";
      std::string text = r.str(ro[i], key);
      if (text.empty()) r.fail(ro[i], key, "must not be empty");
      out.require_outputs.push_back({text, r.location(ro[i], key)});
    }
  }
}

void load_integrity(const Reader& r, const YAML::Node& n, Config& c) {
  r.only_keys(n, "integrity", {"enabled", "stale_grace_seconds", "stale_move_seconds", "stale_action", "ahead_blocks",
                               "chain_height_window", "ntime_window_seconds", "node"});
  Integrity& in = c.integrity;
  if (n["enabled"]) in.enabled = r.boolean(n["enabled"], "integrity.enabled");
  r.positive(n, "integrity", "stale_grace_seconds", in.stale_grace_seconds);
  r.positive(n, "integrity", "stale_move_seconds", in.stale_move_seconds);
  r.positive(n, "integrity", "ntime_window_seconds", in.ntime_window_seconds);
  r.in_range(n, "integrity", "ahead_blocks", 1, 1000000, in.ahead_blocks);
  r.in_range(n, "integrity", "chain_height_window", 1, 100000000, in.chain_height_window);
  if (n["stale_action"]) {
    in.stale_action = r.str(n["stale_action"], "integrity.stale_action");
    if (in.stale_action != "flag" && in.stale_action != "move")
      r.fail(n["stale_action"], "integrity.stale_action", "must be flag or move, got '" + in.stale_action + "'");
  }
  if (in.stale_move_seconds < in.stale_grace_seconds)
    r.fail(n["stale_move_seconds"] ? n["stale_move_seconds"] : n, "integrity.stale_move_seconds",
           "must not be less than integrity.stale_grace_seconds");
  if (const YAML::Node& nd = n["node"]) {
    r.only_keys(nd, "integrity.node",
                {"url", "user", "password", "cookie_file", "poll_seconds", "timeout_seconds", "chain"});
    NodeRpc node;
    if (!nd["url"]) r.fail(nd, "integrity.node.url", "is required (http://127.0.0.1:9332)");
    node.url = r.str(nd["url"], "integrity.node.url");
    std::string rest = node.url.rfind("http://", 0) == 0 ? node.url.substr(7) : "";
    if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
    auto ep = parse_endpoint(rest);
    if (!ep) r.fail(nd["url"], "integrity.node.url", "must be http://host:port, got '" + node.url + "'");
    node.endpoint = *ep;
    if (nd["user"]) node.user = r.str(nd["user"], "integrity.node.user");
    if (nd["password"]) node.password = r.str(nd["password"], "integrity.node.password");
    if (nd["cookie_file"]) node.cookie_file = r.str(nd["cookie_file"], "integrity.node.cookie_file");
    if (nd["password"] && nd["cookie_file"])
      r.fail(nd["cookie_file"], "integrity.node.cookie_file", "give password or cookie_file, not both");
    if (!nd["password"] && !nd["cookie_file"])
      r.fail(nd, "integrity.node", "needs user and password, or cookie_file");
    if (nd["password"] && node.user.empty()) r.fail(nd, "integrity.node.user", "is required with password");
    r.positive(nd, "integrity.node", "poll_seconds", node.poll_seconds);
    r.positive(nd, "integrity.node", "timeout_seconds", node.timeout_seconds);
    if (nd["chain"]) node.chain = r.str(nd["chain"], "integrity.node.chain");
    in.node = std::move(node);
  }
}

void load_pools(const Reader& r, const YAML::Node& root, Config& c) {
  const YAML::Node n = root["pools"];
  // A missing key has no line of its own: name the mapping it belongs in.
  if (!n) r.fail(root, "pools", "is required: at least one pool");
  if (!n.IsSequence() || n.size() == 0) r.fail(n, "pools", "must be a non-empty list: at least one pool is required");
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node& p = n[i];
    std::string path = "pools[" + std::to_string(i) + "]";
    r.only_keys(p, path, {"name", "url", "user", "password", "password_file", "priority", "weight", "tls", "integrity"});
    Pool out;
    out.name = p["name"] ? r.str(p["name"], path + ".name") : "pool" + std::to_string(i);
    if (!names.insert(out.name).second) r.fail(p["name"], path + ".name", "duplicate pool name '" + out.name + "'");
    if (!p["url"]) r.fail(p, path + ".url", "is required");
    out.url = r.str(p["url"], path + ".url");
    parse_pool_url(r, p["url"], path + ".url", out);
    if (p["user"]) out.user = r.str(p["user"], path + ".user");
    if (out.user.empty() && out.scheme != PoolScheme::kTest) r.fail(p, path + ".user", "is required");
    if (out.user.empty()) out.user = "hashgate";
    if (p["password"] && p["password_file"])
      r.fail(p["password_file"], path + ".password_file", "give password or password_file, not both");
    if (p["password"]) out.password = r.str(p["password"], path + ".password");
    if (p["password_file"]) {
      std::string file = r.str(p["password_file"], path + ".password_file");
      std::ifstream in(file);
      if (!in) r.fail(p["password_file"], path + ".password_file", "cannot read '" + file + "'");
      std::getline(in, out.password);
      while (!out.password.empty() && (out.password.back() == '\r' || out.password.back() == ' '))
        out.password.pop_back();
    }
    if (out.scheme == PoolScheme::kSsl) {
      out.tls = load_pool_tls(r, p["tls"], path + ".tls");
    } else if (p["tls"]) {
      r.fail(p["tls"], path + ".tls", "is only for stratum+ssl:// pools");
    }
    if (p["priority"]) out.priority = int(r.integer(p["priority"], path + ".priority"));
    if (p["weight"]) {
      out.weight = r.number(p["weight"], path + ".weight");
      if (!(out.weight > 0)) r.fail(p["weight"], path + ".weight", "must be greater than 0");
    }
    if (p["integrity"]) load_pool_integrity(r, p["integrity"], path + ".integrity", out.integrity);
    c.pools.push_back(std::move(out));
  }
}

void load_aggregation(const Reader& r, const YAML::Node& n, Config& c) {
  r.only_keys(n, "aggregation", {"mode", "prefix_bytes", "min_extranonce2_size", "sessions_per_upstream"});
  if (n["mode"]) {
    std::string m = r.str(n["mode"], "aggregation.mode");
    if (m == "aggregate") {
      c.aggregation.mode = AggregationMode::kAggregate;
    } else if (m == "passthrough") {
      c.aggregation.mode = AggregationMode::kPassthrough;
    } else {
      r.fail(n["mode"], "aggregation.mode", "must be aggregate or passthrough, got '" + m + "'");
    }
  }
  if (n["prefix_bytes"]) {
    std::string s = r.str(n["prefix_bytes"], "aggregation.prefix_bytes");
    if (s == "auto") {
      c.aggregation.prefix_bytes = -1;
    } else {
      int64_t v = r.integer(n["prefix_bytes"], "aggregation.prefix_bytes");
      if (v < 0 || v > 4) r.fail(n["prefix_bytes"], "aggregation.prefix_bytes", "must be auto or 0..4");
      c.aggregation.prefix_bytes = int(v);
    }
  }
  if (n["min_extranonce2_size"]) {
    int64_t v = r.integer(n["min_extranonce2_size"], "aggregation.min_extranonce2_size");
    if (v < 1 || v > 8) r.fail(n["min_extranonce2_size"], "aggregation.min_extranonce2_size", "must be 1..8");
    c.aggregation.min_extranonce2_size = uint32_t(v);
  }
  if (n["sessions_per_upstream"]) {
    int64_t v = r.integer(n["sessions_per_upstream"], "aggregation.sessions_per_upstream");
    if (v < 1) r.fail(n["sessions_per_upstream"], "aggregation.sessions_per_upstream", "must be at least 1");
    c.aggregation.sessions_per_upstream = uint64_t(v);
  }
}

void load_vardiff(const Reader& r, const YAML::Node& n, Config& c) {
  r.only_keys(n, "vardiff", {"initial", "min", "max", "target_share_seconds"});
  auto& v = c.vardiff;
  r.positive(n, "vardiff", "initial", v.initial);
  r.positive(n, "vardiff", "min", v.min);
  r.positive(n, "vardiff", "max", v.max);
  r.positive(n, "vardiff", "target_share_seconds", v.target_share_seconds);
  if (v.min > v.max) r.fail(n["min"] ? n["min"] : n, "vardiff.min", "must not exceed vardiff.max");
  if (v.initial < v.min || v.initial > v.max)
    r.fail(n["initial"] ? n["initial"] : n, "vardiff.initial", "must lie between vardiff.min and vardiff.max");
}

void load_hardware(const Reader& r, const YAML::Node& h, Config& c) {
  r.only_keys(h, "hardware", {"boards"});
  const YAML::Node& bs = h["boards"];
  if (!bs) return;
  if (!bs.IsSequence()) r.fail(bs, "hardware.boards", "must be a list of boards");
  static const std::set<std::string> drivers = {"bm1366", "bm1368", "bm1370", "gc3355", "zeus"};
  for (size_t i = 0; i < bs.size(); ++i) {
    const YAML::Node& n = bs[i];
    const std::string path = "hardware.boards[" + std::to_string(i) + "]";
    r.only_keys(n, path, {"name", "driver", "path", "baud", "chips", "frequency", "worker", "work_seconds",
                          "silent_seconds", "max_hardware_error_ratio", "difficulty_scale", "enabled"});
    Board b;
    for (const char* key : {"name", "driver", "path"})
      if (!n[key]) r.fail(n, path + "." + key, "is required");
    b.name = r.str(n["name"], path + ".name");
    b.driver = r.str(n["driver"], path + ".driver");
    b.path = r.str(n["path"], path + ".path");
    if (!drivers.count(b.driver))
      r.fail(n["driver"], path + ".driver", "must be bm1366, bm1368, bm1370, gc3355 or zeus, got '" + b.driver + "'");
    const bool sha = b.driver.rfind("bm", 0) == 0;
    if ((sha ? "sha256d" : "scrypt") != c.algorithm)
      r.fail(n["driver"], path + ".driver",
             b.driver + " mines " + (sha ? "sha256d" : "scrypt") + " but algorithm is " + c.algorithm);
    if (b.path.empty()) r.fail(n["path"], path + ".path", "must not be empty");
    for (const Board& other : c.hardware.boards) {
      if (other.name == b.name) r.fail(n["name"], path + ".name", "duplicate board name '" + b.name + "'");
      if (other.path == b.path) r.fail(n["path"], path + ".path", "board " + other.name + " already uses " + b.path);
    }
    r.in_range(n, path, "baud", 300, 12000000, b.baud);
    if (sha && b.baud != 115200 && b.baud != 1000000)
      r.fail(n["baud"], path + ".baud", "BM13xx chips run at 115200 or 1000000 baud, got " + std::to_string(b.baud));
    r.in_range(n, path, "chips", 1, 256, b.chips);
    if (n["frequency"]) {
      b.frequency = r.number(n["frequency"], path + ".frequency");
      if (!(b.frequency >= 50 && b.frequency <= 1500)) r.fail(n["frequency"], path + ".frequency", "must be 50..1500 MHz");
    }
    if (n["worker"]) b.worker = r.str(n["worker"], path + ".worker");
    if (n["enabled"]) b.enabled = r.boolean(n["enabled"], path + ".enabled");
    r.positive(n, path, "work_seconds", b.work_seconds);
    r.positive(n, path, "silent_seconds", b.silent_seconds);
    r.positive(n, path, "difficulty_scale", b.difficulty_scale);
    if (n["max_hardware_error_ratio"]) {
      b.max_hardware_error_ratio = r.number(n["max_hardware_error_ratio"], path + ".max_hardware_error_ratio");
      if (!(b.max_hardware_error_ratio > 0 && b.max_hardware_error_ratio <= 1))
        r.fail(n["max_hardware_error_ratio"], path + ".max_hardware_error_ratio", "must be greater than 0 and at most 1");
    }
    c.hardware.boards.push_back(std::move(b));
  }
  if (!c.hardware.boards.empty() &&
      std::none_of(c.listeners.begin(), c.listeners.end(), [](const Listener& l) { return !l.tls; }))
    r.fail(bs, "hardware.boards", "boards connect to a plain (non-TLS) Stratum listener; add one");
}

}  // namespace

const char* proxy_protocol_name(ProxyProtocol p) {
  switch (p) {
    case ProxyProtocol::kOff: return "off";
    case ProxyProtocol::kV1: return "v1";
    case ProxyProtocol::kV2: return "v2";
    case ProxyProtocol::kAny: return "any";
  }
  return "?";
}

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(const std::string& s) {
  Endpoint ep;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    ep.host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return std::nullopt;
    ep.host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned v = 0;
  auto r = std::from_chars(port.data(), port.data() + port.size(), v);
  if (ep.host.empty() || port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || v > 65535)
    return std::nullopt;
  ep.port = uint16_t(v);
  return ep;
}

std::string substitute_env(const std::string& value, const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    size_t start = value.find("${", i);
    if (start == std::string::npos) {
      out.append(value, i, std::string::npos);
      break;
    }
    out.append(value, i, start - i);
    size_t end = value.find('}', start);
    if (end == std::string::npos) throw ConfigError(where + ": unterminated ${ in '" + value + "'");
    std::string expr = value.substr(start + 2, end - start - 2);
    std::string name = expr, fallback;
    bool has_default = false;
    if (auto d = expr.find(":-"); d != std::string::npos) {
      name = expr.substr(0, d);
      fallback = expr.substr(d + 2);
      has_default = true;
    }
    if (name.empty()) throw ConfigError(where + ": empty variable name in '" + value + "'");
    const char* env = std::getenv(name.c_str());
    if (env && *env) {
      out += env;
    } else if (has_default) {
      out += fallback;
    } else {
      throw ConfigError(where + ": environment variable " + name + " is not set and has no default");
    }
    i = end + 1;
  }
  return out;
}

void load_compatibility(const Reader& r, const YAML::Node& n, Config& c) {
  r.only_keys(n, "compatibility", {"profiles", "by_cidr"});
  std::set<std::string> names;
  if (const YAML::Node& ps = n["profiles"]) {
    if (!ps.IsSequence()) r.fail(ps, "compatibility.profiles", "must be a list of profiles");
    for (size_t i = 0; i < ps.size(); ++i) {
      const YAML::Node& p = ps[i];
      const std::string path = "compatibility.profiles[" + std::to_string(i) + "]";
      r.only_keys(p, path, {"name", "match", "base", "max_extranonce2_size", "max_extranonce1_size", "difficulty",
                            "min_difficulty", "set_extranonce", "reconnect", "version_rolling_without_configure",
                            "max_worker_name"});
      ProfileSpec spec;
      spec.where = r.location(p, path);
      if (!p["name"]) r.fail(p, path + ".name", "is required");
      spec.name = r.str(p["name"], path + ".name");
      if (spec.name.empty() || spec.name.size() > 64)
        r.fail(p["name"], path + ".name", "must be 1..64 characters");
      if (!names.insert(spec.name).second) r.fail(p["name"], path + ".name", "duplicate profile name '" + spec.name + "'");
      if (const YAML::Node& m = p["match"]) {
        if (m.IsScalar()) {
          spec.match.push_back(r.str(m, path + ".match"));
        } else if (m.IsSequence()) {
          for (size_t j = 0; j < m.size(); ++j) spec.match.push_back(r.str(m[j], path + ".match[" + std::to_string(j) + "]"));
        } else {
          r.fail(m, path + ".match", "must be a user-agent pattern or a list of them");
        }
        for (const std::string& pat : spec.match)
          if (pat.empty() || pat.size() > 256) r.fail(m, path + ".match", "patterns must be 1..256 characters");
      }
      if (p["base"]) {
        spec.base = r.str(p["base"], path + ".base");
        spec.base_where = r.location(p["base"], path + ".base");
      }
      // Extranonce2 beyond 16 bytes cannot be split by hashgate; 0 means no limit.
      uint32_t v = 0;
      if (p["max_extranonce2_size"]) {
        r.in_range(p, path, "max_extranonce2_size", 0, 32, v);
        spec.max_extranonce2_size = v;
      }
      if (p["max_extranonce1_size"]) {
        r.in_range(p, path, "max_extranonce1_size", 0, 32, v);
        spec.max_extranonce1_size = v;
      }
      if (p["max_worker_name"]) {
        r.in_range(p, path, "max_worker_name", 0, 4096, v);
        spec.max_worker_name = v;
      }
      if (p["difficulty"]) {
        std::string d = r.str(p["difficulty"], path + ".difficulty");
        if (d != "fractional" && d != "integer" && d != "power_of_two")
          r.fail(p["difficulty"], path + ".difficulty", "must be fractional, integer or power_of_two, got '" + d + "'");
        spec.difficulty = d;
      }
      if (p["min_difficulty"]) {
        double d = r.number(p["min_difficulty"], path + ".min_difficulty");
        if (d < 0) r.fail(p["min_difficulty"], path + ".min_difficulty", "must be 0 or more");
        spec.min_difficulty = d;
      }
      if (p["set_extranonce"]) spec.set_extranonce = r.boolean(p["set_extranonce"], path + ".set_extranonce");
      if (p["reconnect"]) spec.reconnect = r.boolean(p["reconnect"], path + ".reconnect");
      if (p["version_rolling_without_configure"])
        spec.version_rolling_without_configure =
            r.boolean(p["version_rolling_without_configure"], path + ".version_rolling_without_configure");
      c.compatibility.profiles.push_back(std::move(spec));
    }
  }
  if (const YAML::Node& bc = n["by_cidr"]) {
    if (!bc.IsSequence()) r.fail(bc, "compatibility.by_cidr", "must be a list of {cidr, profile}");
    for (size_t i = 0; i < bc.size(); ++i) {
      const std::string path = "compatibility.by_cidr[" + std::to_string(i) + "]";
      r.only_keys(bc[i], path, {"cidr", "profile"});
      CidrProfile cp;
      if (!bc[i]["cidr"]) r.fail(bc[i], path + ".cidr", "is required");
      if (!bc[i]["profile"]) r.fail(bc[i], path + ".profile", "is required");
      cp.cidr = r.str(bc[i]["cidr"], path + ".cidr");
      if (!valid_cidr(cp.cidr)) r.fail(bc[i]["cidr"], path + ".cidr", "must be an address or CIDR, got '" + cp.cidr + "'");
      cp.profile = r.str(bc[i]["profile"], path + ".profile");
      cp.where = r.location(bc[i]["profile"], path + ".profile");
      c.compatibility.by_cidr.push_back(std::move(cp));
    }
  }
}

Config load_root(const YAML::Node& root, const std::string& source);

// economics: price, power, miner groups, board power and the profit guard.
static void load_economics(const Reader& r, const YAML::Node& e, Config& c) {
  r.only_keys(e, "economics", {"price", "power", "groups", "boards", "guard"});
  Economics& ec = c.economics;
  ec.enabled = true;
  auto non_negative = [&](const YAML::Node& n, const std::string& path) {
    double v = r.number(n, path);
    if (v < 0) r.fail(n, path, "must be 0 or more");
    return v;
  };
  if (const YAML::Node& p = e["price"]) {
    r.only_keys(p, "economics.price", {"fixed", "url", "path", "refresh_seconds", "timeout_seconds", "currency"});
    if (p["fixed"] && p["url"]) r.fail(p["url"], "economics.price.url", "give fixed or url, not both");
    if (p["fixed"]) ec.price.fixed = non_negative(p["fixed"], "economics.price.fixed");
    if (p["url"]) {
      ec.price.url = r.str(p["url"], "economics.price.url");
      if (ec.price.url.rfind("http://", 0) != 0 && ec.price.url.rfind("https://", 0) != 0)
        r.fail(p["url"], "economics.price.url", "must start with http:// or https://, got '" + ec.price.url + "'");
    }
    if (p["path"]) {
      if (!p["url"]) r.fail(p["path"], "economics.price.path", "goes with economics.price.url");
      ec.price.path = r.str(p["path"], "economics.price.path");
      if (!parse_json_path(ec.price.path))
        r.fail(p["path"], "economics.price.path", "must look like data.price or result[0].last, got '" + ec.price.path + "'");
    }
    r.positive(p, "economics.price", "refresh_seconds", ec.price.refresh_seconds);
    r.positive(p, "economics.price", "timeout_seconds", ec.price.timeout_seconds);
    if (p["currency"]) ec.price.currency = r.str(p["currency"], "economics.price.currency");
  }
  if (const YAML::Node& w = e["power"]) {
    r.only_keys(w, "economics.power", {"price_per_kwh", "tariff", "utc_offset_hours"});
    if (w["price_per_kwh"]) ec.power.price_per_kwh = non_negative(w["price_per_kwh"], "economics.power.price_per_kwh");
    if (w["utc_offset_hours"]) {
      ec.power.utc_offset_hours = r.number(w["utc_offset_hours"], "economics.power.utc_offset_hours");
      if (std::fabs(ec.power.utc_offset_hours) > 14)
        r.fail(w["utc_offset_hours"], "economics.power.utc_offset_hours", "must be -14..14");
    }
    if (const YAML::Node& t = w["tariff"]) {
      if (!t.IsSequence()) r.fail(t, "economics.power.tariff", "must be a list of {from_hour, to_hour, price_per_kwh}");
      for (size_t i = 0; i < t.size(); ++i) {
        const std::string path = "economics.power.tariff[" + std::to_string(i) + "]";
        r.only_keys(t[i], path, {"from_hour", "to_hour", "price_per_kwh"});
        if (!t[i]["from_hour"] || !t[i]["to_hour"] || !t[i]["price_per_kwh"])
          r.fail(t[i], path, "needs from_hour, to_hour and price_per_kwh");
        TariffBand b;
        r.in_range(t[i], path, "from_hour", 0, 23, b.from_hour);
        r.in_range(t[i], path, "to_hour", 1, 24, b.to_hour);
        if (b.from_hour == b.to_hour) r.fail(t[i]["to_hour"], path + ".to_hour", "must differ from from_hour");
        b.price_per_kwh = non_negative(t[i]["price_per_kwh"], path + ".price_per_kwh");
        ec.power.tariff.push_back(b);
      }
      if (!ec.power.price_per_kwh && !ec.power.tariff.empty())
        r.fail(w, "economics.power.price_per_kwh", "is required with a tariff (the price outside its bands)");
    }
  }
  if (const YAML::Node& g = e["groups"]) {
    if (!g.IsSequence()) r.fail(g, "economics.groups", "must be a list of {name, workers, watts}");
    for (size_t i = 0; i < g.size(); ++i) {
      const std::string path = "economics.groups[" + std::to_string(i) + "]";
      r.only_keys(g[i], path, {"name", "workers", "cidrs", "profiles", "watts"});
      if (!g[i]["name"] || !g[i]["watts"] || !(g[i]["workers"] || g[i]["cidrs"] || g[i]["profiles"]))
        r.fail(g[i], path, "needs name, watts and workers, cidrs or profiles");
      MinerGroup mg;
      mg.name = r.str(g[i]["name"], path + ".name");
      for (const MinerGroup& o : ec.groups)
        if (o.name == mg.name) r.fail(g[i]["name"], path + ".name", "duplicate group name '" + mg.name + "'");
      // Each list given must be non-empty, of non-empty strings.
      auto list = [&](const char* key, const char* what, std::vector<std::string>& out) {
        const YAML::Node& ws = g[i][key];
        if (!ws) return;
        const std::string at = path + "." + key;
        if (!ws.IsSequence() || ws.size() == 0) r.fail(ws, at, std::string("must be a non-empty list of ") + what);
        for (size_t k = 0; k < ws.size(); ++k) {
          std::string v = r.str(ws[k], at + "[" + std::to_string(k) + "]");
          if (v.empty()) r.fail(ws[k], at + "[" + std::to_string(k) + "]", "must not be empty");
          out.push_back(std::move(v));
        }
      };
      list("workers", "worker patterns", mg.workers);
      list("cidrs", "addresses or CIDRs", mg.cidrs);
      list("profiles", "firmware profile names", mg.profiles);
      for (size_t k = 0; k < mg.cidrs.size(); ++k)
        if (!valid_cidr(mg.cidrs[k]))
          r.fail(g[i]["cidrs"][k], path + ".cidrs[" + std::to_string(k) + "]",
                 "must be an address or CIDR like 10.0.0.0/8 or fd00::/8, got '" + mg.cidrs[k] + "'");
      r.positive(g[i], path, "watts", mg.watts);
      ec.groups.push_back(std::move(mg));
    }
  }
  if (const YAML::Node& b = e["boards"]) {
    if (!b.IsSequence()) r.fail(b, "economics.boards", "must be a list of {name, watts, always_mine}");
    for (size_t i = 0; i < b.size(); ++i) {
      const std::string path = "economics.boards[" + std::to_string(i) + "]";
      r.only_keys(b[i], path, {"name", "watts", "always_mine"});
      if (!b[i]["name"] || !b[i]["watts"]) r.fail(b[i], path, "needs name and watts");
      BoardPower bp;
      bp.name = r.str(b[i]["name"], path + ".name");
      if (std::none_of(c.hardware.boards.begin(), c.hardware.boards.end(), [&](const Board& x) { return x.name == bp.name; }))
        r.fail(b[i]["name"], path + ".name", "no board named '" + bp.name + "' under hardware.boards");
      for (const BoardPower& o : ec.boards)
        if (o.name == bp.name) r.fail(b[i]["name"], path + ".name", "board '" + bp.name + "' is listed twice");
      r.positive(b[i], path, "watts", bp.watts);
      if (b[i]["always_mine"]) bp.always_mine = r.boolean(b[i]["always_mine"], path + ".always_mine");
      ec.boards.push_back(std::move(bp));
    }
  }
  if (const YAML::Node& g = e["guard"]) {
    r.only_keys(g, "economics.guard", {"enabled", "margin", "resume_margin", "window_seconds"});
    auto& gd = ec.guard;
    if (g["enabled"]) gd.enabled = r.boolean(g["enabled"], "economics.guard.enabled");
    r.positive(g, "economics.guard", "margin", gd.margin);
    if (g["margin"] && !g["resume_margin"]) gd.resume_margin = gd.margin * 1.05;
    r.positive(g, "economics.guard", "resume_margin", gd.resume_margin);
    if (gd.resume_margin < gd.margin)
      r.fail(g["resume_margin"] ? g["resume_margin"] : g, "economics.guard.resume_margin",
             "must be at least economics.guard.margin (the band between them stops flapping)");
    r.positive(g, "economics.guard", "window_seconds", gd.window_seconds);
  }
}

Config load_string(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  // The Reader names every problem it checks for; anything yaml-cpp itself
  // refuses on the way (an odd node shape) still becomes a ConfigError.
  try {
    return load_root(root, source);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": invalid value: " + e.msg);
  }
}

// `auto` (-1) or a count 0..max.
static int thread_count(Reader& r, const YAML::Node& n, const std::string& key, int max) {
  if (r.str(n, key) == "auto") return -1;
  int64_t v = r.integer(n, key);
  if (v < 0 || v > max) r.fail(n, key, "must be auto or 0.." + std::to_string(max));
  return int(v);
}

void load_ledger(const Reader& r, const YAML::Node& n, Ledger& out) {
  r.only_keys(n, "ledger", {"backend", "path", "url", "url_file", "instance", "flush_seconds", "retention",
                            "queue_rows"});
  // A ledger section without a backend means the embedded one.
  out.backend = n["backend"] ? r.str(n["backend"], "ledger.backend") : "sqlite";
  if (out.backend != "sqlite" && out.backend != "postgres" && out.backend != "off")
    r.fail(n["backend"], "ledger.backend", "must be sqlite, postgres or off, got '" + out.backend + "'");
  if (n["path"]) {
    out.path = r.str(n["path"], "ledger.path");
    if (out.path.empty()) r.fail(n["path"], "ledger.path", "must not be empty");
  }
  if (n["url"] && n["url_file"]) r.fail(n["url_file"], "ledger.url_file", "give url or url_file, not both");
  if (n["url"]) out.url = r.str(n["url"], "ledger.url");
  if (n["url_file"]) {
    std::string file = r.str(n["url_file"], "ledger.url_file");
    std::ifstream in(file);
    if (!in) r.fail(n["url_file"], "ledger.url_file", "cannot read '" + file + "'");
    std::getline(in, out.url);
    while (!out.url.empty() && std::isspace(static_cast<unsigned char>(out.url.back()))) out.url.pop_back();
  }
  if (out.backend == "postgres" && out.url.empty())
    r.fail(n, "ledger.url", "is required for the postgres backend (a URI like postgresql://user@host/db)");
  if (out.backend == "postgres" && out.url.rfind("postgresql://", 0) != 0 && out.url.rfind("postgres://", 0) != 0)
    r.fail(n["url"] ? n["url"] : n["url_file"], n["url"] ? "ledger.url" : "ledger.url_file",
           "must start with postgresql://");
  if (n["instance"]) {
    out.instance = r.str(n["instance"], "ledger.instance");
    if (out.instance.empty() || out.instance.size() > 64)
      r.fail(n["instance"], "ledger.instance", "must be 1..64 characters");
  }
  r.positive(n, "ledger", "flush_seconds", out.flush_seconds);
  if (out.flush_seconds > 60) r.fail(n["flush_seconds"], "ledger.flush_seconds", "must be at most 60");
  r.in_range(n, "ledger", "queue_rows", 100, 100000000, out.queue_rows);
  if (const auto& rt = n["retention"]) {
    r.only_keys(rt, "ledger.retention", {"minute_days", "hour_days"});
    r.positive(rt, "ledger.retention", "minute_days", out.retention.minute_days);
    r.positive(rt, "ledger.retention", "hour_days", out.retention.hour_days);
    if (out.retention.hour_days < out.retention.minute_days)
      r.fail(rt, "ledger.retention.hour_days", "must not be shorter than ledger.retention.minute_days");
  }
}

Config load_root(const YAML::Node& root, const std::string& source) {
  Reader r(source);
  if (!root.IsMap()) throw ConfigError(source + ": the config must be a YAML mapping");
  r.only_keys(root, "", {"algorithm", "listeners", "pools", "aggregation", "vardiff", "version_rolling", "failover",
                         "hashing", "fanout", "limits", "bans", "http_connect", "admin", "logging", "hardware",
                         "compatibility", "ledger", "economics", "integrity"});
  Config c;
  c.source = source;
  if (root["algorithm"]) {
    c.algorithm = r.str(root["algorithm"], "algorithm");
    if (c.algorithm != "scrypt" && c.algorithm != "sha256d")
      r.fail(root["algorithm"], "algorithm", "must be scrypt or sha256d, got '" + c.algorithm + "'");
  }
  if (!root["listeners"]) r.fail(root, "listeners", "is required");
  load_listeners(r, root["listeners"], c);
  load_pools(r, root, c);
  if (root["aggregation"]) load_aggregation(r, root["aggregation"], c);
  if (root["vardiff"]) load_vardiff(r, root["vardiff"], c);
  if (root["compatibility"]) load_compatibility(r, root["compatibility"], c);
  if (const auto& v = root["version_rolling"]) {
    r.only_keys(v, "version_rolling", {"enabled", "mask"});
    if (v["enabled"]) c.version_rolling.enabled = r.boolean(v["enabled"], "version_rolling.enabled");
    if (v["mask"]) {
      std::string s = r.str(v["mask"], "version_rolling.mask");
      unsigned m = 0;
      auto res = std::from_chars(s.data(), s.data() + s.size(), m, 16);
      if (s.size() != 8 || res.ec != std::errc() || res.ptr != s.data() + s.size())
        r.fail(v["mask"], "version_rolling.mask", "must be 8 hex digits, got '" + s + "'");
      c.version_rolling.mask = m;
    }
  }
  if (const auto& f = root["failover"]) {
    r.only_keys(f, "failover", {"connect_timeout_seconds", "job_timeout_seconds", "submit_timeout_seconds",
                                "max_malformed", "max_reject_ratio", "failures_to_open",
                                "backoff_initial_seconds", "backoff_max_seconds", "failback_after_seconds",
                                "warm_standby", "reconnect_spread_seconds", "reconnect_grace_seconds",
                                "follow_reconnect_to_other_hosts"});
    auto& fo = c.failover;
    for (auto [key, out] : {std::pair{"connect_timeout_seconds", &fo.connect_timeout_seconds},
                            std::pair{"job_timeout_seconds", &fo.job_timeout_seconds},
                            std::pair{"submit_timeout_seconds", &fo.submit_timeout_seconds},
                            std::pair{"backoff_initial_seconds", &fo.backoff_initial_seconds},
                            std::pair{"backoff_max_seconds", &fo.backoff_max_seconds},
                            std::pair{"failback_after_seconds", &fo.failback_after_seconds},
                            std::pair{"reconnect_spread_seconds", &fo.reconnect_spread_seconds},
                            std::pair{"reconnect_grace_seconds", &fo.reconnect_grace_seconds}})
      r.positive(f, "failover", key, *out);
    r.in_range(f, "failover", "max_malformed", 1, 1000, fo.max_malformed);
    if (f["max_reject_ratio"]) {
      fo.max_reject_ratio = r.number(f["max_reject_ratio"], "failover.max_reject_ratio");
      if (!(fo.max_reject_ratio > 0 && fo.max_reject_ratio <= 1))
        r.fail(f["max_reject_ratio"], "failover.max_reject_ratio", "must be greater than 0 and at most 1");
    }
    r.in_range(f, "failover", "failures_to_open", 1, 100, fo.failures_to_open);
    if (f["warm_standby"]) fo.warm_standby = r.boolean(f["warm_standby"], "failover.warm_standby");
    if (f["follow_reconnect_to_other_hosts"])
      fo.follow_reconnect_to_other_hosts =
          r.boolean(f["follow_reconnect_to_other_hosts"], "failover.follow_reconnect_to_other_hosts");
    if (fo.backoff_initial_seconds > fo.backoff_max_seconds)
      r.fail(f, "failover.backoff_initial_seconds", "must not exceed failover.backoff_max_seconds");
  }
  if (const auto& h = root["hashing"]) {
    r.only_keys(h, "hashing", {"path", "threads", "inline_small_batches"});
    if (h["inline_small_batches"])
      c.hashing.inline_small_batches = r.boolean(h["inline_small_batches"], "hashing.inline_small_batches");
    if (h["path"]) {
      c.hashing.path = r.str(h["path"], "hashing.path");
      static const std::set<std::string> paths = {"auto", "portable", "sse2", "avx2", "avx512"};
      if (!paths.count(c.hashing.path))
        r.fail(h["path"], "hashing.path", "must be auto, portable, sse2, avx2 or avx512, got '" + c.hashing.path + "'");
    }
    if (h["threads"]) c.hashing.threads = thread_count(r, h["threads"], "hashing.threads", 64);
  }
  if (const auto& f = root["fanout"]) {
    r.only_keys(f, "fanout", {"threads"});
    if (f["threads"]) c.fanout.threads = thread_count(r, f["threads"], "fanout.threads", 16);
  }
  if (const auto& l = root["limits"]) {
    r.only_keys(l, "limits", {"max_line_bytes", "max_connections_per_address", "new_connections_per_second",
                              "messages_per_second", "subscribe_timeout_seconds", "authorize_timeout_seconds",
                              "idle_timeout_seconds", "max_pending_output_bytes",
                              "max_workers", "worker_idle_seconds", "pool_job_interval_seconds"});
    auto& li = c.limits;
    r.in_range(l, "limits", "max_line_bytes", 512, 1048576, li.max_line_bytes);
    r.in_range(l, "limits", "max_connections_per_address", 1, 1000000, li.max_connections_per_address);
    r.in_range(l, "limits", "max_pending_output_bytes", 4096, int64_t(1) << 30, li.max_pending_output_bytes);
    r.in_range(l, "limits", "max_workers", 1, 10000000, li.max_workers);
    r.positive(l, "limits", "worker_idle_seconds", li.worker_idle_seconds);
    if (const YAML::Node& j = l["pool_job_interval_seconds"]) {
      li.pool_job_interval_seconds = r.number(j, "limits.pool_job_interval_seconds");
      if (!(li.pool_job_interval_seconds >= 0 && li.pool_job_interval_seconds <= 10))
        r.fail(j, "limits.pool_job_interval_seconds", "must be between 0 (every job passes) and 10 seconds");
    }
    for (auto [key, out] : {std::pair{"new_connections_per_second", &li.new_connections_per_second},
                            std::pair{"messages_per_second", &li.messages_per_second},
                            std::pair{"subscribe_timeout_seconds", &li.subscribe_timeout_seconds},
                            std::pair{"authorize_timeout_seconds", &li.authorize_timeout_seconds},
                            std::pair{"idle_timeout_seconds", &li.idle_timeout_seconds}})
      r.positive(l, "limits", key, *out);
  }
  if (const auto& b = root["bans"]) {
    r.only_keys(b, "bans", {"enabled", "threshold", "ban_seconds", "max_ban_seconds", "score_half_life_seconds",
                            "allowlist"});
    auto& bn = c.bans;
    if (b["enabled"]) bn.enabled = r.boolean(b["enabled"], "bans.enabled");
    for (auto [key, out] : {std::pair{"threshold", &bn.threshold}, std::pair{"ban_seconds", &bn.ban_seconds},
                            std::pair{"max_ban_seconds", &bn.max_ban_seconds},
                            std::pair{"score_half_life_seconds", &bn.score_half_life_seconds}})
      r.positive(b, "bans", key, *out);
    if (bn.ban_seconds > bn.max_ban_seconds) r.fail(b, "bans.ban_seconds", "must not exceed bans.max_ban_seconds");
    if (const YAML::Node& al = b["allowlist"]) {
      if (!al.IsSequence()) r.fail(al, "bans.allowlist", "must be a list of CIDRs, e.g. [10.0.0.0/8]");
      for (size_t i = 0; i < al.size(); ++i) {
        const std::string path = "bans.allowlist[" + std::to_string(i) + "]";
        std::string cidr = r.str(al[i], path);
        if (!valid_cidr(cidr)) r.fail(al[i], path, "must be an address or CIDR like 10.0.0.0/8 or fd00::/8, got '" + cidr + "'");
        bn.allowlist.push_back(cidr);
      }
    }
  }
  if (const auto& h = root["http_connect"]) {
    r.only_keys(h, "http_connect", {"enabled", "user", "password", "routes"});
    auto& hc = c.http_connect;
    if (h["enabled"]) hc.enabled = r.boolean(h["enabled"], "http_connect.enabled");
    if (h["user"]) hc.user = r.str(h["user"], "http_connect.user");
    if (h["password"]) hc.password = r.str(h["password"], "http_connect.password");
    if (hc.user.empty() != hc.password.empty())
      r.fail(h, "http_connect", "user and password go together (Proxy-Authorization: Basic)");
    if (const YAML::Node& rs = h["routes"]) {
      if (!rs.IsSequence()) r.fail(rs, "http_connect.routes", "must be a list of {target: host:port, pool: name}");
      for (size_t i = 0; i < rs.size(); ++i) {
        const std::string path = "http_connect.routes[" + std::to_string(i) + "]";
        r.only_keys(rs[i], path, {"target", "pool"});
        if (!rs[i]["target"] || !rs[i]["pool"]) r.fail(rs[i], path, "needs target and pool");
        ConnectRoute route{r.str(rs[i]["target"], path + ".target"), r.str(rs[i]["pool"], path + ".pool")};
        for (char& ch : route.target) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (!parse_endpoint(route.target))
          r.fail(rs[i]["target"], path + ".target", "must be host:port, got '" + route.target + "'");
        if (std::none_of(c.pools.begin(), c.pools.end(), [&](const Pool& p) { return p.name == route.pool; }))
          r.fail(rs[i]["pool"], path + ".pool", "no pool named '" + route.pool + "'");
        hc.routes.push_back(std::move(route));
      }
    }
  }
  if (const auto& a = root["admin"]) {
    r.only_keys(a, "admin", {"bind", "token", "token_file", "max_worker_labels", "drain_seconds"});
    if (a["bind"]) {
      std::string bind = r.str(a["bind"], "admin.bind");
      auto ep = parse_endpoint(bind);
      if (!ep) r.fail(a["bind"], "admin.bind", "must be host:port, got '" + bind + "'");
      c.admin.bind = *ep;
    }
    if (a["token"] && a["token_file"]) r.fail(a["token_file"], "admin.token_file", "give token or token_file, not both");
    if (a["token"]) c.admin.token = r.str(a["token"], "admin.token");
    if (a["token_file"]) {
      std::string file = r.str(a["token_file"], "admin.token_file");
      std::ifstream in(file);
      if (!in) r.fail(a["token_file"], "admin.token_file", "cannot read '" + file + "'");
      std::getline(in, c.admin.token);
      while (!c.admin.token.empty() && std::isspace(static_cast<unsigned char>(c.admin.token.back())))
        c.admin.token.pop_back();
    }
    if (!c.admin.token.empty() && c.admin.token.size() < 16)
      r.fail(a["token"] ? a["token"] : a["token_file"], a["token"] ? "admin.token" : "admin.token_file",
             "must be at least 16 characters");
    r.in_range(a, "admin", "max_worker_labels", 0, 100000, c.admin.max_worker_labels);
    r.positive(a, "admin", "drain_seconds", c.admin.drain_seconds);
  }
  if (const auto& l = root["logging"]) {
    r.only_keys(l, "logging", {"level", "format"});
    if (l["level"]) {
      c.logging.level = r.str(l["level"], "logging.level");
      static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
      if (!levels.count(c.logging.level))
        r.fail(l["level"], "logging.level", "must be trace, debug, info, warn or error, got '" + c.logging.level + "'");
    }
    if (l["format"]) {
      c.logging.format = r.str(l["format"], "logging.format");
      if (c.logging.format != "text" && c.logging.format != "json")
        r.fail(l["format"], "logging.format", "must be text or json, got '" + c.logging.format + "'");
    }
  }
  if (const auto& h = root["hardware"]) load_hardware(r, h, c);
  if (const auto& l = root["ledger"]) load_ledger(r, l, c.ledger);
  if (const auto& e = root["economics"]) load_economics(r, e, c);
  if (const auto& i = root["integrity"]) load_integrity(r, i, c);
  return c;
}

Config load_file(const std::string& path) { return load_string(read_file(path), path); }

std::optional<std::vector<JsonPathStep>> parse_json_path(std::string_view path) {
  std::vector<JsonPathStep> out;
  size_t i = 0;
  if (path.empty()) return out;  // the answer itself is the number
  while (i < path.size()) {
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos || close == i + 1) return std::nullopt;
      size_t idx = 0;
      auto res = std::from_chars(path.data() + i + 1, path.data() + close, idx);
      if (res.ec != std::errc() || res.ptr != path.data() + close) return std::nullopt;
      out.push_back({{}, idx, true});
      i = close + 1;
      if (i < path.size() && path[i] == '.') {
        if (++i == path.size()) return std::nullopt;
      }
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string_view::npos) end = path.size();
    if (end == i) return std::nullopt;
    out.push_back({std::string(path.substr(i, end - i)), 0, false});
    i = end;
    if (i < path.size() && path[i] == '.') {
      if (++i == path.size()) return std::nullopt;
    }
  }
  if (out.size() > 32) return std::nullopt;
  return out;
}

}  // namespace hashgate::conf
