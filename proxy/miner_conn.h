// A miner's connection: its socket, its edge state (PROXY header, sniffing,
// HTTP CONNECT), its TLS channel and its Stratum session (Miner), and the
// writer that owns every byte on its way out (MinerWriter): straight
// writes, queued ones, the limit on unread output, and the linger of a
// closed connection's last bytes.
//
// Ownership (libuv's rules): a Miner is allocated at accept and freed only in
// its handle's close callback; a queued write's chunks live in its request
// until the write callback; the loop's single read buffer is copied by the
// session's framer at once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "protocol/downstream_session.h"
#include "protocol/http_connect.h"
#include "proxy/guard.h"
#include "proxy/proxy_edge.h"
#include "proxy/tls.h"

namespace hashgate {

struct Miner;

// What a connection's owner does with it: its bytes, its end, and a peer
// that misbehaved. The libuv callbacks of a Miner call these.
class MinerHost {
 public:
  // Bytes read from the socket (edge, then TLS, then the session).
  virtual void miner_bytes(Miner* m, std::string_view bytes) = 0;
  // `reason_class` is the metrics label: miner_closed, io_error, ...
  virtual void close_miner(Miner* m, const std::string& reason, const char* reason_class) = 0;
  virtual void punish(const Address& a, Violation v) = 0;

 protected:
  ~MinerHost() = default;
};

// A Stratum listener (proxy/listener.h binds them).
struct ListenerState {
  uv_tcp_t tcp;
  void* owner = nullptr;  // the Listeners that bound it
  const conf::Listener* cfg = nullptr;
  std::shared_ptr<TlsContext> tls;
  ProxyEdge proxy;  // who must send a PROXY header here
};

// Members by size, largest first: 512 bytes, one of the allocator's size
// classes (a few bytes more would take 640).
struct Miner {
  uv_tcp_t tcp;
  MinerHost* host = nullptr;
  ListenerState* listener = nullptr;
  std::unique_ptr<DownstreamSession> session;
  std::unique_ptr<TlsChannel> tls;  // a TLS listener's miner
  std::unique_ptr<ConnectParser> connect;
  std::string peer;
  std::string edge_buf;
  // The ids of session->workers(), in the same order (authorize_miner keeps
  // them): a share names its worker by index, so no name is hashed per share.
  std::vector<uint32_t> worker_ids;
  std::optional<size_t> preferred_pool;  // routed by its CONNECT target
  // The miner's clock for subscribe and authorize: its connect, or the last
  // moment hashgate itself owed it an answer (no usable pool), whichever is
  // later: hashgate's own unavailability never counts against it.
  double connected_at = 0;
  double last_message_at = 0;
  double msg_tokens = 0;
  double msg_tokens_at = 0;
  double close_at = 0;  // after client.reconnect: closed then if still here
  // Waiting for its lost connection's subscription to be resumed.
  double held_until = 0;
  Bytes held_extranonce1;
  uint32_t held_pool = 0;
  uint32_t held_prefix = 0;
  uint32_t link_id = 0;  // 0: none (bound or waiting)
  uint32_t prefix = 0;
  // After mining.set_extranonce: whether the miner works in its new space
  // shows in its next shares. Bad ones (hashed as the new space says) count.
  uint32_t bad_after_move = 0;
  Address addr;
  // The edge: a trusted balancer's PROXY header, sniffing the first bytes, an
  // HTTP CONNECT, then Stratum (or TLS).
  enum class Edge : uint8_t { kProxy, kSniff, kConnect, kOpen } edge = Edge::kSniff;
  bool tunneled = false;
  bool counted = false;  // admitted by the guard: released on close
  bool abort_close = false;  // close at once, dropping unsent output
  bool has_prefix = false;
  bool closing = false;
  bool checking_move = false;
};

// Frees a Miner whose handle is closed: the close callback of every Miner.
void free_miner(uv_handle_t* h);

class MinerWriter {
 public:
  // `spares`: the sessions' shared buffers (written chunks' strings go back
  // there); `limits`: the live config's limits (max_pending_output_bytes).
  MinerWriter(SessionSpares& spares, const conf::Limits& limits) : spares_(spares), limits_(limits) {}
  MinerWriter(const MinerWriter&) = delete;
  MinerWriter& operator=(const MinerWriter&) = delete;

  // Writes `m`'s output: straight to the socket when nothing is queued,
  // what the socket does not take through libuv.
  void flush(Miner* m);
  // Queues `chunks` through libuv, the first `skip` bytes already sent. A
  // miner whose unread output passes the limit is punished and dropped.
  void queue_write(Miner* m, std::vector<OutChunk> chunks, size_t skip);
  // Bytes outside the session (the edge's HTTP answers).
  void write_raw(Miner* m, std::string bytes);
  // Ends a closed miner's socket: at once when `m->abort_close`, else after
  // its queued bytes are read (at most kLingerSeconds from `now`).
  void shut(Miner* m, double now);
  // Closes the miners whose queued bytes were not read within their linger time.
  void close_lingering(double now);
  bool lingering() const { return !lingering_.empty(); }
  // Written chunks' strings go back to the sessions' spares.
  void give_back(OutChunk& c) { spares_.give_string(std::move(c.owned)); }

 private:
  SessionSpares& spares_;
  const conf::Limits& limits_;
  std::vector<OutChunk> scratch_;  // flush(): the chunks tried at once, reused
  std::vector<uv_buf_t> bufs_;
  std::unordered_map<Miner*, double> lingering_;  // closed, bytes still queued: linger deadline
};

// After `written` bytes of `chunks` went out: the index of the first chunk
// not wholly sent, and how many of its bytes were.
std::pair<size_t, size_t> unsent_from(std::span<const OutChunk> chunks, size_t written);

}  // namespace hashgate
