// The coin's price: fixed in the config, or fetched from an HTTP(S) JSON
// endpoint every refresh_seconds on a thread of its own (never the loop).
// A failed fetch keeps the last good price and says how old it is and why
// the last attempt failed; the loop reads status() once a second.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "conf/config.h"

namespace hashgate {

// The number at `path` in a JSON answer: a JSON number, or a string holding
// one (many exchanges quote prices). Without I/O, for tests and the fetcher.
struct PriceParse {
  std::optional<double> price;
  std::string error;  // "malformed JSON: ...", "no member 'last' at data.last", ...
};
PriceParse extract_price(std::string_view body, const std::vector<conf::JsonPathStep>& path, std::string_view path_text);

struct PriceStatus {
  std::string source = "none";     // none | fixed | url
  std::optional<double> price;     // the last good price
  double updated_unix = 0;         // when it was fetched (0: fixed or never)
  double last_attempt_unix = 0;
  std::string last_error;          // the last attempt's error; empty when it succeeded
  uint64_t fetches_ok = 0, fetches_failed = 0;
  std::string currency;
};

class PriceFeed {
 public:
  PriceFeed() = default;
  ~PriceFeed();
  PriceFeed(const PriceFeed&) = delete;
  PriceFeed& operator=(const PriceFeed&) = delete;

  // Starts (or, on SIGHUP, restarts) with a source. A changed URL or path
  // fetches at once; the last price is kept until the new source answers.
  void configure(const conf::PriceSource& cfg);
  void stop();
  PriceStatus status() const;

 private:
  void run();
  void fetch_once(const conf::PriceSource& cfg);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  conf::PriceSource cfg_;
  bool changed_ = false;
  std::atomic<bool> stopping_{false};
  PriceStatus status_;
  std::thread thread_;
};

}  // namespace hashgate
