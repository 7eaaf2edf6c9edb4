// GridSeed GC3355 scrypt boards (bfgminer's gc3355.c / driver-gridseed.c):
// 8- and 16-byte commands starting 55 AA, 156-byte work packets with the
// full 256-bit target, and 12-byte replies (55 20: a scrypt nonce, with the
// task id of its work; 55 AA C0: the firmware version). No checksums.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hw/driver.h"

namespace hashgate::hw::gc3355 {

// The init sequence for `chips` chips at `mhz`, as the board gets it.
std::vector<std::string> init_commands(unsigned chips, double mhz);
std::string firmware_request();
std::vector<std::string> scrypt_reset();
// The CPM (PLL) register write for a frequency, and the frequency it gives.
std::string pll_command(double mhz);
double pll_frequency(uint32_t cfg);

// 55 AA 1F task ‖ target (32, LE) ‖ midstate (32) ‖ header (80) ‖ nonce min ‖ nonce max ‖ 4 zero bytes.
std::string work_packet(uint8_t task, const Header& header, const U256& target);
struct Packet {
  uint8_t task = 0;
  U256 target;
  Header header{};
  uint32_t nonce_min = 0, nonce_max = 0;
};
Packet parse_packet(std::span<const uint8_t, 156> p);

std::string nonce_reply(uint32_t nonce, uint8_t task);
std::string firmware_reply(uint32_t version);
// The chip that found `nonce`: chips split the nonce range evenly.
unsigned chip_of_nonce(uint32_t nonce, unsigned chips);

class Gc3355Driver final : public Driver {
 public:
  Gc3355Driver(unsigned chips, double frequency);
  const char* name() const override { return "gc3355"; }
  Algorithm algorithm() const override { return Algorithm::kScrypt; }
  void start(double now) override;
  void on_bytes(std::span<const uint8_t> bytes, double now) override;
  void on_tick(double now) override;
  uint8_t send_work(const BoardWork& work) override;
  unsigned work_slots() const override { return 16; }
  unsigned chips_found() const override { return ready_ ? chips_ : 0; }
  U256 chip_target(const U256& wanted) const override { return wanted; }
  uint32_t firmware() const { return firmware_; }

  static constexpr double kInitTimeoutSeconds = 3;

 private:
  unsigned chips_;
  double frequency_;
  enum class Phase { kIdle, kProbing, kReady } phase_ = Phase::kIdle;
  double deadline_ = 0;
  std::string rx_;
  uint8_t task_ = 0;
  uint32_t firmware_ = 0;
};

}  // namespace hashgate::hw::gc3355
