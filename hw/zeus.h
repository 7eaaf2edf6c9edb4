// Zeus scrypt boards (bfgminer's driver-zeusminer.c): 84-byte work packets
// and 4-byte nonce replies, no framing and no checksum. A packet is a
// 32-bit big-endian word (clock register, its complement, a 16-bit target)
// and the header with its twenty 4-byte words in reverse order; the chips
// count the first of those words (the header's nonce bytes) upward as a
// big-endian number and reply with the four nonce bytes of a hit.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "hw/driver.h"

namespace hashgate::hw::zeus {

// The clock register for a chip frequency: freq * 2 / 3.
uint8_t clock_register(double mhz);
// 16-bit target for a scrypt difficulty: a hash qualifies when its top 32
// bits (as a little-endian 256-bit number) are at most this. Hosts truncate
// the difficulty to an integer (at least 1) and send 0xffff / it.
uint16_t target16(double difficulty);
U256 target_of(uint16_t t16);

std::string work_packet(const Header& header, uint8_t clock_reg, uint16_t t16, uint32_t start_counter = 0);
// Recovers header (with the packet's start nonce bytes), clock and target from a packet.
struct Packet {
  Header header{};
  uint8_t clock = 0;
  bool clock_ok = false;  // the complement byte matches
  uint16_t target = 0;
  uint32_t start_counter = 0;  // big-endian nonce counter
};
Packet parse_packet(std::span<const uint8_t, 84> p);

// The golden-nonce self-test: a header whose first hit at or after counter
// 0x00038000 with target 1 is counter 0x00038d26 (reply 00 03 8d 26).
Header golden_header();
constexpr uint32_t kGoldenStart = 0x00038000;
constexpr uint32_t kGoldenNonce = 0x00038d26;

// The clock ramp Zeus's host code runs before the golden self-test: a
// throw-away work (target 1) twice at 165 MHz (139 MHz for a chip clock of
// 150 MHz or less), then twice at the working clock, 500 ms apart.
Header ramp_header();
constexpr double kRampPause = 0.5;
double ramp_start_mhz(double mhz);

// Which chip and core found a counter, as Zeus boards report them: the core
// in the top three bits, the chip by equal ranges of the lower 29.
unsigned core_of_counter(uint32_t counter);
unsigned chip_of_counter(uint32_t counter, unsigned chips);

// The header's nonce field for a big-endian chip counter, and back.
inline uint32_t nonce_of_counter(uint32_t counter) { return __builtin_bswap32(counter); }
inline uint32_t counter_of_nonce(uint32_t nonce) { return __builtin_bswap32(nonce); }

class ZeusDriver final : public Driver {
 public:
  ZeusDriver(unsigned chips, double frequency);
  const char* name() const override { return "zeus"; }
  Algorithm algorithm() const override { return Algorithm::kScrypt; }
  void start(double now) override;
  void on_bytes(std::span<const uint8_t> bytes, double now) override;
  void on_tick(double now) override;
  uint8_t send_work(const BoardWork& work) override;
  unsigned work_slots() const override { return 16; }
  unsigned chips_found() const override { return ready_ ? chips_ : 0; }
  U256 chip_target(const U256& wanted) const override;

  static constexpr double kGoldenTimeoutSeconds = 20;

 private:
  unsigned chips_;
  double mhz_;
  uint8_t clock_;
  enum class Phase { kIdle, kGolden, kReady } phase_ = Phase::kIdle;
  double golden_deadline_ = 0;
  std::string rx_;
  uint8_t current_ = 0, previous_ = 0;
  bool has_previous_ = false;
  unsigned sent_ = 0;
};

}  // namespace hashgate::hw::zeus
