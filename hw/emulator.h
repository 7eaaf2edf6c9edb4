// Board emulators: one per wire protocol, for tests and demos. Each parses
// what the host writes strictly (a bad CRC is dropped and counted), keeps
// the chips' state (addresses, registers, job table), really hashes the work
// it was given over each chip's nonce range with OpenSSL (never hashing/),
// and answers in the exact wire format, including nonces for the previous
// job just after a new one. Faults can be injected. No I/O here: the
// hashgate-board-emu program puts an Emulator on a pty.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hashing/header.h"
#include "hashing/target.h"

namespace hashgate::hw {

struct EmulatorOptions {
  std::string driver = "bm1370";  // bm1366 | bm1368 | bm1370 | gc3355 | zeus
  unsigned chips = 1;
  double hashrate = 20000;        // hashes per second over all chips
  // Test speed: the board reports nonces meeting its target times this
  // (hashgate is configured with the same scale). 1 for a faithful board.
  double difficulty_scale = 1;
  unsigned fault_crc_every = 0;      // every Nth reply gets a wrong CRC (BM13xx)
  unsigned fault_junk_every = 0;     // junk bytes before every Nth reply
  unsigned fault_invalid_every = 0;  // every Nth reported nonce is wrong
  int missing_chip = -1;             // this chip never answers nor hashes
  double silent_after = 0;           // seconds of work before the board goes silent, until re-initialised
  double stale_overlap_seconds = 0.05;  // after a new job, chips finish the old one this long
  // GC3355: a work packet less than this long after the command before it is
  // refused, as a real board's registers would be corrupted (0: no check).
  double min_work_gap = 0;
};

struct EmulatorStats {
  uint64_t frames = 0;         // well-formed frames/commands from the host
  uint64_t bad_frames = 0;     // dropped: bad CRC or malformed
  uint64_t jobs = 0;
  uint64_t hashes = 0;
  uint64_t nonces = 0;         // valid nonces reported
  std::vector<uint64_t> nonces_by_chip;  // ... by the chip that really found them
  uint64_t self_test_nonces = 0;  // hits on a host's known-answer work (not in `nonces`)
  uint64_t stale_nonces = 0;   // of those, for the job before the current one
  uint64_t invalid_nonces = 0; // wrong nonces reported on purpose
  uint64_t crc_faults = 0, junk_faults = 0;
  uint64_t inits = 0;          // (re)initialisations seen
  unsigned chips_addressed = 0;
  double frequency = 0;        // MHz the host configured
  uint32_t baud_register = 0;  // BM13xx: the UART baud the host asked the chips for; GC3355: the SHA-2 UART word
  double ticket_difficulty = 0;
  uint32_t version_mask = 0;
  double min_frequency = 0;    // the lowest clock the host set (a Zeus host ramps up from 165 MHz)
  bool sha2_off = false;       // GC3355: the 24-byte SHA-2 power-down came
  uint64_t paced_work = 0;     // GC3355: work packets at least 50 ms after the command before them
  uint64_t unpaced_work = 0;   //   ... and closer than that
  bool silent = false;
  std::string to_json() const;
};

class Emulator {
 public:
  virtual ~Emulator() = default;
  static std::unique_ptr<Emulator> make(const EmulatorOptions& o);  // null for an unknown driver
  // Bytes the host wrote.
  virtual void on_bytes(std::span<const uint8_t> bytes, double now) = 0;
  // Hashes what the clock allows since the last call; returns the bytes to send the host.
  virtual std::string poll(double now) = 0;
  // Waits for work running off the caller's thread (Zeus's golden search);
  // for tests that step a virtual clock.
  virtual void settle() {}
  const EmulatorStats& stats() const { return stats_; }

 protected:
  explicit Emulator(EmulatorOptions o) : o_(std::move(o)) {}
  // Reply decorations shared by every protocol: junk before the Nth reply.
  std::string junk_before(std::string reply);
  // How many hashes the clock allows now (capped at a fifth of a second's worth).
  uint64_t budget(double now);
  bool wrong_nonce();  // true for every fault_invalid_every-th nonce
  EmulatorOptions o_;
  EmulatorStats stats_;
  double last_poll_ = -1;
  double carry_ = 0;
  uint64_t replies_ = 0, reported_ = 0;
  double working_since_ = -1;
};

// OpenSSL's proof-of-work hash of a header, independent of hashing/.
Hash256 openssl_pow(Algorithm algo, const Header& h);

}  // namespace hashgate::hw
