// The Stratum listeners: bound at start, closed at the stop, and the accept
// of each connection up to its first byte: the descriptor reserve (a miner
// never takes the last descriptors, proxy/fd_budget.h), the socket's options, the edge's
// admission of its address (or of the address a trusted balancer's PROXY
// header will name), then `on_miner` gives it a session and the reads start.
#pragma once

#include <uv.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/edge.h"
#include "proxy/fd_budget.h"
#include "proxy/miner_conn.h"

namespace hashgate {

class Listeners {
 public:
  struct Hooks {
    std::function<bool()> accepting;       // false while stopping: a new connection is closed at once
    std::function<void(Miner*)> on_miner;  // admitted: give it a session and register it
    std::function<double()> now;           // the loop's time
  };
  Listeners(uv_loop_t* loop, MinerHost& host, Edge& edge, Hooks hooks);
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;

  // Binds every listener of `cfg` (TLS contexts loaded); 0, or a negative
  // libuv error with `error` naming the listener.
  int start(const std::vector<conf::Listener>& cfg, std::string& error);
  // Where local boards connect: the first plain listener, over loopback.
  const std::optional<conf::Endpoint>& board_endpoint() const { return board_endpoint_; }
  // A reload keeps the listeners; their config objects are the new config's.
  void rebind_config(const std::vector<conf::Listener>& cfg);
  // Stops accepting (the stop): every listener's handle is closed.
  void close();

 private:
  static void on_connection(uv_stream_t* server, int status);
  void accept_miner(ListenerState* ls);

  uv_loop_t* loop_;
  MinerHost& host_;
  Edge& edge_;
  Hooks hooks_;
  std::vector<ListenerState*> listeners_;
  std::optional<conf::Endpoint> board_endpoint_;
  FdBudget fd_budget_ = FdBudget::from_rlimit();  // miners stop short of the descriptor limit
};

}  // namespace hashgate
