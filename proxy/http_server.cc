#include "proxy/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstring>

#include "proxy/clock.h"

namespace hashgate {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

}  // namespace

namespace {

// RFC 9110 token characters (methods, header names).
bool is_tchar(char c) {
  // strchr finds the terminator for '\0': a NUL must not pass as a token character.
  return std::isalnum(static_cast<unsigned char>(c)) || (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}
bool is_token(std::string_view v) { return !v.empty() && std::all_of(v.begin(), v.end(), is_tchar); }
// Bytes a request target may hold: visible ASCII (no space, no control, no DEL).
bool is_target(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}
// A field value: no control characters but tab (a bare CR or a NUL is refused, RFC 9112 5.5).
bool is_field_value(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f); });
}

// Parses a complete request head (through its blank line); false when it
// is not an HTTP/1.x request.
bool parse_head(std::string_view head, HttpRequest& r) {
  size_t eol = head.find('\n');
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) return false;
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(method) || target.empty() || target.front() != '/' || !is_target(target)) return false;
  r.method.assign(method);
  size_t q = target.find('?');
  r.path.assign(target.substr(0, q));
  if (q != std::string_view::npos) r.query.assign(target.substr(q + 1));
  while (eol != std::string_view::npos) {
    size_t next = head.find('\n', eol + 1);
    std::string_view h = head.substr(eol + 1, next == std::string_view::npos ? std::string_view::npos : next - eol - 1);
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    eol = next;
    if (h.empty()) break;
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return false;
    // No space before the colon (RFC 9112 5.1: a request smuggling vector).
    const std::string_view name = h.substr(0, colon), value = trim(h.substr(colon + 1));
    if (!is_token(name) || !is_field_value(value)) return false;
    r.headers.emplace_back(std::string(name), std::string(value));
  }
  return true;
}

}  // namespace

HttpHead http_read_head(std::string_view in, size_t max_head_bytes, HttpRequest& req) {
  HttpHead h;
  size_t end = in.find("\r\n\r\n"), sep = 4;
  if (size_t lf = in.find("\n\n"); lf < end) end = lf, sep = 2;
  if (end == std::string_view::npos) {
    h.status = in.size() > max_head_bytes ? HttpHead::Status::kTooLarge : HttpHead::Status::kNeedMore;
    return h;
  }
  if (end + sep > max_head_bytes) {
    h.status = HttpHead::Status::kTooLarge;
    return h;
  }
  if (!parse_head(in.substr(0, end + sep), req)) {
    h.status = HttpHead::Status::kBad;
    return h;
  }
  h.status = HttpHead::Status::kDone;
  h.length = end + sep;
  return h;
}

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return &v;
  return nullptr;
}

std::optional<std::string> HttpRequest::query_value(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) return std::string(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

const char* http_status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

std::string http_serialize(const HttpRequest& req, const HttpResponse& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + http_status_text(r.status) +
                    "\r\nContent-Type: " + r.type + "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nCache-Control: no-store\r\n" + r.extra_headers + "Connection: close\r\n\r\n";
  // HEAD: the same headers (Content-Length included), no body.
  if (req.method != "HEAD") out += r.body;
  return out;
}

HttpServer::HttpServer(HttpServerOptions o, std::function<std::optional<HttpResponse>(const HttpRequest&)> fast,
                       Handler slow)
    : o_(std::move(o)), fast_(std::move(fast)), slow_(std::move(slow)) {}

HttpServer::~HttpServer() { stop(); }

HttpServer::Stats HttpServer::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  return stats_;
}

bool HttpServer::start(std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo* res = nullptr;
  if (getaddrinfo(o_.host.c_str(), std::to_string(o_.port).c_str(), &hints, &res) != 0 || !res) {
    error = "admin server: bad address " + o_.host;
    return false;
  }
  listen_fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = listen_fd_ >= 0 && bind(listen_fd_, res->ai_addr, res->ai_addrlen) == 0 && listen(listen_fd_, 128) == 0;
  freeaddrinfo(res);
  if (!ok) {
    error = std::string("admin server cannot listen on ") + o_.host + ":" + std::to_string(o_.port) + ": " +
            std::strerror(errno);
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  set_nonblocking(listen_fd_);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    error = "admin server: pipe: " + std::string(std::strerror(errno));
    return false;
  }
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  io_ = std::thread([this] { run(); });
  for (unsigned i = 0; i < std::max(1u, o_.workers); ++i) workers_.emplace_back([this] { worker(); });
  return true;
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  wake();
  cv_.notify_all();
  if (io_.joinable()) io_.join();
  for (auto& t : workers_) t.join();
  workers_.clear();
  for (auto& [id, c] : conns_) close(c.fd);
  conns_.clear();
  for (int fd : {listen_fd_, wake_[0], wake_[1], reserve_fd_})
    if (fd >= 0) close(fd);
}

void HttpServer::wake() {
  if (wake_[1] >= 0) {
    char b = 1;
    [[maybe_unused]] ssize_t n = write(wake_[1], &b, 1);
  }
}

