// ASIC boards on this host's serial ports. Each board is driven by a chip
// driver from hw/ over a tty read from the loop (uv_poll), and mines as a
// Stratum client of hashgate's own first plain listener over loopback: it
// gets its own extranonce slice and difficulty, and its shares go through
// the same checks, counters and pool failover as every miner's. One
// mechanism, no special path for local hardware. (Issue 16 weighed an
// in-memory session pair instead and kept the socket: the gateway's second
// hash is one per submitted share, not per nonce, and a socketless session
// would need its own way into placement, moves and writes; hw/README.md.)
//
// hashgate builds the coinbase, merkle root and header for each piece of
// work, re-hashes every nonce a board reports, counts a nonce that misses
// the board's own target as a hardware error (per chip), and submits only
// nonces that meet the share target. A board that disappears (EIO, hangup,
// the device gone) is reopened with backoff; one that goes silent or
// reports too many hardware errors is re-initialised the same way.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "conf/config.h"
#include "hashing/target.h"
#include "proxy/snapshot.h"

namespace hashgate {

class BoardManager {
 public:
  BoardManager(uv_loop_t* loop, const std::vector<conf::Board>& boards, Algorithm algo, conf::Endpoint gateway);
  ~BoardManager();
  void start();
  // Closes every handle (serial ports and Stratum connections); the loop can end after.
  void stop();
  std::vector<BoardSnapshot> snapshot() const;
  // The profit guard's verdict: a paused board gets no work (state "paused").
  void set_paused(const std::string& board, bool paused);
  void log_summary() const;

  struct Board;

 private:
  uv_loop_t* loop_;
  Algorithm algo_;
  conf::Endpoint gateway_;
  std::vector<std::unique_ptr<Board>> boards_;
};

}  // namespace hashgate
