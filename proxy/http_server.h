// A small HTTP/1.x server for the admin port that no client can starve.
//
// One I/O thread owns every socket (poll, non-blocking): it reads request
// heads with a short deadline and a size cap, answers the cheap requests
// (health) itself at once, and hands the others to a few worker threads,
// whose answers it writes back. An idle or slow client holds only a file
// descriptor, never a thread; past the per-client or total limit the oldest
// connection that has not finished its request head is closed to make room.
// At the process's file descriptor limit a reserved descriptor is given up
// so the admin port still answers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hashgate {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', raw
  std::string peer;   // the client's address, without the port
  std::vector<std::pair<std::string, std::string>> headers;
  // The first header of that name (case-insensitive), or null.
  const std::string* header(std::string_view name) const;
  // A query parameter's raw value, or nullopt.
  std::optional<std::string> query_value(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string type = "text/plain";
  std::string body;
  std::string extra_headers;  // whole lines, each ending in \r\n
};

// A request head read from the start of a connection's bytes (sans-I/O: the
// fuzz target tests/fuzz/fuzz_http_head.cc drives it). kDone: `length` bytes
// (through the blank line, at most max_head_bytes) were parsed into the
// request; kNeedMore: no blank line yet and no more than max_head_bytes;
// kTooLarge: none within max_head_bytes; kBad: not an HTTP/1.x request
// (request line, token method and header names, a target of visible ASCII
// starting with '/', no control character but tab in a header value).
struct HttpHead {
  enum class Status { kNeedMore, kDone, kTooLarge, kBad } status = Status::kNeedMore;
  size_t length = 0;
};
HttpHead http_read_head(std::string_view in, size_t max_head_bytes, HttpRequest& req);

// The wire form; a HEAD request's answer has the headers only.
std::string http_serialize(const HttpRequest& req, const HttpResponse& r);
const char* http_status_text(int status);

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  unsigned workers = 2;
  double header_timeout_seconds = 3;   // from accept to the end of the request head
  double write_timeout_seconds = 10;   // to write an answer out
  size_t max_header_bytes = 8192;
  unsigned max_connections = 256;
  unsigned max_per_client = 32;
  size_t max_queued = 64;              // requests waiting for a worker; more get 503
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // `fast` runs on the I/O thread and returns nullopt for requests it does
  // not answer (it must never block); `slow` runs on a worker.
  HttpServer(HttpServerOptions o, std::function<std::optional<HttpResponse>(const HttpRequest&)> fast, Handler slow);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  bool start(std::string& error);
  void stop();
  int port() const { return port_; }

  struct Stats {
    uint64_t requests = 0, evicted = 0, header_timeouts = 0, fd_limit = 0, overloaded = 0;
  };
  Stats stats() const;

 private:
  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    std::string peer;
    std::string in;
    std::string out;
    size_t sent = 0;
    double deadline = 0;
    double opened = 0;
    bool head_done = false;  // the request is read (with a worker, or answered)
    bool reserve = false;    // took the reserved descriptor's place
  };
  void run();
  void accept_all(double now);
  void read_conn(Conn& c, double now);
  void write_conn(Conn& c);
  void answer(Conn& c, std::string bytes, double now);
  void close_conn(uint64_t id);
  void evict_oldest(const std::string* peer);
  void worker();
  void wake();

  HttpServerOptions o_;
  std::function<std::optional<HttpResponse>(const HttpRequest&)> fast_;
  Handler slow_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int reserve_fd_ = -1;
  double accept_paused_until_ = 0;  // out of descriptors with nothing to give up: accept later
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread io_;
  std::vector<std::thread> workers_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Conn> conns_;  // I/O thread only, by connection id (fds are reused)
  std::unordered_map<std::string, unsigned> per_client_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, HttpRequest>> queue_;  // for the workers, by connection id
  std::vector<std::pair<uint64_t, std::string>> done_;   // answers for the I/O thread
  Stats stats_;
};

}  // namespace hashgate
