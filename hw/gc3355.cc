#include "hw/gc3355.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hashing/bytes.h"
#include "hashing/sha256.h"

namespace hashgate::hw::gc3355 {
namespace {

std::string from_hex(const char* hex) {
  auto b = hex_decode(hex);
  return std::string(b->begin(), b->end());
}

std::string reg_write(uint8_t cluster_chip, uint8_t reg, uint32_t value) {
  uint8_t b[8] = {0x55, 0xaa, cluster_chip, reg};
  put_le32(b + 4, value);
  return std::string(reinterpret_cast<const char*>(b), 8);
}

// Every 32-bit word's bytes reversed: the hosts' internal header layout,
// which is what goes on the wire (an involution).
void swap_words(const uint8_t* in, uint8_t* out) {
  for (int w = 0; w < 20; ++w)
    for (int i = 0; i < 4; ++i) out[4 * w + i] = in[4 * w + 3 - i];
}

constexpr uint32_t kSha2Baud = 115200;  // the SHA-2 UART word is computed for this line speed

}  // namespace

uint32_t pll_word(double mhz) {
  // GridSeed's driver: Fout = 25 MHz / (R + 1) * (F + 1) / 2^OD. Multiples
  // of 25 MHz use R = 0 (its frequency table, 600 MHz = 0x82e00005); other
  // frequencies go in 12.5 MHz steps with R = 1, a requested non-integer
  // rounded up by the caller. Bit 31 (PLL band select) is set from 500 MHz
  // up; bits 0 and 2 load the configuration.
  unsigned r = 0, f = 0;
  double steps25 = mhz / 25;
  if (std::fabs(steps25 - std::round(steps25)) < 1e-9) {
    f = unsigned(std::clamp(std::round(steps25) - 1, 0.0, 127.0));
  } else {
    r = 1;
    f = unsigned(std::clamp(std::floor(2 * mhz / 25 + 1e-9) - 1, 0.0, 127.0));
  }
  double out = 25.0 / (r + 1) * (f + 1);
  uint32_t bs = out >= 500 ? 1 : 0;
  return bs << 31 | f << 21 | r << 16 | 1u << 2 | 1u;
}

std::string pll_command(double mhz) { return reg_write(0xef, 0x00, pll_word(mhz)); }

double pll_frequency(uint32_t cfg) {
  unsigned f = cfg >> 21 & 0x7f, r = cfg >> 16 & 0x1f, od = cfg >> 28 & 0x7;
  return 25.0 / (r + 1) * (f + 1) / double(1u << od);
}

uint32_t sha2_uart_word(double mhz, uint32_t baud) {
  // bfgminer's gc3355_config_sha256d: force start | UART enable | repeat
  // cycle = core clock / baud (truncated to 16 bits).
  return 1u << 31 | 1u << 30 | (uint32_t(mhz * 1e6 / baud) & 0xffff);
}

std::string firmware_request() { return from_hex("55AAC000909090900000000001000000"); }

std::vector<std::string> scrypt_reset() { return {from_hex("55AA1F2816000000"), from_hex("55AA1F2817000000")}; }

std::vector<std::string> init_commands(double mhz) {
  std::vector<std::string> c;
  c.push_back(from_hex("55AAC000808080800000000001000000"));  // GCP (chip) reset
  // Sub-chip count: always 5, blades included (both hosts send it so).
  c.push_back(from_hex("55AAC000C0C0C0C00500000001000000"));
  // All SHA-2 units powered down: one 24-byte command.
  c.push_back(from_hex("55AAEF020000000000000000000000000000000000000000"));
  c.push_back(from_hex("55AAEF3020000000"));  // SHA-2 enable bit: no scrypt nonces without it
  c.push_back(from_hex("55AA1F2814000000"));  // scrypt on
  c.push_back(from_hex("55AA1F2817000000"));  // GCP on
  c.push_back(pll_command(mhz));
  c.push_back(reg_write(0x0f, 0xff, sha2_uart_word(mhz, kSha2Baud)));
  return c;
}

std::string work_packet(uint32_t work_id, const Header& header, const U256& target) {
  uint8_t p[156] = {0x55, 0xaa, 0x1f, 0x00};
  std::string hex = target.to_hex();  // big-endian digits
  uint8_t be[32];
  hex_decode(hex, be);
  for (int i = 0; i < 32; ++i) p[4 + i] = be[31 - i];
  Sha256State mid = kSha256Init;
  sha256_compress_portable(mid, header.data());
  for (int i = 0; i < 8; ++i) put_le32(p + 36 + 4 * i, mid[i]);
  swap_words(header.data(), p + 68);
  put_le32(p + 144, 0);
  put_le32(p + 148, 0xffffffffu);
  put_le32(p + 152, work_id);
  return std::string(reinterpret_cast<const char*>(p), sizeof p);
}

Packet parse_packet(std::span<const uint8_t, 156> p) {
  Packet r;
  r.task = p[3];
  r.target = U256::from_le_bytes(p.data() + 4);
  std::memcpy(r.midstate, p.data() + 36, 32);
  swap_words(p.data() + 68, r.header.data());
  r.nonce_min = get_le32(p.data() + 144);
  r.nonce_max = get_le32(p.data() + 148);
  r.work_id = get_le32(p.data() + 152);
  return r;
}

std::string nonce_reply(uint32_t n, uint32_t work_id) {
  uint8_t b[12] = {0x55, 0x20, 0x00, 0x00};
  put_le32(b + 4, n);
  put_le32(b + 8, work_id);
  return std::string(reinterpret_cast<const char*>(b), 12);
}

std::string firmware_reply(uint32_t version) {
  uint8_t b[12] = {0x55, 0xaa, 0xc0, 0x00, 0x90, 0x90, 0x90, 0x90};
  put_le32(b + 8, version);
  return std::string(reinterpret_cast<const char*>(b), 12);
}

unsigned chip_of_count(uint32_t n, unsigned chips) {
  if (chips <= 1) return 0;
  unsigned c = unsigned(n / (0xffffffffu / chips));
  return c < chips ? c : chips - 1;
}

uint32_t chip_start(unsigned chip, unsigned chips) { return chips <= 1 ? 0 : chip * (0xffffffffu / chips); }

Gc3355Driver::Gc3355Driver(unsigned chips, double frequency)
    : chips_(chips ? chips : 5), frequency_(frequency > 0 ? frequency : 600) {}

void Gc3355Driver::paced(std::string cmd, double after) { write_paced(std::move(cmd), kWriteDelay + after); }

void Gc3355Driver::start(double now) {
  ready_ = false;
  rx_.clear();
  work_seq_ = 0;
  // Hosts probe the firmware before anything else; the rest follows its answer.
  paced(firmware_request());
  phase_ = Phase::kProbing;
  deadline_ = now + kInitTimeoutSeconds;
}

void Gc3355Driver::on_bytes(std::span<const uint8_t> bytes, double now) {
  (void)now;
  rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t pos = 0;
  unsigned junk = 0;
  while (rx_.size() - pos >= 2) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(rx_.data()) + pos;
    bool nonce = p[0] == 0x55 && p[1] == 0x20;
    bool fw = p[0] == 0x55 && p[1] == 0xaa;
    if (!nonce && !fw) {
      ++pos;
      ++junk;
      continue;
    }
    if (rx_.size() - pos < 12) break;
    if (fw) {
      if (std::memcmp(p, "\x55\xaa\xc0\x00\x90\x90\x90\x90", 8) != 0) {
        pos += 2;
        junk += 2;
        continue;
      }
      pos += 12;
      if (phase_ != Phase::kProbing) continue;
      firmware_ = get_le32(p + 8);
      for (auto& c : init_commands(frequency_)) {
        bool reset = c.size() == 16 && uint8_t(c[4]) == 0x80;  // GridSeed's driver waits 200 ms after it
        paced(std::move(c), reset ? kResetDelay : kCommandDelay);
      }
      phase_ = Phase::kReady;
      ready_ = true;
      DriverEvent e = make_event(DriverEvent::kReady);
      e.count = chips_;
      e.detail = "firmware " + hex_u32_string(firmware_);
      emit(std::move(e));
      continue;
    }
    uint32_t n = get_le32(p + 4);
    uint32_t id = get_le32(p + 8);
    pos += 12;
    // Before the first work of this start there is nothing a nonce could
    // belong to (a reply from before the chip reset).
    if (phase_ != Phase::kReady || work_seq_ == 0) continue;
    DriverEvent e = make_event(DriverEvent::kNonce);
    if (id != 0 && id <= work_seq_ && work_seq_ - id < kSlots) {
      e.work_ids = {uint8_t(id % kSlots)};  // the firmware echoed the work id
    } else if (id == 0) {
      // Firmware that echoes nothing (bfgminer never fills the id): the
      // current work, then the one before it.
      e.work_ids = {uint8_t(work_seq_ % kSlots)};
      if (work_seq_ > 1) e.work_ids.push_back(uint8_t((work_seq_ - 1) % kSlots));
    } else {
      junk += 12;  // names a work id never sent, or one long replaced
      continue;
    }
    e.nonce = header_nonce_of(n);
    e.chip = chip_of_count(n, chips_);
    emit(std::move(e));
  }
  if (junk) emit(make_event(DriverEvent::kJunk, junk, "bytes outside any reply"));
  rx_.erase(0, pos);
}

void Gc3355Driver::on_tick(double now) {
  if (phase_ == Phase::kProbing && now >= deadline_) {
    phase_ = Phase::kIdle;
    emit(make_event(DriverEvent::kInitFailed, 0, "no firmware version reply"));
  }
}

uint8_t Gc3355Driver::send_work(const BoardWork& work) {
  auto reset = scrypt_reset();
  paced(reset[0]);
  // The datasheet's wait cycle before a new transaction (bfgminer waits 100 ms).
  paced(reset[1], kCommandDelay + kWorkDelay);
  if (++work_seq_ == 0) work_seq_ = 1;  // 0 means "no echo" in a reply
  write_paced(work_packet(work_seq_, work.header, work.target), kWriteDelay);
  return uint8_t(work_seq_ % kSlots);
}

}  // namespace hashgate::hw::gc3355
