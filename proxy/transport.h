// A byte stream to a pool: plain TCP, TLS over TCP, or the in-process test pool. The
// owner gets its callbacks on the loop thread. A transport is closed with
// close(); it frees itself once libuv has released its handles, so the
// owner may forget it right after calling close().
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <string_view>

#include "conf/config.h"

namespace hashgate {

class TestPool;
class TlsContext;

class TransportOwner {
 public:
  virtual ~TransportOwner() = default;
  virtual void on_connected() = 0;
  virtual void on_data(std::string_view bytes) = 0;
  // The stream ended or failed; no callback follows.
  virtual void on_disconnected(const std::string& reason) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void connect() = 0;
  virtual void write(std::string bytes) = 0;
  // Stops every callback; frees itself when its handles are closed.
  virtual void close() = 0;
  // In-process transports deliver what their peer produced on its own
  // (the test pool's new jobs); sockets need no poll.
  virtual void poll() {}
};

// With `tls`, the stream is TLS and on_connected() waits for the handshake;
// `server_name` (SNI and the checked name) defaults to the endpoint's host.
Transport* make_tcp_transport(uv_loop_t* loop, TransportOwner* owner, const conf::Endpoint& endpoint,
                              std::shared_ptr<TlsContext> tls = nullptr, const std::string& server_name = {});
Transport* make_test_transport(uv_loop_t* loop, TransportOwner* owner, TestPool& pool);

}  // namespace hashgate
