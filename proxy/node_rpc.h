// A local Litecoin Core / Bitcoin Core node as the reference for the chain
// tip (integrity.node). Its JSON-RPC is polled on a thread of its own with
// blocking sockets and short timeouts, never on the loop; the loop reads the
// last result once a second. The node being down is a state, not an error
// of anything else.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "hashing/bytes.h"

namespace hashgate {

struct NodeState {
  bool up = false;
  bool answered = false;   // up at least once
  uint32_t height = 0;     // getblockcount
  Hash256 best{};          // getbestblockhash, display (RPC) order
  std::string error;       // why it is down
  uint64_t polls = 0;
};

// The HTTP request for one JSON-RPC call (Connection: close).
std::string node_rpc_request(const conf::NodeRpc& cfg, std::string_view credentials, std::string_view method);
// Reads one HTTP response carrying a JSON-RPC reply: the "result" as JSON
// text, or nullopt with `error` (HTTP status, RPC error, bad JSON).
std::optional<std::string> node_rpc_result(std::string_view http, std::string& error);

class NodePoller {
 public:
  explicit NodePoller(conf::NodeRpc cfg);
  // Tells the thread to stop without waiting for it: a poll in progress may
  // take up to its timeout, which the loop (a reload) must not wait for.
  ~NodePoller();
  NodePoller(const NodePoller&) = delete;
  NodePoller& operator=(const NodePoller&) = delete;

  void start();
  NodeState state() const;

 private:
  // Shared with the thread, which may outlive the poller by one poll.
  struct Shared {
    conf::NodeRpc cfg;
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    NodeState state;
  };
  static void run(std::shared_ptr<Shared> s);
  static void poll_once(const conf::NodeRpc& cfg, NodeState& next);
  static std::optional<std::string> call(const conf::NodeRpc& cfg, std::string_view method, std::string& error);

  std::shared_ptr<Shared> shared_;
  bool started_ = false;
};

}  // namespace hashgate
