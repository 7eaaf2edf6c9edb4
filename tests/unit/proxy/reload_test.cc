// A reload's restart-only settings (proxy/reload.h): each one that changed is
// named once and taken back from the running config; live settings pass.
#include "proxy/reload.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "conf/config.h"

using hashgate::conf::Config;
using hashgate::conf::load_string;

namespace {

const char* kBase = R"(algorithm: scrypt
listeners:
  - name: stratum
    bind: 127.0.0.1:3333
pools:
  - name: main
    url: test://local
admin:
  bind: 127.0.0.1:9100
vardiff:
  initial: 1
)";

Config with(const std::string& replace_from, const std::string& replace_to) {
  std::string y = kBase;
  const auto at = y.find(replace_from);
  REQUIRE(at != std::string::npos);
  y.replace(at, replace_from.size(), replace_to);
  return load_string(y, "t.yaml");
}

bool has_note(const std::vector<std::string>& notes, const std::string& what) {
  return std::count(notes.begin(), notes.end(), what + " changed: takes effect after a restart") == 1;
}

}  // namespace

TEST_CASE("reload: live settings pass with no note") {
  const Config running = load_string(kBase, "t.yaml");
  Config next = with("initial: 1", "initial: 4");
  std::vector<std::string> notes;
  hashgate::keep_restart_only(running, next, notes);
  CHECK(notes.empty());
  CHECK(next.vardiff.initial == 4);
}

TEST_CASE("reload: the algorithm, listeners, hashing, aggregation and log format are kept and named") {
  const Config running = load_string(kBase, "t.yaml");
  Config next = load_string(std::string(kBase) + R"(hashing:
  threads: 3
aggregation:
  mode: passthrough
logging:
  format: json
)",
                            "t.yaml");
  next.algorithm = "sha256d";
  next.listeners[0].bind.port = 4444;
  std::vector<std::string> notes;
  hashgate::keep_restart_only(running, next, notes);
  CHECK(notes.size() == 5);
  CHECK(has_note(notes, "algorithm"));
  CHECK(has_note(notes, "listeners"));
  CHECK(has_note(notes, "hashing"));
  CHECK(has_note(notes, "aggregation"));
  CHECK(has_note(notes, "logging.format"));
  // Taken back: the running values are what the gateway goes on with.
  CHECK(next.algorithm == "scrypt");
  CHECK(next.listeners[0].bind.port == 3333);
  CHECK(next.hashing.threads == running.hashing.threads);
  CHECK(next.aggregation.mode == running.aggregation.mode);
  CHECK(next.logging.format == running.logging.format);
}

TEST_CASE("reload: a new admin address or fan-out thread count is named, not applied here") {
  const Config running = load_string(kBase, "t.yaml");
  Config next = with("bind: 127.0.0.1:9100", "bind: 127.0.0.1:9200");
  next.fanout.threads = running.fanout.threads + 2;
  std::vector<std::string> notes;
  hashgate::keep_restart_only(running, next, notes);
  CHECK(notes.size() == 2);
  CHECK(has_note(notes, "admin.bind"));
  CHECK(has_note(notes, "fanout"));
}
