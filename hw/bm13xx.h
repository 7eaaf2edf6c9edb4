// BM1366 / BM1368 / BM1370 (sha256d, Bitaxe-class boards): the wire format
// and the driver. Frames to the chips start 55 AA and end in a CRC5
// (commands) or a big-endian CRC16/CCITT-FALSE (jobs); replies are 11 bytes,
// AA 55 ... with a CRC5 and the reply type in the last byte.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "hw/driver.h"

namespace hashgate::hw::bm13xx {

// CRC5 (poly 0x05, init 0x1f, MSB first) over the first `bits` bits of `data`.
uint8_t crc5(std::span<const uint8_t> data, size_t bits);
// CRC16/CCITT-FALSE (poly 0x1021, init 0xffff).
uint16_t crc16(std::span<const uint8_t> data);

constexpr uint8_t kRegChipId = 0x00, kRegPll = 0x08, kRegNonceRange = 0x10, kRegTicketMask = 0x14,
                  kRegMiscControl = 0x18, kRegUartBaud = 0x28, kRegCore = 0x3c, kRegVersionMask = 0xa4,
                  kRegInitControl = 0xa8;

std::string cmd_read(bool broadcast, uint8_t chip, uint8_t reg);
std::string cmd_write(bool broadcast, uint8_t chip, uint8_t reg, uint32_t value);  // value as the register's 4 bytes, big-endian order
std::string cmd_chain_inactive();
std::string cmd_set_address(uint8_t chip);

// The 82-byte job body after 55 AA 21 56: merkle root and previous hash go
// as the header's 32 bytes with their 4-byte words in reverse order
// (ESP-Miner's "_be" form); nbits, ntime, version little-endian.
std::string job_frame(uint8_t job_id, const Header& header);
// Recovers the header (nonce 0) from a job body; used by the emulator and tests.
Header header_from_job(std::span<const uint8_t, 82> body);

// Ticket mask register value for a difficulty: the largest power of two not
// above it, minus one, each byte bit-reversed (0 for difficulty below 2).
uint32_t ticket_mask(double difficulty);
double ticket_difficulty(uint32_t mask_register);
// Version mask register (0xA4) for a header version mask: 90 00 ‖ (mask >> 13) big-endian.
uint32_t version_mask_register(uint32_t mask);
// PLL register (0x08) for a frequency in MHz, and the frequency it gives.
uint32_t pll_register(double mhz);
double pll_frequency(uint32_t reg);
// UART baud register values this driver uses: 115200 (default) and 1000000.
std::optional<uint32_t> baud_register(uint32_t baud);
std::optional<uint32_t> baud_from_register(uint32_t reg);

struct Reply {
  bool nonce = false;  // type 4; else a register read (type 0)
  // register read
  uint32_t value = 0;  // the register's 4 bytes, big-endian order
  uint8_t chip = 0, reg = 0;
  // nonce
  uint32_t nonce_value = 0;  // the header's nonce field (little-endian on the wire)
  uint8_t midstate = 0;
  uint8_t job_id = 0;        // (result header & 0xf0) >> 1
  uint8_t small_core = 0;    // result header & 0x0f
  uint8_t core = 0;          // main core: (byte-swapped nonce >> 25) & 0x7f
  uint32_t version_bits = 0; // rolled version bits: 16-bit field << 13
};

// Parses one 11-byte reply (preamble included); nullopt when the CRC fails.
std::optional<Reply> parse_reply(std::span<const uint8_t, 11> frame);
std::string nonce_reply(uint32_t nonce_value, uint8_t midstate, uint8_t job_id, uint8_t small_core, uint32_t version_bits);
std::string register_reply(uint32_t value, uint8_t chip, uint8_t reg);

// Where a chip's nonce comes from, as ESP-Miner reads it: the header nonce
// byte-swapped (h = bswap(nonce_value)) carries the main core in bits 31..25
// and the chip's address in bits 24..17; the low 17 bits are the count.
// Addresses are spread over 0..255 (`address_interval` = 256 / chips), so
// the chip's place on the chain is address / interval.
unsigned address_interval(unsigned chips);
unsigned chip_of_nonce(uint32_t nonce_value, unsigned chips);
// The byte-swapped nonce a chip's core starts from (count 0).
uint32_t lane_start(uint8_t address, unsigned core);

class Bm13xxDriver final : public Driver {
 public:
  Bm13xxDriver(std::string model, unsigned chips, double frequency, uint32_t baud);
  const char* name() const override { return model_.c_str(); }
  Algorithm algorithm() const override { return Algorithm::kSha256d; }
  void start(double now) override;
  void on_bytes(std::span<const uint8_t> bytes, double now) override;
  void on_tick(double now) override;
  uint8_t send_work(const BoardWork& work) override;
  unsigned work_slots() const override { return 16; }
  unsigned chips_found() const override { return found_; }
  U256 chip_target(const U256& wanted) const override;

 private:
  void finish_init(double now);
  std::string model_;
  unsigned chips_;
  double frequency_;
  uint32_t baud_;
  enum class Phase { kIdle, kEnumerating, kReady } phase_ = Phase::kIdle;
  double enumerate_until_ = 0;
  unsigned found_ = 0;
  std::string rx_;
  uint8_t next_job_ = 0;
  std::optional<uint32_t> ticket_sent_, version_sent_;
};

}  // namespace hashgate::hw::bm13xx
