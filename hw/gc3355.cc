#include "hw/gc3355.h"

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

}  // namespace

std::string pll_command(double mhz) {
  // mhz = 25 / div * mult, the smallest divider that gets within half a MHz.
  unsigned best_div = 1, best_mult = 1;
  double best_err = 1e9;
  for (unsigned div = 1; div <= 32; ++div) {
    unsigned mult = unsigned(std::lround(mhz * div / 25));
    if (mult < 1 || mult > 0x80) continue;
    double err = std::fabs(25.0 / div * mult - mhz);
    if (err < best_err - 1e-9) {
      best_err = err;
      best_div = div;
      best_mult = mult;
    }
    if (err < 0.5) break;
  }
  // pll_bypass | F | R | recfg | cfg_cpm (GC3355 register spec, CPM register 0).
  uint32_t cfg = 1u << 31 | (best_mult - 1) << 21 | (best_div - 1) << 16 | 1u << 2 | 1u;
  return reg_write(0xef, 0x00, cfg);
}

double pll_frequency(uint32_t cfg) {
  unsigned mult = (cfg >> 21 & 0x7f) + 1, div = (cfg >> 16 & 0x1f) + 1;
  return 25.0 / div * mult;
}

std::string firmware_request() { return from_hex("55AAC000909090900000000001000000"); }

std::vector<std::string> scrypt_reset() { return {from_hex("55AA1F2816000000"), from_hex("55AA1F2817000000")}; }

std::vector<std::string> init_commands(unsigned chips, double mhz) {
  std::vector<std::string> c;
  c.push_back(from_hex("55AAC000808080800000000001000000"));  // GCP reset
  uint8_t sub[16] = {0x55, 0xaa, 0xc0, 0x00, 0xc0, 0xc0, 0xc0, 0xc0, 0, 0, 0, 0, 0x01, 0, 0, 0};
  put_le32(sub + 8, chips);                                     // number of sub-chips
  c.emplace_back(reinterpret_cast<const char*>(sub), 16);
  for (unsigned chip = 0; chip < chips && chip < 5; ++chip)  // SHA-2 units off, chip by chip
    c.push_back(reg_write(0xef, uint8_t(2 + chip), 0));
  c.push_back(from_hex("55AAEF3020000000"));
  c.push_back(from_hex("55AA1F2814000000"));  // scrypt on
  c.push_back(from_hex("55AA1F2817000000"));  // GCP on
  c.push_back(pll_command(mhz));
  return c;
}

std::string work_packet(uint8_t task, const Header& header, const U256& target) {
  uint8_t p[156] = {0x55, 0xaa, 0x1f, task};
  // Target as 32 little-endian bytes.
  std::string hex = target.to_hex();  // big-endian digits
  uint8_t be[32];
  hex_decode(hex, be);
  for (int i = 0; i < 32; ++i) p[4 + i] = be[31 - i];
  Sha256State mid = kSha256Init;
  sha256_compress_portable(mid, header.data());
  for (int i = 0; i < 8; ++i) put_le32(p + 36 + 4 * i, mid[i]);
  std::memcpy(p + 68, header.data(), 80);
  put_le32(p + 144, 0);
  put_le32(p + 148, 0xffffffffu);
  return std::string(reinterpret_cast<const char*>(p), sizeof p);
}

Packet parse_packet(std::span<const uint8_t, 156> p) {
  Packet r;
  r.task = p[3];
  r.target = U256::from_le_bytes(p.data() + 4);
  std::memcpy(r.header.data(), p.data() + 68, 80);
  r.nonce_min = get_le32(p.data() + 144);
  r.nonce_max = get_le32(p.data() + 148);
  return r;
}

std::string nonce_reply(uint32_t nonce, uint8_t task) {
  uint8_t b[12] = {0x55, 0x20, 0x00, 0x00};
  put_le32(b + 4, nonce);
  put_le32(b + 8, task);
  return std::string(reinterpret_cast<const char*>(b), 12);
}

std::string firmware_reply(uint32_t version) {
  uint8_t b[12] = {0x55, 0xaa, 0xc0, 0x00, 0x90, 0x90, 0x90, 0x90};
  put_be32(b + 8, version);
  return std::string(reinterpret_cast<const char*>(b), 12);
}

unsigned chip_of_nonce(uint32_t nonce, unsigned chips) {
  if (chips <= 1) return 0;
  unsigned c = unsigned(nonce / (0xffffffffu / chips));
  return c < chips ? c : chips - 1;
}

Gc3355Driver::Gc3355Driver(unsigned chips, double frequency)
    : chips_(chips ? chips : 5), frequency_(frequency > 0 ? frequency : 600) {}

void Gc3355Driver::start(double now) {
  ready_ = false;
  rx_.clear();
  for (auto& c : init_commands(chips_, frequency_)) write(c);
  write(firmware_request());
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
      firmware_ = get_be32(p + 8);
      pos += 12;
      if (phase_ == Phase::kProbing) {
        phase_ = Phase::kReady;
        ready_ = true;
        DriverEvent e = make_event(DriverEvent::kReady);
        e.count = chips_;
        e.detail = "firmware " + hex_u32_string(firmware_);
        emit(std::move(e));
      }
      continue;
    }
    uint32_t value = get_le32(p + 4);
    uint32_t task = get_le32(p + 8);
    pos += 12;
    if (phase_ != Phase::kReady) continue;
    if (task > 0xff) {
      junk += 12;
      continue;
    }
    DriverEvent e = make_event(DriverEvent::kNonce);
    e.work_ids = {uint8_t(task)};
    e.nonce = value;
    e.chip = chip_of_nonce(value, chips_);
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
  for (auto& c : scrypt_reset()) write(c);
  task_ = uint8_t((task_ + 1) % 16);
  write(work_packet(task_, work.header, work.target));
  return task_;
}

}  // namespace hashgate::hw::gc3355
