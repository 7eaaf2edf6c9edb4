#include "proxy/node_rpc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "protocol/stratum_codec.h"  // ignore_error

namespace hashgate {
namespace {

constexpr size_t kMaxReply = 1 << 16;  // a few hundred bytes are expected

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), int(s.size()));
  out.resize(size_t(n));
  return out;
}

// One request/response exchange with timeouts; false with `error`.
bool exchange(const conf::Endpoint& ep, const std::string& request, double timeout, std::string& reply,
              std::string& error) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res); rc != 0) {
    error = std::string("resolve: ") + gai_strerror(rc);
    return false;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int timeout_ms = int(timeout * 1000);
  auto wait = [&](short events) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    return rc > 0;
  };
  bool ok = false;
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) {
    error = std::string("connect: ") + std::strerror(errno);
  } else if (rc != 0 && !wait(POLLOUT)) {
    error = "connect: timed out";
  } else {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) {
      error = std::string("connect: ") + std::strerror(soerr);
    } else {
      size_t sent = 0;
      while (sent < request.size()) {
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
          sent += size_t(n);
        } else if (n < 0 && errno == EAGAIN && wait(POLLOUT)) {
          continue;
        } else {
          break;
        }
      }
      if (sent < request.size()) error = "send failed";
      char buf[4096];
      while (error.empty()) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
          reply.append(buf, size_t(n));
          if (reply.size() > kMaxReply) error = "reply too large";
        } else if (n == 0) {
          ok = true;
          break;
        } else if (errno == EAGAIN && wait(POLLIN)) {
          continue;
        } else {
          error = errno == EAGAIN ? "read: timed out" : std::string("read: ") + std::strerror(errno);
        }
      }
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::string node_rpc_request(const conf::NodeRpc& cfg, std::string_view credentials, std::string_view method) {
  std::string body = "{\"jsonrpc\":\"1.0\",\"id\":\"hashgate\",\"method\":\"";
  body += method;
  body += "\",\"params\":[]}";
  std::string r = "POST / HTTP/1.1\r\nHost: " + cfg.endpoint.to_string() + "\r\n";
  r += "Authorization: Basic " + base64(credentials) + "\r\n";
  r += "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\n\r\n";
  return r + body;
}

std::optional<std::string> node_rpc_result(std::string_view http, std::string& error) {
  auto eol = http.find("\r\n");
  auto head_end = http.find("\r\n\r\n");
  if (http.substr(0, 5) != "HTTP/" || eol == std::string_view::npos || head_end == std::string_view::npos) {
    error = "not an HTTP response";
    return std::nullopt;
  }
  const std::string_view status_line = http.substr(0, eol);
  auto sp = status_line.find(' ');
  const int status = sp == std::string_view::npos ? 0 : std::atoi(std::string(status_line.substr(sp + 1, 3)).c_str());
  const std::string_view body = http.substr(head_end + 4);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (body.empty() || parser.parse(body.data(), body.size()).get(doc)) {
    // 401 comes with an empty body: wrong user, password or cookie.
    error = "HTTP " + std::to_string(status) + (status == 401 ? " (credentials refused)" : " without a JSON-RPC reply");
    return std::nullopt;
  }
  simdjson::dom::element err;
  if (!doc["error"].get(err) && !err.is_null()) {
    std::string_view msg = "?";
    int64_t code = 0;
    ignore_error(err["message"].get(msg));
    ignore_error(err["code"].get(code));
    error = "RPC error " + std::to_string(code) + ": " + std::string(msg.substr(0, 200));
    return std::nullopt;
  }
  simdjson::dom::element result;
  if (doc["result"].get(result)) {
    error = "HTTP " + std::to_string(status) + ": reply without result";
    return std::nullopt;
  }
  return simdjson::minify(result);
}

NodePoller::NodePoller(conf::NodeRpc cfg) : shared_(std::make_shared<Shared>()) { shared_->cfg = std::move(cfg); }

NodePoller::~NodePoller() {
  {
    std::lock_guard<std::mutex> g(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
}

void NodePoller::start() {
  if (started_) return;
  started_ = true;
  std::thread([s = shared_] { run(s); }).detach();
}

NodeState NodePoller::state() const {
  std::lock_guard<std::mutex> g(shared_->mu);
  return shared_->state;
}

std::optional<std::string> NodePoller::call(const conf::NodeRpc& cfg, std::string_view method, std::string& error) {
  // The cookie changes whenever the node restarts: read it for every call.
  std::string cred = cfg.user + ":" + cfg.password;
  if (!cfg.cookie_file.empty()) {
    std::ifstream in(cfg.cookie_file);
    if (!in || !std::getline(in, cred) || cred.find(':') == std::string::npos) {
      error = "cannot read cookie_file " + cfg.cookie_file;
      return std::nullopt;
    }
  }
  std::string reply;
  if (!exchange(cfg.endpoint, node_rpc_request(cfg, cred, method), cfg.timeout_seconds, reply, error))
    return std::nullopt;
  return node_rpc_result(reply, error);
}

void NodePoller::poll_once(const conf::NodeRpc& cfg, NodeState& next) {
  std::string error;
  // The hash is read before and after the height: equal, the pair belongs together.
  auto before = call(cfg, "getbestblockhash", error);
  auto count = before ? call(cfg, "getblockcount", error) : std::nullopt;
  auto after = count ? call(cfg, "getbestblockhash", error) : std::nullopt;
  if (!after) {
    next.up = false;
    next.error = error;
    return;
  }
  if (*before != *after) return;  // a block arrived in between: the next poll
  Hash256 best{};
  const std::string& h = *after;
  uint64_t height = 0;
  simdjson::dom::parser parser;
  if (h.size() != 66 || !hex_decode(std::string_view(h).substr(1, 64), best) ||
      parser.parse(*count).get_uint64().get(height) || height > 0xffffffffu) {
    next.up = false;
    next.error = "unexpected reply: " + h.substr(0, 80) + " / " + count->substr(0, 20);
    return;
  }
  next.up = true;
  next.answered = true;
  next.error.clear();
  next.height = uint32_t(height);
  next.best = best;
}

void NodePoller::run(std::shared_ptr<Shared> s) {
  std::unique_lock<std::mutex> lk(s->mu);
  while (!s->stop) {
    NodeState next = s->state;
    lk.unlock();
    poll_once(s->cfg, next);
    ++next.polls;
    lk.lock();
    s->state = next;
    s->cv.wait_for(lk, std::chrono::duration<double>(s->cfg.poll_seconds), [&] { return s->stop; });
  }
}

}  // namespace hashgate
