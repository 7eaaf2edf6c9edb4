#include "proxy/transport.h"

#include <memory>

#include "protocol/test_pool.h"
#include "proxy/tls.h"

namespace hashgate {
namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(uv_loop_t* loop, TransportOwner* owner, const conf::Endpoint& ep, std::shared_ptr<TlsContext> tls,
               std::string server_name)
      : loop_(loop), owner_(owner), endpoint_(ep), tls_ctx_(std::move(tls)), server_name_(std::move(server_name)) {
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    resolve_.data = this;
    connect_.data = this;
  }

  void connect() override {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    resolving_ = true;
    int rc = uv_getaddrinfo(loop_, &resolve_, on_resolved, endpoint_.host.c_str(),
                            std::to_string(endpoint_.port).c_str(), &hints);
    if (rc < 0) {
      resolving_ = false;
      fail(std::string("cannot resolve ") + endpoint_.host + ": " + uv_strerror(rc));
    }
  }

  void write(std::string bytes) override {
    if (!connected_ || bytes.empty()) return;
    if (tls_) {
      if (!tls_->send(bytes)) return fail("TLS with " + endpoint_.to_string() + " failed: " + tls_->error());
      return flush_tls();
    }
    send_raw(std::move(bytes));
  }

 private:
  void send_raw(std::string bytes) {
    auto* w = new WriteReq{};
    w->data = std::move(bytes);
    uv_buf_t buf = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    w->req.data = this;
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, on_written);
    if (rc < 0) {
      delete w;
      fail(std::string("write failed: ") + uv_strerror(rc));
    }
  }

  void flush_tls() {
    std::string out;
    tls_->take_output(out);
    if (!out.empty()) send_raw(std::move(out));
  }

 public:
  void close() override {
    owner_ = nullptr;
    if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_));
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_)))
      uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
  }

 private:
  // The stream is over: tell the owner once, and close (the owner forgets
  // the transport on on_disconnected; the handle frees it).
  void fail(const std::string& reason) {
    connected_ = false;
    TransportOwner* o = owner_;
    close();
    if (o) o->on_disconnected(reason);
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* self = static_cast<TcpTransport*>(req->data);
    self->resolving_ = false;
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, uv_freeaddrinfo);
    if (!self->owner_) return self->maybe_free();
    if (status < 0 || !res)
      return self->fail("cannot resolve " + self->endpoint_.host + ": " + uv_strerror(status));
    int rc = uv_tcp_connect(&self->connect_, &self->tcp_, res->ai_addr, on_connect);
    if (rc < 0) return self->fail(std::string("connect failed: ") + uv_strerror(rc));
    self->connecting_ = true;
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* self = static_cast<TcpTransport*>(req->data);
    self->connecting_ = false;
    if (!self->owner_) return;
    if (status < 0) return self->fail(std::string("connect to ") + self->endpoint_.to_string() + " failed: " + uv_strerror(status));
    uv_tcp_nodelay(&self->tcp_, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), on_alloc, on_read);
    if (self->tls_ctx_) {
      // The owner hears "connected" once the handshake (and the pin check) passed.
      self->tls_ = std::make_unique<TlsChannel>(self->tls_ctx_, self->server_name_);
      self->tls_->start();
      self->flush_tls();
      return;
    }
    self->connected_ = true;
    self->owner_->on_connected();
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<TcpTransport*>(h->data);
    *buf = uv_buf_init(self->read_buf_, sizeof self->read_buf_);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* self = static_cast<TcpTransport*>(s->data);
    if (n > 0 && self->owner_ && self->tls_) return self->tls_read(std::string_view(buf->base, size_t(n)));
    if (n > 0 && self->owner_) self->owner_->on_data(std::string_view(buf->base, size_t(n)));
    if (n < 0 && self->tls_ && !self->tls_->established())
      return self->fail("TLS handshake with " + self->endpoint_.to_string() +
                        " failed: the pool closed the connection during the handshake");
    if (n < 0) self->fail(n == UV_EOF ? "pool closed the connection" : std::string("read failed: ") + uv_strerror(int(n)));
  }

  void tls_read(std::string_view cipher) {
    std::string plain;
    bool ok = tls_->receive(cipher, plain);
    flush_tls();  // handshake replies, alerts
    if (!ok)
      return fail((tls_->established() ? "TLS with " : "TLS handshake with ") + endpoint_.to_string() +
                  " failed: " + tls_->error());
    if (tls_->just_established()) {
      connected_ = true;
      if (owner_) owner_->on_connected();
    }
    if (!plain.empty() && owner_) owner_->on_data(plain);
  }

  static void on_written(uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* self = static_cast<TcpTransport*>(req->data);
    delete w;
    if (status < 0 && status != UV_ECANCELED) self->fail(std::string("write failed: ") + uv_strerror(status));
  }

  static void on_closed(uv_handle_t* h) {
    auto* self = static_cast<TcpTransport*>(h->data);
    self->closed_ = true;
    self->maybe_free();
  }

  // The getaddrinfo request may still be out when the handle closes.
  void maybe_free() {
    if (closed_ && !resolving_) delete this;
  }

  uv_loop_t* loop_;
  TransportOwner* owner_;
  conf::Endpoint endpoint_;
  std::shared_ptr<TlsContext> tls_ctx_;
  std::string server_name_;
  std::unique_ptr<TlsChannel> tls_;
  uv_tcp_t tcp_;
  uv_getaddrinfo_t resolve_;
  uv_connect_t connect_;
  bool resolving_ = false;
  bool connecting_ = false;
  bool connected_ = false;
  bool closed_ = false;
  char read_buf_[16384];
};

