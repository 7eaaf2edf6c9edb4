#include "proxy/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "proxy/log.h"
#include "proxy/sockaddr.h"

namespace hashgate {
namespace {

// Pending connections the kernel queues per listener (capped by
// net.core.somaxconn): a farm of thousands reconnecting at once must not
// overflow the accept queue into SYN retransmits (1,024 did at 5,000).
constexpr int kBacklog = 65535;
// Unsent bytes the kernel holds for a miner (TCP_NOTSENT_LOWAT).
constexpr int kMinerUnsentBytes = 16384;

// One read buffer for the whole loop: sessions copy what they read into
// their framer at once, so idle miners hold no read buffer of their own.
char g_read_buf[65536];

}  // namespace

Listeners::Listeners(uv_loop_t* loop, MinerHost& host, Edge& edge, Hooks hooks)
    : loop_(loop), host_(host), edge_(edge), hooks_(std::move(hooks)) {}

int Listeners::start(const std::vector<conf::Listener>& cfg, std::string& error) {
  for (const conf::Listener& l : cfg) {
    auto* ls = new ListenerState;
    ls->owner = this;
    ls->cfg = &l;
    uv_tcp_t* tcp = &ls->tcp;
    uv_tcp_init(loop_, tcp);
    tcp->data = ls;
    listeners_.push_back(ls);
    ls->proxy = ProxyEdge(l);
    if (l.tls) {
      ls->tls = TlsContext::server(l.tls->cert, l.tls->key, error);
      if (!ls->tls) {
        error = "listener " + l.name + ": " + error;
        return UV_EINVAL;
      }
    }
    sockaddr_storage addr{};
    int rc = uv_ip4_addr(l.bind.host.c_str(), l.bind.port, reinterpret_cast<sockaddr_in*>(&addr));
    if (rc != 0) rc = uv_ip6_addr(l.bind.host.c_str(), l.bind.port, reinterpret_cast<sockaddr_in6*>(&addr));
    if (rc == 0) rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), kBacklog, on_connection);
    if (rc != 0) {
      error = "listener " + l.name + " cannot listen on " + l.bind.to_string() + ": " + uv_strerror(rc);
      return rc;
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
    int port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                 : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    log::info("listening").kv("listener", l.name).kv("bind", l.bind.to_string()).kv("port", port)
        .kv("tls", l.tls.has_value()).kv("proxy_protocol", conf::proxy_protocol_name(l.proxy_protocol));
    if (!l.tls && !board_endpoint_) {
      // Local boards mine through the first plain listener, over loopback.
      conf::Endpoint ep{l.bind.host, uint16_t(port)};
      if (ep.host == "0.0.0.0" || ep.host.empty()) ep.host = "127.0.0.1";
      if (ep.host == "::") ep.host = "::1";
      board_endpoint_ = ep;
    }
  }
  return 0;
}

void Listeners::rebind_config(const std::vector<conf::Listener>& cfg) {
  // The listeners are the same (a reload keeps them), in the same order.
  for (size_t i = 0; i < listeners_.size() && i < cfg.size(); ++i) listeners_[i]->cfg = &cfg[i];
}

void Listeners::close() {
  for (ListenerState* l : listeners_)
    uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp),
             [](uv_handle_t* h) { delete static_cast<ListenerState*>(h->data); });
  listeners_.clear();
}

void Listeners::on_connection(uv_stream_t* server, int status) {
  auto* ls = static_cast<ListenerState*>(server->data);
  if (status < 0) {
    log::warn("accept_failed").kv("listener", ls->cfg->name).kv("error", uv_strerror(status));
    return;
  }
  static_cast<Listeners*>(ls->owner)->accept_miner(ls);
}

void Listeners::accept_miner(ListenerState* ls) {
  auto* server = reinterpret_cast<uv_stream_t*>(&ls->tcp);
  auto* m = new Miner;
  m->host = &host_;
  uv_tcp_init(loop_, &m->tcp);
  m->tcp.data = m;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&m->tcp)) != 0)
    return uv_close(reinterpret_cast<uv_handle_t*>(&m->tcp), free_miner);
  if (int fd = -1; uv_fileno(reinterpret_cast<uv_handle_t*>(&m->tcp), &fd) == 0 && fd_budget_.in_reserve(fd)) {
    edge_.count_rejected("fd_limit");  // the rest is for pools, ledger, admin
    log::warn("connection_refused_fd_limit").kv("listener", ls->cfg->name).kv("open_files_at_least", uint64_t(fd) + 1)
        .kv("max_open_files", fd_budget_.limit()).kv("reserved", fd_budget_.reserve());
    return uv_close(reinterpret_cast<uv_handle_t*>(&m->tcp), free_miner);
  }
  if (!hooks_.accepting()) {
    edge_.count_closed("draining");
    return uv_close(reinterpret_cast<uv_handle_t*>(&m->tcp), free_miner);
  }
  m->addr = peer_address(&m->tcp);
  // A trusted balancer's connection is admitted by the address its PROXY
  // header names (Edge::read), never by the balancer's own: limits and bans
  // on that one would hit every miner behind it.
  const bool via_proxy = ls->proxy.expects_header(m->addr);
  if (!via_proxy && !edge_.admit(m->addr, hooks_.now()))
    return uv_close(reinterpret_cast<uv_handle_t*>(&m->tcp), free_miner);
  m->counted = !via_proxy;
  if (via_proxy) m->edge = Miner::Edge::kProxy;
  m->listener = ls;
  uv_tcp_nodelay(&m->tcp, 1);
  // Bytes a miner has not read stay in hashgate's queue, where
  // limits.max_pending_output_bytes sees them, not in the kernel: without
  // this the socket's send buffer grows to tcp_wmem's maximum (4 MiB)
  // before a write is refused.
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&m->tcp), &fd) == 0) {
    int lowat = kMinerUnsentBytes;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
  }
  edge_.count_accepted();
  m->peer = peer_name(&m->tcp);
  hooks_.on_miner(m);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&m->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buf, sizeof g_read_buf); },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* m = static_cast<Miner*>(s->data);
        if (n > 0) {
          m->host->miner_bytes(m, std::string_view(buf->base, size_t(n)));
        } else if (n < 0) {
          m->host->close_miner(m, n == UV_EOF ? "miner closed the connection" : uv_strerror(int(n)),
                               n == UV_EOF ? "miner_closed" : "io_error");
        }
      });
}

}  // namespace hashgate
