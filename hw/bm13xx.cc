#include "hw/bm13xx.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace hashgate::hw::bm13xx {
namespace {

constexpr uint8_t kTypeJob = 0x20, kTypeCmd = 0x40, kAll = 0x10;
constexpr uint8_t kCmdSetAddress = 0, kCmdWrite = 1, kCmdRead = 2, kCmdInactive = 3;
constexpr double kEnumerateSeconds = 0.5;

std::string command(uint8_t type, std::span<const uint8_t> body) {
  std::string f = {'\x55', '\xaa', char(type), char(body.size() + 3)};
  f.append(reinterpret_cast<const char*>(body.data()), body.size());
  auto* p = reinterpret_cast<const uint8_t*>(f.data()) + 2;
  f.push_back(char(crc5({p, f.size() - 2}, (f.size() - 2) * 8)));
  return f;
}

uint8_t reverse_bits(uint8_t b) {
  uint8_t r = 0;
  for (int i = 0; i < 8; ++i) r |= uint8_t(((b >> i) & 1) << (7 - i));
  return r;
}

void put_le32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(char(v >> (8 * i)));
}
uint32_t get_le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint32_t get_be32(const uint8_t* p) { return uint32_t(p[3]) | uint32_t(p[2]) << 8 | uint32_t(p[1]) << 16 | uint32_t(p[0]) << 24; }

// The header's 32 bytes with their eight words in reverse order (an involution).
void reverse_words(const uint8_t* in, uint8_t* out) {
  for (int w = 0; w < 8; ++w) std::memcpy(out + 4 * w, in + 4 * (7 - w), 4);
}

}  // namespace

uint8_t crc5(std::span<const uint8_t> data, size_t bits) {
  uint8_t crc = 0x1f;
  for (size_t i = 0; i < bits; ++i) {
    unsigned bit = (data[i / 8] >> (7 - i % 8)) & 1;
    unsigned feedback = ((crc >> 4) & 1) ^ bit;
    crc = uint8_t((crc << 1) & 0x1f);
    if (feedback) crc ^= 0x05;
  }
  return crc;
}

uint16_t crc16(std::span<const uint8_t> data) {
  uint16_t crc = 0xffff;
  for (uint8_t b : data) {
    crc ^= uint16_t(b) << 8;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x8000) ? uint16_t((crc << 1) ^ 0x1021) : uint16_t(crc << 1);
  }
  return crc;
}

std::string cmd_read(bool broadcast, uint8_t chip, uint8_t reg) {
  const uint8_t body[] = {chip, reg};
  return command(uint8_t(kTypeCmd | (broadcast ? kAll : 0) | kCmdRead), body);
}

std::string cmd_write(bool broadcast, uint8_t chip, uint8_t reg, uint32_t value) {
  const uint8_t body[] = {chip, reg, uint8_t(value >> 24), uint8_t(value >> 16), uint8_t(value >> 8), uint8_t(value)};
  return command(uint8_t(kTypeCmd | (broadcast ? kAll : 0) | kCmdWrite), body);
}

std::string cmd_chain_inactive() {
  const uint8_t body[] = {0, 0};
  return command(kTypeCmd | kAll | kCmdInactive, body);
}

std::string cmd_set_address(uint8_t chip) {
  const uint8_t body[] = {chip, 0};
  return command(kTypeCmd | kCmdSetAddress, body);
}

std::string job_frame(uint8_t job_id, const Header& h) {
  std::string f = {'\x55', '\xaa', char(kTypeJob | kCmdWrite), char(86)};
  f.push_back(char(job_id));
  f.push_back(1);                    // midstates: the chip computes its own
  put_le32(f, 0);                    // starting nonce
  f.append(reinterpret_cast<const char*>(h.data() + 72), 4);  // nbits (LE in the header too)
  f.append(reinterpret_cast<const char*>(h.data() + 68), 4);  // ntime
  uint8_t w[32];
  reverse_words(h.data() + 36, w);
  f.append(reinterpret_cast<const char*>(w), 32);
  reverse_words(h.data() + 4, w);
  f.append(reinterpret_cast<const char*>(w), 32);
  f.append(reinterpret_cast<const char*>(h.data()), 4);       // version
  uint16_t crc = crc16({reinterpret_cast<const uint8_t*>(f.data()) + 2, f.size() - 2});
  f.push_back(char(crc >> 8));
  f.push_back(char(crc));
  return f;
}

Header header_from_job(std::span<const uint8_t, 82> b) {
  Header h{};
  std::memcpy(h.data(), b.data() + 78, 4);
  reverse_words(b.data() + 46, h.data() + 4);
  reverse_words(b.data() + 14, h.data() + 36);
  std::memcpy(h.data() + 68, b.data() + 10, 4);
  std::memcpy(h.data() + 72, b.data() + 6, 4);
  return h;
}

uint32_t ticket_mask(double difficulty) {
  uint32_t d = difficulty >= 4294967295.0 ? 0x80000000u : (difficulty < 1 ? 1u : std::bit_floor(uint32_t(difficulty)));
  uint32_t mask = d - 1, reg = 0;
  for (int i = 0; i < 4; ++i) reg |= uint32_t(reverse_bits(uint8_t(mask >> (8 * i)))) << (8 * i);
  return reg;
}

