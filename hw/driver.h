// A chip driver: a small state machine with no I/O of its own. The board
// manager (proxy/boards.cc) feeds it the bytes read from the serial port and
// the clock, gives it work, and carries out what it asks for: bytes to
// write and line-speed changes. Nonces come back as events naming the work
// they belong to; the manager rebuilds the header and re-hashes every one.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hashing/header.h"
#include "hashing/target.h"

namespace hashgate::hw {

// One unit of work: a full header (nonce 0) and what the board should report.
struct BoardWork {
  Header header{};
  U256 target;                // the board reports nonces whose hash meets this (rounded to what the chip can express)
  uint32_t version_mask = 0;  // header version bits the chip may roll (BM13xx)
};

struct DriverAction {
  enum Kind { kWrite, kSetBaud, kPause } kind = kWrite;
  std::string bytes;  // kWrite
  uint32_t baud = 0;  // kSetBaud: switch the host's line speed after the writes before it
  // kPause: send nothing more for this long. GC3355 boards corrupt their
  // registers when commands come back to back, and real hosts wait between
  // writes; the caller must wait without blocking its loop.
  double seconds = 0;
};

struct DriverEvent {
  enum Kind {
    kReady,       // initialised: work may be sent
    kNonce,       // a nonce for work `work_ids` (tried in order; the first whose hash meets wins)
    kCrcError,    // a frame with a bad checksum was dropped
    kJunk,        // bytes that are no frame were skipped
    kInitFailed,  // the board did not answer its initialisation
  } kind = kReady;
  std::vector<uint8_t> work_ids;
  uint32_t nonce = 0;    // the header's nonce (little-endian field value)
  uint32_t version = 0;  // rolled version bits (BM13xx), 0 when none
  unsigned chip = 0;
  unsigned core = 0;
  unsigned count = 0;    // kJunk: bytes skipped; kReady: chips found
  std::string detail;
};

inline DriverEvent make_event(DriverEvent::Kind kind, unsigned count = 0, std::string detail = {}) {
  DriverEvent e;
  e.kind = kind;
  e.count = count;
  e.detail = std::move(detail);
  return e;
}

class Driver {
 public:
  virtual ~Driver() = default;
  virtual const char* name() const = 0;
  virtual Algorithm algorithm() const = 0;
  // (Re)initialises the board from scratch: forgets its work and chips.
  virtual void start(double now) = 0;
  virtual void on_bytes(std::span<const uint8_t> bytes, double now) = 0;
  virtual void on_tick(double now) = 0;
  bool ready() const { return ready_; }
  // Queues `work` for the board; returns the id its nonces will name. The
  // driver keeps no header: the caller keeps its own table by id.
  virtual uint8_t send_work(const BoardWork& work) = 0;
  // How many ids a caller must keep before one is reused.
  virtual unsigned work_slots() const = 0;
  virtual unsigned chips_found() const = 0;
  // The target the chip really reports at when asked for `wanted` (chips
  // express targets coarsely: a power of two, or 16 bits).
  virtual U256 chip_target(const U256& wanted) const = 0;

  std::vector<DriverAction> take_actions() { return std::exchange(actions_, {}); }
  std::vector<DriverEvent> take_events() { return std::exchange(events_, {}); }

 protected:
  void write(std::string bytes) {
    if (!actions_.empty() && actions_.back().kind == DriverAction::kWrite) {
      actions_.back().bytes += bytes;
    } else {
      actions_.push_back({DriverAction::kWrite, std::move(bytes), 0, 0});
    }
  }
  void set_baud(uint32_t baud) { actions_.push_back({DriverAction::kSetBaud, {}, baud, 0}); }
  // A write of its own followed by a pause (never merged with the writes around it).
  void write_paced(std::string bytes, double seconds) {
    actions_.push_back({DriverAction::kWrite, std::move(bytes), 0, 0});
    pause(seconds);
  }
  void pause(double seconds) { actions_.push_back({DriverAction::kPause, {}, 0, seconds}); }
  void emit(DriverEvent e) { events_.push_back(std::move(e)); }
  bool ready_ = false;

 private:
  std::vector<DriverAction> actions_;
  std::vector<DriverEvent> events_;
};

struct DriverOptions {
  std::string driver;     // bm1366 | bm1368 | bm1370 | gc3355 | zeus
  unsigned chips = 1;     // expected chips on the chain
  double frequency = 0;   // MHz; 0: the chip's default
  uint32_t baud = 115200; // the line speed to work at (BM13xx switch to it after init)
};

// Null for an unknown driver name.
std::unique_ptr<Driver> make_driver(const DriverOptions& o);
// The line speed a driver starts at (before any baud change).
uint32_t initial_baud(const std::string& driver);
bool known_driver(const std::string& driver);

}  // namespace hashgate::hw