void HttpServer::worker() {
  for (;;) {
    std::pair<uint64_t, HttpRequest> job;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait(g, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::string bytes = http_serialize(job.second, slow_(job.second));
    {
      std::lock_guard<std::mutex> g(mu_);
      done_.emplace_back(job.first, std::move(bytes));
    }
    wake();
  }
}

void HttpServer::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  close(it->second.fd);
  // The reserved descriptor is taken back once the connection that used it is gone.
  if (it->second.reserve && reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (auto pc = per_client_.find(it->second.peer); pc != per_client_.end() && --pc->second == 0) per_client_.erase(pc);
  conns_.erase(it);
}

void HttpServer::evict_oldest(const std::string* peer) {
  // The oldest connection still sending its request head (from `peer`, if
  // given): it has had the longest to say something and has not.
  const Conn* victim = nullptr;
  for (const auto& [id, c] : conns_)
    if (!c.head_done && (!peer || c.peer == *peer) && (!victim || c.opened < victim->opened)) victim = &c;
  if (!victim) return;
  close_conn(victim->id);
  std::lock_guard<std::mutex> g(mu_);
  ++stats_.evicted;
}

void HttpServer::accept_all(double now) {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    bool reserve = false;
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
      {
        std::lock_guard<std::mutex> g(mu_);
        ++stats_.fd_limit;
      }
      if (reserve_fd_ < 0) evict_oldest(nullptr);  // make room with a connection of our own
      if (reserve_fd_ >= 0) {
        close(reserve_fd_);
        reserve_fd_ = -1;
        reserve = true;
      }
      len = sizeof ss;
      fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && reserve) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) accept_paused_until_ = now + 0.1;  // no busy loop on a full table
      return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
    if (ss.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
    std::string peer = host;
    if (per_client_[peer] >= o_.max_per_client) evict_oldest(&peer);
    if (conns_.size() >= o_.max_connections) evict_oldest(nullptr);
    Conn c;
    c.id = next_id_++;
    c.fd = fd;
    c.peer = peer;
    c.opened = now;
    c.deadline = now + o_.header_timeout_seconds;
    c.reserve = reserve;
    ++per_client_[peer];
    conns_.emplace(c.id, std::move(c));
  }
}

void HttpServer::answer(Conn& c, std::string bytes, double now) {
  c.head_done = true;
  c.out = std::move(bytes);
  c.sent = 0;
  c.deadline = now + o_.write_timeout_seconds;
  write_conn(c);
}

void HttpServer::read_conn(Conn& c, double now) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return close_conn(c.id);
    if (n < 0) break;
    if (c.head_done) continue;  // a body, or bytes after the request: not read
    c.in.append(buf, size_t(n));
    if (c.in.size() > o_.max_header_bytes) break;
  }
  if (c.head_done) return;
  HttpRequest req;
  const HttpHead head = http_read_head(c.in, o_.max_header_bytes, req);
  if (head.status == HttpHead::Status::kNeedMore) return;  // more to come (before the deadline)
  req.peer = c.peer;
  if (head.status == HttpHead::Status::kTooLarge) {
    req = HttpRequest{};
    req.method = "GET";
    return answer(c, http_serialize(req, {431, "text/plain", "request head too large\n", ""}), now);
  }
  if (head.status == HttpHead::Status::kBad) {
    req = HttpRequest{};
    req.method = "GET";
    return answer(c, http_serialize(req, {400, "text/plain", "not an HTTP/1.x request\n", ""}), now);
  }
  c.in.clear();
  {
    std::lock_guard<std::mutex> g(mu_);
    ++stats_.requests;
  }
  if (auto r = fast_(req)) return answer(c, http_serialize(req, *r), now);
  c.head_done = true;
  c.deadline = now + o_.write_timeout_seconds + 30;  // the worker's time, then the write's
  {
    std::lock_guard<std::mutex> g(mu_);
    if (queue_.size() >= o_.max_queued) {
      ++stats_.overloaded;
    } else {
      queue_.emplace_back(c.id, std::move(req));
      cv_.notify_one();
      return;
    }
  }
  answer(c, http_serialize(req, {503, "text/plain", "admin server busy\n", "Retry-After: 1\r\n"}), now);
}

void HttpServer::write_conn(Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return close_conn(c.id);
    c.sent += size_t(n);
  }
  shutdown(c.fd, SHUT_WR);
  close_conn(c.id);
}

void HttpServer::run() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  while (!stopping_) {
    fds.clear();
    ids.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    fds.push_back({listen_fd_, short(mono_now() >= accept_paused_until_ ? POLLIN : 0), 0});
    for (auto& [id, c] : conns_) {
      const bool writing = c.sent < c.out.size();
      if (c.head_done && !writing) {
        fds.push_back({c.fd, 0, 0});  // with a worker: only hang-ups matter
      } else {
        fds.push_back({c.fd, short(writing ? POLLOUT : POLLIN), 0});
      }
      ids.push_back(id);
    }
    poll(fds.data(), nfds_t(fds.size()), 250);
    const double now = mono_now();
    if (fds[0].revents) {
      char b[64];
      while (read(wake_[0], b, sizeof b) > 0) {
      }
    }
    std::vector<std::pair<uint64_t, std::string>> done;
    {
      std::lock_guard<std::mutex> g(mu_);
      done.swap(done_);
    }
    for (auto& [id, bytes] : done)
      if (auto it = conns_.find(id); it != conns_.end()) answer(it->second, std::move(bytes), now);
    for (size_t i = 2; i < fds.size(); ++i) {
      auto it = conns_.find(ids[i - 2]);
      if (it == conns_.end() || !fds[i].revents) continue;
      if (fds[i].revents & POLLOUT) {
        write_conn(it->second);
      } else if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        read_conn(it->second, now);
      }
    }
    if (fds[1].revents & POLLIN) accept_all(now);
    std::vector<uint64_t> expired;
    for (auto& [id, c] : conns_)
      if (now >= c.deadline) expired.push_back(id);
    if (!expired.empty()) {
      std::lock_guard<std::mutex> g(mu_);
      stats_.header_timeouts += expired.size();
    }
    for (uint64_t id : expired) close_conn(id);
  }
}

}  // namespace hashgate
