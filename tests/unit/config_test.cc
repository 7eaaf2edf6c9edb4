#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "conf/config.h"

using namespace hashgate::conf;

namespace {
const char* kGood = R"(algorithm: sha256d
listeners:
  - name: s
    bind: 127.0.0.1:3333
pools:
  - name: main
    url: stratum+tcp://pool.example.com:3333
    user: farm1.gw
    password: ${HASHGATE_UT_PW:-x}
aggregation:
  mode: passthrough
  prefix_bytes: 1
vardiff:
  initial: 0.5
  min: 0.001
  max: 8
)";

std::string error_of(const std::string& yaml) {
  try {
    load_string(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("a good config loads into typed values") {
  unsetenv("HASHGATE_UT_PW");
  Config c = load_string(kGood, "t.yaml");
  CHECK(c.algorithm == "sha256d");
  REQUIRE(c.pools.size() == 1);
  CHECK(c.pools[0].endpoint.host == "pool.example.com");
  CHECK(c.pools[0].endpoint.port == 3333);
  CHECK(c.pools[0].password == "x");
  CHECK(c.aggregation.mode == AggregationMode::kPassthrough);
  CHECK(c.aggregation.prefix_bytes == 1);
  CHECK(c.vardiff.initial == 0.5);
  setenv("HASHGATE_UT_PW", "from-env", 1);
  CHECK(load_string(kGood, "t.yaml").pools[0].password == "from-env");
  unsetenv("HASHGATE_UT_PW");
}

TEST_CASE("errors name the file, the line and the key path") {
  std::string base = kGood;
  CHECK(error_of(base + "bogus: 1\n") == "t.yaml:17: bogus: unknown key (expected one of: algorithm, listeners, pools, "
                                         "aggregation, vardiff, version_rolling, failover, hashing, fanout, limits, bans, http_connect, admin, "
                                         "logging, hardware, compatibility, ledger, economics, integrity)");
  std::string e = error_of(std::string(kGood).replace(std::string(kGood).find("prefix_bytes: 1"), 15, "prefix_bytes: 9"));
  CHECK(e.find("t.yaml:12: aggregation.prefix_bytes") == 0);
  e = error_of(std::string(kGood).replace(std::string(kGood).find("initial: 0.5"), 12, "initial: lots"));
  CHECK(e.find("t.yaml:14: vardiff.initial: must be a number") == 0);
  e = error_of(std::string(kGood).replace(std::string(kGood).find("initial: 0.5"), 12, "initial: 100"));
  CHECK(e.find("vardiff.initial: must lie between") != std::string::npos);
  e = error_of("listeners: [{name: a, bind: 'nope'}]\npools: []\n");
  CHECK(e.find("listeners[0].bind: must be host:port") != std::string::npos);
  e = error_of("listeners:\n  - name: a\n    bind: 1.2.3.4:1\n");
  CHECK(e == "t.yaml:1: pools: is required: at least one pool");
  e = error_of(base + "failover:\n  max_reject_ratio: 1.5\n");
  CHECK(e == "t.yaml:18: failover.max_reject_ratio: must be greater than 0 and at most 1");
  CHECK(load_string(base + "failover:\n  max_reject_ratio: 0.25\n", "t.yaml").failover.max_reject_ratio == 0.25);
  e = error_of("a: [\n");
  CHECK(e.find("invalid YAML") != std::string::npos);
}

TEST_CASE("thread counts: auto or a bounded number, the same rule for hashing and fanout") {
  std::string base = kGood;
  Config c = load_string(base, "t.yaml");
  CHECK(c.hashing.threads == -1);
  CHECK(c.fanout.threads == -1);
  c = load_string(base + "fanout: {threads: 2}\nhashing: {threads: auto}\n", "t.yaml");
  CHECK(c.fanout.threads == 2);
  CHECK(c.hashing.threads == -1);
  CHECK(load_string(base + "fanout: {threads: 0}\n", "t.yaml").fanout.threads == 0);
  CHECK(error_of(base + "fanout: {threads: 17}\n") == "t.yaml:17: fanout.threads: must be auto or 0..16");
  CHECK(error_of(base + "fanout: {threads: many}\n").find("t.yaml:17: fanout.threads: must be an integer") == 0);
  CHECK(error_of(base + "hashing: {threads: -1}\n") == "t.yaml:17: hashing.threads: must be auto or 0..64");
  CHECK(error_of(base + "fanout: {thread: 1}\n").find("fanout.thread: unknown key (expected one of: threads)") !=
        std::string::npos);
}

TEST_CASE("TLS pools and listeners") {
  const std::string ssl = std::string(kGood).replace(std::string(kGood).find("stratum+tcp"), 11, "stratum+ssl");
  Config c = load_string(ssl, "t.yaml");
  REQUIRE(c.pools[0].tls.has_value());
  CHECK(c.pools[0].scheme == PoolScheme::kSsl);
  CHECK(c.pools[0].tls->verify);
  CHECK(c.pools[0].tls->ca.empty());  // the system's CAs
  CHECK(!load_string(kGood, "t.yaml").pools[0].tls.has_value());
  auto pool_tls = [&](const std::string& base, const std::string& tls) {
    std::string y = base;
    return y.insert(y.find("    password:"), "    tls: " + tls + "\n");
  };
  c = load_string(pool_tls(ssl, "{pin_sha256: 'AB:cd:" + std::string(60, 'e') + "', verify: false, server_name: p.example}"),
                  "t.yaml");
  REQUIRE(c.pools[0].tls->pins.size() == 1);
  CHECK(c.pools[0].tls->pins[0][0] == 0xab);
  CHECK(c.pools[0].tls->pins[0][1] == 0xcd);
  CHECK(c.pools[0].tls->pins[0][31] == 0xee);
  CHECK(!c.pools[0].tls->verify);
  CHECK(c.pools[0].tls->server_name == "p.example");
  CHECK(error_of(pool_tls(ssl, "{verify: false}")) ==
        "t.yaml:9: pools[0].tls.verify: false needs pin_sha256: otherwise any certificate would be accepted");
  CHECK(error_of(pool_tls(ssl, "{pin_sha256: abc}")).find("pools[0].tls.pin_sha256: must be 64 hex digits") !=
        std::string::npos);
  CHECK(error_of(pool_tls(ssl, "{ca: /nonexistent/ca.pem}")) == "t.yaml:9: pools[0].tls.ca: cannot read '/nonexistent/ca.pem'");
  CHECK(error_of(pool_tls(ssl, "{cafile: x}")).find("pools[0].tls.cafile: unknown key") != std::string::npos);
  CHECK(error_of(pool_tls(kGood, "{ca: x}")) == "t.yaml:9: pools[0].tls: is only for stratum+ssl:// pools");
  std::string listener = kGood;
  listener.insert(listener.find("pools:"), "    tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem}\n");
  CHECK(error_of(listener) == "t.yaml:5: listeners[0].tls.cert: cannot read '/nonexistent/c.pem'");
}

TEST_CASE("admin section") {
  const std::string base = kGood;
  Config c = load_string(base + "admin:\n  bind: 127.0.0.1:9100\n  token: abcdefghijklmnop\n  drain_seconds: 3\n", "t.yaml");
  REQUIRE(c.admin.bind.has_value());
  CHECK(c.admin.bind->port == 9100);
  CHECK(c.admin.token == "abcdefghijklmnop");
  CHECK(c.admin.drain_seconds == 3);
  CHECK(c.admin.max_worker_labels == 100);
  CHECK(!load_string(kGood, "t.yaml").admin.bind.has_value());
  CHECK(error_of(base + "admin:\n  bind: 127.0.0.1:9100\n  token: short\n") ==
        "t.yaml:19: admin.token: must be at least 16 characters");
  CHECK(error_of(base + "admin:\n  bind: nowhere\n") == "t.yaml:18: admin.bind: must be host:port, got 'nowhere'");
  CHECK(error_of(base + "admin:\n  drain_seconds: 0\n") == "t.yaml:18: admin.drain_seconds: must be greater than 0");
  CHECK(error_of(base + "admin:\n  max_worker_labels: -1\n").find("admin.max_worker_labels: must be 0..100000") !=
        std::string::npos);
}

TEST_CASE("odd YAML shapes are config errors, never a crash (found by fuzz_config)") {
  CHECK(error_of("? [a, b]\n: 1\n") == "t.yaml:1: (top level): keys must be plain names");
  CHECK(error_of(std::string(kGood) + "logging:\n  ? {level: info}\n") ==
        "t.yaml:18: logging: keys must be plain names");
  CHECK(error_of("algorithm: [1, 2]\n").find("t.yaml:1: algorithm") == 0);
}

TEST_CASE("environment substitution") {
  setenv("HASHGATE_UT_A", "alpha", 1);
  unsetenv("HASHGATE_UT_B");
  CHECK(substitute_env("x-${HASHGATE_UT_A}-y", "w") == "x-alpha-y");
  CHECK(substitute_env("${HASHGATE_UT_B:-dflt}", "w") == "dflt");
  CHECK(substitute_env("${HASHGATE_UT_B:-}", "w") == "");
  CHECK_THROWS_WITH_AS(substitute_env("${HASHGATE_UT_B}", "f:3: pools[0].password"),
                       "f:3: pools[0].password: environment variable HASHGATE_UT_B is not set and has no default",
                       ConfigError);
  CHECK_THROWS_AS(substitute_env("${HASHGATE_UT_A", "w"), ConfigError);
}

TEST_CASE("endpoints") {
  CHECK(parse_endpoint("127.0.0.1:3333")->port == 3333);
  CHECK(parse_endpoint("[::1]:80")->host == "::1");
  CHECK_FALSE(parse_endpoint("host"));
  CHECK_FALSE(parse_endpoint("host:99999"));
  CHECK_FALSE(parse_endpoint(":80"));
}

TEST_CASE("hardware boards") {
  const std::string head = "algorithm: sha256d\nlisteners:\n  - name: s\n    bind: 127.0.0.1:3333\n"
                           "pools:\n  - name: t\n    url: test://\n    user: u\nhardware:\n  boards:\n";
  Config c = load_string(head + "    - {name: a, driver: bm1370, path: /dev/ttyACM0, baud: 1000000, frequency: 490}\n"
                                "    - {name: b, driver: bm1366, path: /dev/ttyACM1, chips: 4, difficulty_scale: 1024}\n",
                         "t.yaml");
  REQUIRE(c.hardware.boards.size() == 2);
  CHECK(c.hardware.boards[0].baud == 1000000);
  CHECK(c.hardware.boards[0].frequency == 490);
  CHECK(c.hardware.boards[1].chips == 4);
  CHECK(c.hardware.boards[1].difficulty_scale == 1024);
  CHECK(c.hardware.boards[1].silent_seconds == 120);
  CHECK(error_of(head + "    - {name: a, driver: zeus, path: /dev/ttyUSB0}\n") ==
        "t.yaml:11: hardware.boards[0].driver: zeus mines scrypt but algorithm is sha256d");
  CHECK(error_of(head + "    - {name: a, driver: bm1399, path: /dev/ttyUSB0}\n") ==
        "t.yaml:11: hardware.boards[0].driver: must be bm1366, bm1368, bm1370, gc3355 or zeus, got 'bm1399'");
  CHECK(error_of(head + "    - {name: a, driver: bm1370}\n") == "t.yaml:11: hardware.boards[0].path: is required");
  CHECK(error_of(head + "    - {name: a, driver: bm1370, path: /dev/x, baud: 9600}\n") ==
        "t.yaml:11: hardware.boards[0].baud: BM13xx chips run at 115200 or 1000000 baud, got 9600");
  CHECK(error_of(head + "    - {name: a, driver: bm1370, path: /dev/x}\n    - {name: a, driver: bm1370, path: /dev/y}\n") ==
        "t.yaml:12: hardware.boards[1].name: duplicate board name 'a'");
  CHECK(error_of(head + "    - {name: a, driver: bm1370, path: /dev/x, max_hardware_error_ratio: 2}\n") ==
        "t.yaml:11: hardware.boards[0].max_hardware_error_ratio: must be greater than 0 and at most 1");
  const std::string tls_only = "algorithm: sha256d\nlisteners:\n  - name: s\n    bind: 127.0.0.1:3333\n"
                               "    tls: {cert: /dev/null, key: /dev/null}\npools:\n  - name: t\n    url: test://\n    user: u\n"
                               "hardware:\n  boards:\n    - {name: a, driver: bm1370, path: /dev/x}\n";
  CHECK(error_of(tls_only).find("hardware.boards: boards connect to a plain (non-TLS) Stratum listener") !=
        std::string::npos);
}

TEST_CASE("listeners[].advertise and failover.reconnect_grace_seconds") {
  const std::string pools = "pools: [{name: p, url: 'stratum+tcp://h:1', user: u}]\n";
  Config c = load_string("listeners:\n  - name: a\n    bind: 0.0.0.0:3333\n    advertise: stratum.farm.example:443\n" +
                             pools + "failover: {reconnect_grace_seconds: 4}\n",
                         "t.yaml");
  REQUIRE(c.listeners[0].advertise.has_value());
  CHECK(c.listeners[0].advertise->host == "stratum.farm.example");
  CHECK(c.listeners[0].advertise->port == 443);
  CHECK(c.failover.reconnect_grace_seconds == 4);
  CHECK_FALSE(load_string("listeners: [{name: a, bind: '0.0.0.0:1'}]\n" + pools, "t.yaml").listeners[0].advertise);
  for (const char* bad : {"0.0.0.0:3333", "host:0", "nope"}) {
    std::string e = error_of("listeners:\n  - name: a\n    bind: 0.0.0.0:3333\n    advertise: '" + std::string(bad) +
                             "'\n" + pools);
    CHECK_MESSAGE(e.find("t.yaml:4: listeners[0].advertise: must be the host:port miners use") == 0, e);
  }
}

TEST_CASE("limits.pool_job_interval_seconds: 0.25 by default, 0 passes every job, bounded") {
  const std::string head = "listeners: [{name: a, bind: '0.0.0.0:1'}]\npools: [{name: p, url: 'stratum+tcp://h:1', user: u}]\n";
  CHECK(load_string(head, "t.yaml").limits.pool_job_interval_seconds == 0.25);
  CHECK(load_string(head + "limits: {pool_job_interval_seconds: 0}\n", "t.yaml").limits.pool_job_interval_seconds == 0);
  CHECK(load_string(head + "limits: {pool_job_interval_seconds: 1.5}\n", "t.yaml").limits.pool_job_interval_seconds == 1.5);
  for (const char* bad : {"-1", "11", "fast"}) {
    std::string e = error_of(head + "limits: {pool_job_interval_seconds: " + bad + "}\n");
    CHECK_MESSAGE(e.find("t.yaml:3: limits.pool_job_interval_seconds: ") == 0, e);
  }
}

TEST_CASE("ledger: off unless configured; a section alone means sqlite; errors name the key") {
  CHECK(load_string(kGood, "t.yaml").ledger.backend == "off");
  std::string base = kGood;
  Config c = load_string(base + "ledger:\n  path: /tmp/x.db\n  flush_seconds: 0.5\n  queue_rows: 500\n"
                                "  retention: {minute_days: 2, hour_days: 30}\n",
                         "t.yaml");
  CHECK(c.ledger.backend == "sqlite");
  CHECK(c.ledger.path == "/tmp/x.db");
  CHECK(c.ledger.flush_seconds == 0.5);
  CHECK(c.ledger.queue_rows == 500);
  CHECK(c.ledger.retention.minute_days == 2);
  CHECK(c.ledger.retention.hour_days == 30);
  CHECK(error_of(base + "ledger:\n  backend: postgres\n") ==
        "t.yaml:18: ledger.url: is required for the postgres backend (a URI like postgresql://user@host/db)");
  CHECK(error_of(base + "ledger:\n  backend: postgres\n  url: mysql://x\n") ==
        "t.yaml:19: ledger.url: must start with postgresql://");
  CHECK(error_of(base + "ledger:\n  flush_seconds: 61\n") == "t.yaml:18: ledger.flush_seconds: must be at most 60");
  CHECK(error_of(base + "ledger:\n  retention: {minute_days: 9, hour_days: 3}\n") ==
        "t.yaml:18: ledger.retention.hour_days: must not be shorter than ledger.retention.minute_days");
}

TEST_CASE("listeners: PROXY protocol and its trusted proxies") {
  auto with = [](const std::string& lines) {
    std::string y = kGood;
    return y.insert(y.find("pools:"), lines);
  };
  Config c = load_string(kGood, "t.yaml");
  CHECK(c.listeners[0].proxy_protocol == ProxyProtocol::kOff);
  CHECK(c.listeners[0].trusted_proxies.empty());
  c = load_string(with("    proxy_protocol: v2\n    trusted_proxies: [10.0.0.0/8, 'fd00::/8', 127.0.0.1]\n"), "t.yaml");
  CHECK(c.listeners[0].proxy_protocol == ProxyProtocol::kV2);
  REQUIRE(c.listeners[0].trusted_proxies.size() == 3);
  CHECK(c.listeners[0].trusted_proxies[1] == "fd00::/8");
  CHECK(load_string(with("    proxy_protocol: any\n    trusted_proxies: [10.1.2.3]\n"), "t.yaml").listeners[0].proxy_protocol ==
        ProxyProtocol::kAny);
  CHECK(load_string(with("    proxy_protocol: 'off'\n"), "t.yaml").listeners[0].proxy_protocol == ProxyProtocol::kOff);
  CHECK(error_of(with("    proxy_protocol: v3\n    trusted_proxies: [10.0.0.0/8]\n")) ==
        "t.yaml:5: listeners[0].proxy_protocol: must be off, v1, v2 or any, got 'v3'");
  CHECK(error_of(with("    proxy_protocol: v1\n")) ==
        "t.yaml:5: listeners[0].trusted_proxies: is required with proxy_protocol v1: the load balancers' addresses, "
        "e.g. [10.0.0.0/8]");
  CHECK(error_of(with("    trusted_proxies: [10.0.0.0/8]\n")) ==
        "t.yaml:5: listeners[0].trusted_proxies: has no effect unless proxy_protocol is v1, v2 or any");
  CHECK(error_of(with("    proxy_protocol: v1\n    trusted_proxies: [10.0.0.0/33]\n")) ==
        "t.yaml:6: listeners[0].trusted_proxies[0]: must be an address or CIDR like 10.0.0.0/8 or fd00::/8, got "
        "'10.0.0.0/33'");
  CHECK(error_of(with("    proxy_protocol: v1\n    trusted_proxies: 10.0.0.0/8\n")) ==
        "t.yaml:6: listeners[0].trusted_proxies: must be a list of CIDRs, e.g. [10.0.0.0/8]");

}

TEST_CASE("errors never echo raw bytes of the file: control bytes and broken UTF-8 become \\xNN") {
  // A YAML escape puts control bytes into the value; a raw 0xff 0xc3 is not UTF-8.
  std::string e = error_of("algorithm: \"scr\\x01\\e[2Jypt\"\nlisteners: []\n");
  CHECK(e == "t.yaml:1: algorithm: must be scrypt or sha256d, got 'scr\\x01\\x1b[2Jypt'");
  e = error_of(std::string("algorithm: scr\xff\xc3ypt\nlisteners: []\n"));
  CHECK(e == "t.yaml:1: algorithm: must be scrypt or sha256d, got 'scr\\xff\\xc3ypt'");
  e = error_of(std::string("pool\x01: 1\n"));
  CHECK(e.find("t.yaml:1: pool\\x01: unknown key") == 0);
  // Well-formed UTF-8 (a pool named in another script) stays as it is.
  CHECK(printable("pool \xc3\xa9t\xc3\xa9") == "pool \xc3\xa9t\xc3\xa9");
  CHECK(printable("a\tb\x7f") == "a\\x09b\\x7f");
}

TEST_CASE("integrity: the section and the per-pool keys, with file:line:key errors") {
  const std::string pools = R"(listeners:
  - name: s
    bind: 127.0.0.1:3333
pools:
  - name: solo
    url: stratum+tcp://127.0.0.1:3334
    user: u
    integrity:
      chain: ltc
      require_outputs: [ltc1qexample, "script:51"]
      lock_outputs: true
)";
  Config c = load_string(pools + R"(integrity:
  stale_grace_seconds: 5
  stale_move_seconds: 20
  stale_action: move
  node: {url: "http://127.0.0.1:19332", cookie_file: /tmp/x/.cookie, poll_seconds: 0.5}
)",
                         "t.yaml");
  CHECK(c.pools[0].integrity.chain == "ltc");
  REQUIRE(c.pools[0].integrity.require_outputs.size() == 2);
  CHECK(c.pools[0].integrity.require_outputs[1].text == "script:51");
  CHECK(c.pools[0].integrity.require_outputs[1].where == "t.yaml:10: pools[0].integrity.require_outputs[1]");
  CHECK(c.pools[0].integrity.lock_outputs);
  CHECK(c.integrity.stale_action == "move");
  CHECK(c.integrity.stale_move_seconds == 20);
  REQUIRE(c.integrity.node);
  CHECK(c.integrity.node->endpoint.port == 19332);
  CHECK(c.integrity.node->poll_seconds == 0.5);
  CHECK(load_string(pools, "t.yaml").integrity.enabled);
  CHECK(!load_string(pools, "t.yaml").integrity.node);
  CHECK(error_of(pools + "integrity:\n  stale_action: panic\n") ==
        "t.yaml:13: integrity.stale_action: must be flag or move, got 'panic'");
  CHECK(error_of(pools + "integrity:\n  stale_grace_seconds: 60\n  stale_move_seconds: 10\n") ==
        "t.yaml:14: integrity.stale_move_seconds: must not be less than integrity.stale_grace_seconds");
  CHECK(error_of(pools + "integrity:\n  node: {url: 'https://x:1', user: a, password: b}\n") ==
        "t.yaml:13: integrity.node.url: must be http://host:port, got 'https://x:1'");
  CHECK(error_of(pools + "integrity:\n  node: {url: 'http://x:1', password: b}\n") ==
        "t.yaml:13: integrity.node.user: is required with password");
  CHECK(error_of(pools + "integrity:\n  node: {url: 'http://x:1'}\n") ==
        "t.yaml:13: integrity.node: needs user and password, or cookie_file");
  CHECK(error_of(pools + "integrity:\n  colour: red\n") ==
        "t.yaml:13: integrity.colour: unknown key (expected one of: enabled, stale_grace_seconds, stale_move_seconds, "
        "stale_action, ahead_blocks, chain_height_window, ntime_window_seconds, node)");
  std::string bad = pools;
  bad.replace(bad.find("require_outputs: [ltc1qexample, \"script:51\"]"), 44, "require_outputs: []");
  CHECK(error_of(bad) == "t.yaml:10: pools[0].integrity.require_outputs: must be a non-empty list of addresses or script:<hex>");
}