double ticket_difficulty(uint32_t reg) {
  uint32_t mask = 0;
  for (int i = 0; i < 4; ++i) mask |= uint32_t(reverse_bits(uint8_t(reg >> (8 * i)))) << (8 * i);
  return double(uint64_t(mask) + 1);
}

uint32_t version_mask_register(uint32_t mask) { return 0x90000000u | (mask >> 13 & 0xffff); }

uint32_t pll_register(double mhz) {
  // f = 25 MHz * fb_div / (ref_div * post1 * post2), fb_div 0xa0..0xef, post1 >= post2.
  double best_err = 1e9;
  uint32_t best = 0;
  for (unsigned ref = 2; ref >= 1; --ref)
    for (unsigned p1 = 7; p1 >= 1; --p1)
      for (unsigned p2 = p1; p2 >= 1; --p2) {
        unsigned fb = unsigned(std::lround(mhz * ref * p1 * p2 / 25.0));
        if (fb < 0xa0 || fb > 0xef) continue;
        double err = std::fabs(25.0 * fb / (ref * p1 * p2) - mhz);
        if (err < best_err - 1e-9) {
          best_err = err;
          uint8_t vco = 25.0 * fb / ref >= 2400 ? 0x50 : 0x40;
          best = uint32_t(vco) << 24 | fb << 16 | ref << 8 | ((p1 - 1) << 4 | (p2 - 1));
        }
      }
  return best;
}

double pll_frequency(uint32_t reg) {
  unsigned fb = reg >> 16 & 0xff, ref = reg >> 8 & 0xff, p1 = (reg >> 4 & 0x7) + 1, p2 = (reg & 0x7) + 1;
  if (ref == 0) return 0;
  return 25.0 * fb / (ref * p1 * p2);
}

std::optional<uint32_t> baud_register(uint32_t baud) {
  if (baud == 115200) return 0x00003001u;
  if (baud == 1000000) return 0x11300200u;
  return std::nullopt;
}

std::optional<uint32_t> baud_from_register(uint32_t reg) {
  if (reg == 0x00003001u) return 115200;
  if (reg == 0x11300200u) return 1000000;
  return std::nullopt;
}

std::optional<Reply> parse_reply(std::span<const uint8_t, 11> f) {
  if (f[0] != 0xaa || f[1] != 0x55) return std::nullopt;
  if (crc5(f.subspan(2), 9 * 8) != 0) return std::nullopt;  // the CRC over all nine bytes leaves no remainder
  Reply r;
  uint8_t type = f[10] >> 5;
  if (type == 4) {
    r.nonce = true;
    r.nonce_value = get_le32(&f[2]);
    r.midstate = f[6];
    r.job_id = uint8_t((f[7] & 0xf0) >> 1);
    r.small_core = f[7] & 0x0f;
    r.core = uint8_t((__builtin_bswap32(r.nonce_value) >> 25) & 0x7f);
    r.version_bits = (uint32_t(f[8]) << 8 | f[9]) << 13;
    return r;
  }
  if (type != 0) return std::nullopt;
  r.value = get_be32(&f[2]);
  r.chip = f[6];
  r.reg = f[7];
  return r;
}

namespace {
std::string reply(const uint8_t body[8], uint8_t type) {
  uint8_t buf[9];
  std::memcpy(buf, body, 8);
  buf[8] = uint8_t(type << 5);
  uint8_t crc = crc5({buf, 9}, 8 * 8 + 3);
  std::string f = {'\xaa', '\x55'};
  f.append(reinterpret_cast<const char*>(buf), 8);
  f.push_back(char(type << 5 | crc));
  return f;
}
}  // namespace

std::string nonce_reply(uint32_t nonce_value, uint8_t midstate, uint8_t job_id, uint8_t small_core, uint32_t version_bits) {
  uint16_t v = uint16_t(version_bits >> 13);
  const uint8_t body[8] = {uint8_t(nonce_value), uint8_t(nonce_value >> 8), uint8_t(nonce_value >> 16),
                           uint8_t(nonce_value >> 24), midstate, uint8_t(((job_id << 1) & 0xf0) | (small_core & 0x0f)),
                           uint8_t(v >> 8), uint8_t(v)};
  return reply(body, 4);
}

std::string register_reply(uint32_t value, uint8_t chip, uint8_t reg) {
  const uint8_t body[8] = {uint8_t(value >> 24), uint8_t(value >> 16), uint8_t(value >> 8), uint8_t(value), chip, reg, 0, 0};
  return reply(body, 0);
}

unsigned address_interval(unsigned chips) { return chips <= 1 ? 256 : std::max(1u, 256 / chips); }

unsigned chip_of_nonce(uint32_t nonce_value, unsigned chips) {
  if (chips <= 1) return 0;
  unsigned c = (__builtin_bswap32(nonce_value) >> 17 & 0xff) / address_interval(chips);
  return c < chips ? c : chips - 1;
}

