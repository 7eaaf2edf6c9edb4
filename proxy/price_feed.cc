// libcurl (Debian's libcurl4-openssl-dev) does the fetching: HTTPS with the
// system's CAs and name checks, redirects, timeouts and proxies as operators
// expect, none of which hashgate should grow a second copy of.
#include "proxy/price_feed.h"

#include <curl/curl.h>
#include <simdjson.h>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "proxy/clock.h"
#include "proxy/log.h"

namespace hashgate {
namespace {

constexpr size_t kMaxAnswerBytes = 65536;

struct Fetch {
  std::string body;
  bool too_large = false;
  const std::atomic<bool>* stopping = nullptr;
};

size_t on_data(char* p, size_t size, size_t n, void* user) {
  auto* f = static_cast<Fetch*>(user);
  if (f->body.size() + size * n > kMaxAnswerBytes) {
    f->too_large = true;
    return 0;  // aborts the transfer
  }
  f->body.append(p, size * n);
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  // A stop aborts a transfer in flight instead of waiting for its timeout.
  auto* f = static_cast<Fetch*>(user);
  return f->stopping->load() ? 1 : 0;
}

}  // namespace

PriceParse extract_price(std::string_view body, const std::vector<conf::JsonPathStep>& path, std::string_view path_text) {
  PriceParse out;
  simdjson::dom::parser parser;
  simdjson::dom::element el;
  if (auto err = parser.parse(body.data(), body.size()).get(el)) {
    out.error = std::string("malformed JSON: ") + simdjson::error_message(err);
    return out;
  }
  std::string at;
  for (const conf::JsonPathStep& s : path) {
    if (s.is_index) {
      simdjson::dom::array a;
      if (el.get_array().get(a) || s.index >= a.size()) {
        out.error = "no element [" + std::to_string(s.index) + "] at '" + (at.empty() ? "(top)" : at) + "'";
        return out;
      }
      el = a.at(s.index).value_unsafe();
      at += "[" + std::to_string(s.index) + "]";
    } else {
      simdjson::dom::object o;
      if (el.get_object().get(o) || o[s.key].get(el)) {
        out.error = "no member '" + s.key + "' at '" + (at.empty() ? "(top)" : at) + "'";
        return out;
      }
      at += (at.empty() ? "" : ".") + s.key;
    }
  }
  double v = 0;
  std::string_view text;
  if (el.is_number()) {
    v = el.get_double().value_unsafe();
  } else if (!el.get_string().get(text)) {
    std::string t(text);
    char* end = nullptr;
    v = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != 0) {
      out.error = "'" + std::string(path_text) + "' is the string '" + t.substr(0, 40) + "', not a number";
      return out;
    }
  } else {
    out.error = "'" + std::string(path_text) + "' is not a number";
    return out;
  }
  if (!std::isfinite(v) || v < 0) {
    out.error = "'" + std::string(path_text) + "' is not a finite price >= 0";
    return out;
  }
  out.price = v;
  return out;
}

PriceFeed::~PriceFeed() { stop(); }

void PriceFeed::configure(const conf::PriceSource& cfg) {
  std::unique_lock<std::mutex> g(mu_);
  bool source_changed = cfg.url != cfg_.url || cfg.path != cfg_.path || cfg.fixed != cfg_.fixed;
  cfg_ = cfg;
  status_.currency = cfg.currency;
  if (cfg.fixed) {
    status_.source = "fixed";
    status_.price = *cfg.fixed;
    status_.updated_unix = 0;
    status_.last_error.clear();
  } else if (!cfg.url.empty()) {
    status_.source = "url";
    if (source_changed) changed_ = true;
  } else {
    status_ = PriceStatus{};
    status_.currency = cfg.currency;
  }
  bool want_thread = !cfg.fixed && !cfg.url.empty();
  if (want_thread && !thread_.joinable()) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    stopping_ = false;
    changed_ = true;
    thread_ = std::thread([this] { run(); });
  }
  g.unlock();
  cv_.notify_all();
}

void PriceFeed::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

PriceStatus PriceFeed::status() const {
  std::lock_guard<std::mutex> g(mu_);
  return status_;
}

void PriceFeed::run() {
  std::unique_lock<std::mutex> g(mu_);
  while (!stopping_) {
    if (!cfg_.fixed && !cfg_.url.empty()) {
      conf::PriceSource cfg = cfg_;
      changed_ = false;
      g.unlock();
      fetch_once(cfg);
      g.lock();
    }
    cv_.wait_for(g, std::chrono::duration<double>(cfg_.refresh_seconds), [this] { return stopping_ || changed_; });
  }
}

void PriceFeed::fetch_once(const conf::PriceSource& cfg) {
  Fetch f;
  f.stopping = &stopping_;
  std::string error;
  CURL* c = curl_easy_init();
  if (!c) {
    error = "curl_easy_init failed";
  } else {
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, cfg.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(cfg.timeout_seconds * 1000));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hashgate/" HASHGATE_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &f);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    if (f.too_large) error = "answer larger than " + std::to_string(kMaxAnswerBytes) + " bytes";
    else if (rc != CURLE_OK) error = std::string("fetch: ") + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (http < 200 || http >= 300) error = "HTTP status " + std::to_string(http);
    curl_easy_cleanup(c);
  }
  std::optional<double> price;
  if (error.empty()) {
    auto steps = conf::parse_json_path(cfg.path);
    PriceParse p = extract_price(f.body, steps ? *steps : std::vector<conf::JsonPathStep>{}, cfg.path);
    if (p.price) price = p.price;
    else error = p.error;
  }
  double now = unix_now();
  std::lock_guard<std::mutex> g(mu_);
  if (cfg.url != cfg_.url || stopping_) return;  // reconfigured meanwhile: this answer is for the old source
  status_.last_attempt_unix = now;
  if (price) {
    bool was_failing = !status_.last_error.empty();
    ++status_.fetches_ok;
    status_.price = price;
    status_.updated_unix = now;
    status_.last_error.clear();
    auto e = was_failing ? log::info("price_updated") : log::debug("price_updated");
    e.kv("price", *price).kv("currency", cfg.currency).kv("url", cfg.url);
  } else {
    ++status_.fetches_failed;
    bool repeat = status_.last_error == error;
    status_.last_error = error;
    // One line per new kind of failure, not one per refresh.
    if (!repeat) {
      auto e = log::warn("price_fetch_failed");
      e.kv("url", cfg.url).kv("error", error);
      if (status_.price) e.kv("kept_price", *status_.price).kv("age_seconds", now - status_.updated_unix);
    }
  }
}

}  // namespace hashgate