// Talks to an in-process TestPool connection. Replies are delivered on the
// next loop iteration (a zero timer), never from inside write(), so the
// owner is never re-entered.
class TestTransport final : public Transport {
 public:
  TestTransport(uv_loop_t* loop, TransportOwner* owner, TestPool& pool) : loop_(loop), owner_(owner), pool_(pool) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
  }

  void connect() override {
    conn_ = pool_.connect();
    connected_pending_ = true;
    schedule();
  }

  void write(std::string bytes) override {
    if (!conn_) return;
    conn_->receive(bytes, double(uv_now(loop_)) / 1000.0);
    schedule();
  }

  void close() override {
    owner_ = nullptr;
    conn_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) { delete static_cast<TestTransport*>(h->data); });
  }

  // Called by the gateway after the pool's tick produced jobs.
  void poll() override {
    if (conn_ && !conn_->output().empty()) schedule();
  }

 private:
  void schedule() { uv_timer_start(&timer_, on_timer, 0, 0); }

  static void on_timer(uv_timer_t* t) {
    auto* self = static_cast<TestTransport*>(t->data);
    if (!self->owner_) return;
    if (self->connected_pending_) {
      self->connected_pending_ = false;
      self->owner_->on_connected();
      if (!self->owner_) return;
    }
    if (self->conn_ && !self->conn_->output().empty()) {
      std::string data;
      data.swap(self->conn_->output());
      self->owner_->on_data(data);
    }
  }

  uv_loop_t* loop_;
  TransportOwner* owner_;
  TestPool& pool_;
  std::unique_ptr<TestPool::Connection> conn_;
  uv_timer_t timer_;
  bool connected_pending_ = false;
};

}  // namespace

Transport* make_tcp_transport(uv_loop_t* loop, TransportOwner* owner, const conf::Endpoint& endpoint,
                              std::shared_ptr<TlsContext> tls, const std::string& server_name) {
  return new TcpTransport(loop, owner, endpoint, std::move(tls), server_name.empty() ? endpoint.host : server_name);
}

Transport* make_test_transport(uv_loop_t* loop, TransportOwner* owner, TestPool& pool) {
  return new TestTransport(loop, owner, pool);
}

}  // namespace hashgate