uint32_t lane_start(uint8_t address, unsigned core) { return uint32_t(core & 0x7f) << 25 | uint32_t(address) << 17; }

Bm13xxDriver::Bm13xxDriver(std::string model, unsigned chips, double frequency, uint32_t baud)
    : model_(std::move(model)), chips_(chips ? chips : 1), frequency_(frequency > 0 ? frequency : 525),
      baud_(baud) {}

void Bm13xxDriver::start(double now) {
  ready_ = false;
  found_ = 0;
  rx_.clear();
  ticket_sent_.reset();
  version_sent_.reset();
  // The host always starts a chain at the chips' reset speed.
  set_baud(115200);
  // Enumeration: every chip answers a broadcast read of its chip-id register.
  write(cmd_read(true, 0, kRegChipId));
  phase_ = Phase::kEnumerating;
  enumerate_until_ = now + kEnumerateSeconds;
}

void Bm13xxDriver::finish_init(double now) {
  (void)now;
  if (found_ == 0) {
    phase_ = Phase::kIdle;
    emit(make_event(DriverEvent::kInitFailed, 0, "no chip answered the chip-id read"));
    return;
  }
  for (int i = 0; i < 3; ++i) write(cmd_chain_inactive());
  // Addresses spread over 0..255 so a chip's address names its place on the chain.
  unsigned interval = address_interval(found_);
  for (unsigned i = 0; i < found_; ++i) write(cmd_set_address(uint8_t(i * interval)));
  write(cmd_write(true, 0, kRegInitControl, 0x00000700));
  write(cmd_write(true, 0, kRegMiscControl, 0xf000c100));
  write(cmd_write(true, 0, kRegCore, 0x80008b00));
  write(cmd_write(true, 0, kRegCore, 0x80008018));
  write(cmd_write(true, 0, kRegPll, pll_register(frequency_)));
  write(cmd_write(true, 0, kRegNonceRange, 0x00001eb5));
  if (baud_ != 115200) {
    write(cmd_write(true, 0, kRegUartBaud, *baud_register(baud_)));
    set_baud(baud_);
  }
  phase_ = Phase::kReady;
  ready_ = true;
  DriverEvent e = make_event(DriverEvent::kReady);
  e.count = found_;
  if (found_ != chips_) e.detail = std::to_string(found_) + " of " + std::to_string(chips_) + " chips answered";
  emit(std::move(e));
}

void Bm13xxDriver::on_bytes(std::span<const uint8_t> bytes, double now) {
  (void)now;
  rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t pos = 0;
  unsigned junk = 0;
  while (rx_.size() - pos >= 2) {
    if (uint8_t(rx_[pos]) != 0xaa || uint8_t(rx_[pos + 1]) != 0x55) {
      ++pos;
      ++junk;
      continue;
    }
    if (rx_.size() - pos < 11) break;
    std::span<const uint8_t, 11> frame(reinterpret_cast<const uint8_t*>(rx_.data()) + pos, 11);
    auto r = parse_reply(frame);
    if (!r) {
      // A bad frame: skip its preamble and look for the next one.
      emit(make_event(DriverEvent::kCrcError, 0, "reply CRC5 mismatch"));
      pos += 2;
      continue;
    }
    pos += 11;
    if (!r->nonce) {
      if (phase_ == Phase::kEnumerating && r->reg == kRegChipId) ++found_;
      continue;
    }
    if (phase_ != Phase::kReady) continue;
    DriverEvent e = make_event(DriverEvent::kNonce);
    e.work_ids = {r->job_id};
    e.nonce = r->nonce_value;
    e.version = r->version_bits;
    e.chip = chip_of_nonce(r->nonce_value, found_);
    e.core = r->core;
    emit(std::move(e));
  }
  if (junk) emit(make_event(DriverEvent::kJunk, junk, "bytes outside any reply frame"));
  rx_.erase(0, pos);
}

void Bm13xxDriver::on_tick(double now) {
  if (phase_ == Phase::kEnumerating && now >= enumerate_until_) finish_init(now);
}

namespace {
double difficulty_of(const U256& target) {
  double t = target.to_double();
  return t > 0 ? diff1_target(Algorithm::kSha256d) / t : 1;
}
}  // namespace

U256 Bm13xxDriver::chip_target(const U256& wanted) const {
  return target_from_difficulty(Algorithm::kSha256d, ticket_difficulty(ticket_mask(difficulty_of(wanted))));
}

uint8_t Bm13xxDriver::send_work(const BoardWork& work) {
  uint32_t ticket = ticket_mask(difficulty_of(work.target));
  if (ticket_sent_ != ticket) {
    write(cmd_write(true, 0, kRegTicketMask, ticket));
    ticket_sent_ = ticket;
  }
  uint32_t vm = version_mask_register(work.version_mask);
  if (version_sent_ != vm) {
    write(cmd_write(true, 0, kRegVersionMask, vm));
    version_sent_ = vm;
  }
  next_job_ = uint8_t((next_job_ + 24) % 128);
  write(job_frame(next_job_, work.header));
  return next_job_;
}

}  // namespace hashgate::hw::bm13xx
