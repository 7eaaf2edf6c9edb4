// GridSeed GC3355 scrypt boards, as the hosts that drive real ones do it
// (bfgminer's gc3355.c / driver-gridseed.c, GridSeed's own cgminer driver):
// 8-, 16- and 24-byte commands starting 55 AA, 156-byte work packets, and
// 12-byte replies (55 20: a scrypt nonce; 55 AA C0: the firmware version).
// No checksums, so a wrong byte order is not refused by the board: it hashes
// the wrong header and every nonce it reports is a hardware error.
//
// The wire facts this file encodes:
// - Work packet: 55 AA 1F 00 ‖ target (32, little-endian number) ‖ midstate
//   (the eight SHA-256 state words after the header's first 64 bytes, each
//   little-endian) ‖ the 80-byte header with every 32-bit word byte-swapped
//   (bytes 68..147) ‖ nonce min ‖ nonce max ‖ a 32-bit work id (152..155).
//   Byte 3 is the task slot and hosts always send 0.
// - Nonce reply: 55 20 00 00 ‖ N (little-endian) ‖ the packet's work id.
//   The chips count N in SHA-256 message word 19, so the true header's nonce
//   field holds N's bytes in big-endian order. Chip k of n scans N from
//   k * (0xffffffff / n): hosts attribute a nonce to chip N / (0xffffffff / n).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hw/driver.h"

namespace hashgate::hw::gc3355 {

// Firmware version as GridSeed's driver reads it (reply bytes 8..11, little-endian).
constexpr uint32_t kFirmwareOrb = 0x01140113;
// Pauses real hosts make: after every write, after a command, after the
// chip reset, and between the scrypt reset and the work packet.
constexpr double kWriteDelay = 0.010, kCommandDelay = 0.020, kResetDelay = 0.200, kWorkDelay = 0.100;

std::string firmware_request();
// The commands that follow a successful firmware probe, in order (each is
// one write): GCP reset, sub-chip count, SHA-2 power-down, SHA-2 enable bit,
// scrypt on, GCP on, PLL, SHA-2 UART.
std::vector<std::string> init_commands(double mhz);
std::vector<std::string> scrypt_reset();
// The CPM (PLL) register write for a frequency, and the frequency a word gives.
std::string pll_command(double mhz);
uint32_t pll_word(double mhz);
double pll_frequency(uint32_t cfg);
// The SHA-2 UART configuration word: force start, UART on, core clock / baud.
uint32_t sha2_uart_word(double mhz, uint32_t baud);

std::string work_packet(uint32_t work_id, const Header& header, const U256& target);
struct Packet {
  uint8_t task = 0;  // byte 3: hosts send 0
  U256 target;
  uint8_t midstate[32] = {};
  Header header{};  // bytes 68..147 read as the chips read them (words byte-swapped back)
  uint32_t nonce_min = 0, nonce_max = 0;
  uint32_t work_id = 0;
};
Packet parse_packet(std::span<const uint8_t, 156> p);

// The header's nonce field (little-endian value) for a chip count N, and back.
inline uint32_t header_nonce_of(uint32_t n) { return __builtin_bswap32(n); }
inline uint32_t count_of_header_nonce(uint32_t nonce) { return __builtin_bswap32(nonce); }

std::string nonce_reply(uint32_t n, uint32_t work_id);
std::string firmware_reply(uint32_t version);
// The chip that found count N, as hosts attribute it.
unsigned chip_of_count(uint32_t n, unsigned chips);
uint32_t chip_start(unsigned chip, unsigned chips);

class Gc3355Driver final : public Driver {
 public:
  Gc3355Driver(unsigned chips, double frequency);
  const char* name() const override { return "gc3355"; }
  Algorithm algorithm() const override { return Algorithm::kScrypt; }
  void start(double now) override;
  void on_bytes(std::span<const uint8_t> bytes, double now) override;
  void on_tick(double now) override;
  uint8_t send_work(const BoardWork& work) override;
  unsigned work_slots() const override { return kSlots; }
  unsigned chips_found() const override { return ready_ ? chips_ : 0; }
  U256 chip_target(const U256& wanted) const override { return wanted; }
  uint32_t firmware() const { return firmware_; }

  static constexpr double kInitTimeoutSeconds = 3;
  static constexpr unsigned kSlots = 16;

 private:
  void paced(std::string cmd, double after = kCommandDelay);
  unsigned chips_;
  double frequency_;
  enum class Phase { kIdle, kProbing, kReady } phase_ = Phase::kIdle;
  double deadline_ = 0;
  std::string rx_;
  uint32_t work_seq_ = 0;  // the last work id sent; 0: none since start
  uint32_t firmware_ = 0;
};

}  // namespace hashgate::hw::gc3355
