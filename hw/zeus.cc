#include "hw/zeus.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hashing/bytes.h"

namespace hashgate::hw::zeus {
namespace {
// Packet word i is header word 19 - i (bytes within a word unchanged).
void reverse_header_words(const uint8_t* in, uint8_t* out) {
  for (int w = 0; w < 20; ++w) std::memcpy(out + 4 * w, in + 4 * (19 - w), 4);
}
}  // namespace

uint8_t clock_register(double mhz) { return uint8_t(std::clamp(mhz * 2 / 3, 1.0, 255.0)); }

uint16_t target16(double difficulty) {
  // bfgminer and Zeus's cgminer driver: diff = (uint32) difficulty, at least 1.
  double d = std::floor(std::clamp(difficulty, 1.0, 65535.0));
  return uint16_t(0xffff / uint32_t(d));
}

double ramp_start_mhz(double mhz) { return mhz > 150 ? 165 : 139; }

unsigned core_of_counter(uint32_t counter) { return counter >> 29; }

unsigned chip_of_counter(uint32_t counter, unsigned chips) {
  if (chips <= 1) return 0;
  unsigned c = (counter & 0x1fffffffu) / (0x1fffffffu / chips);
  return c < chips ? c : chips - 1;
}

U256 target_of(uint16_t t16) {
  // Top 32 bits at most t16: (t16 + 1) * 2^224 - 1.
  uint8_t le[32];
  std::memset(le, 0xff, 28);
  uint32_t top = t16;
  put_le32(le + 28, top);
  return U256::from_le_bytes(le);
}

std::string work_packet(const Header& header, uint8_t clock_reg, uint16_t t16, uint32_t start_counter) {
  uint8_t p[84];
  put_be32(p, uint32_t(clock_reg) << 24 | uint32_t(uint8_t(0xff - clock_reg)) << 16 | t16);
  Header h = header;
  put_be32(h.data() + 76, start_counter);
  reverse_header_words(h.data(), p + 4);
  return std::string(reinterpret_cast<const char*>(p), sizeof p);
}

Packet parse_packet(std::span<const uint8_t, 84> p) {
  Packet r;
  uint32_t w = get_be32(p.data());
  r.clock = uint8_t(w >> 24);
  r.clock_ok = uint8_t(w >> 16) == uint8_t(0xff - r.clock);
  r.target = uint16_t(w);
  reverse_header_words(p.data() + 4, r.header.data());
  r.start_counter = get_be32(r.header.data() + 76);
  return r;
}

Header golden_header() {
  // bfgminer's golden work (its 80 bytes after the 4-byte word), as a header.
  static const char* kPacketBody =
      "00038000063b0b1b028f3253"
      "5e900609c15dc49a42b1d8492a6dd4f8f15295c989a1decf584a6aa93be26066"
      "d3185f55ef635b5865a7a79b7fa74121a6bb819da416328a9bd2f8cef72794bf02000000";
  uint8_t body[80];
  hex_decode(kPacketBody, body);
  Header h{};
  reverse_header_words(body, h.data());
  return h;
}

Header ramp_header() {
  // The throw-away work of Zeus's detection (its second golden packet body).
  static const char* kPacketBody =
      "c00278894532091be6f16a5381ad33619dacb9e6a4a6e79956aac97b51112bfb93dc450b8fc765181a344b6244d42d78625f5c39463b"
      "bfdc10405ff711dc1222dd065b015ac9c2c66e28da7202000000";
  uint8_t body[80];
  hex_decode(kPacketBody, body);
  Header h{};
  reverse_header_words(body, h.data());
  return h;
}

ZeusDriver::ZeusDriver(unsigned chips, double frequency)
    : chips_(chips ? chips : 6), mhz_(frequency > 0 ? frequency : 328), clock_(clock_register(mhz_)) {}

void ZeusDriver::start(double now) {
  ready_ = false;
  rx_.clear();
  has_previous_ = false;
  // Chips step from a low clock to the working one before they are tested;
  // whatever they answer meanwhile is thrown away (see on_bytes).
  Header ramp = ramp_header();
  uint32_t start = counter_of_nonce(get_le32(ramp.data() + 76));
  for (uint8_t clock : {clock_register(ramp_start_mhz(mhz_)), clock_})
    for (int i = 0; i < 2; ++i) {
      write(work_packet(ramp, clock, 1, start));
      pause(kRampPause);
    }
  // Self-test: the golden work must come back with its known nonce.
  write(work_packet(golden_header(), clock_, 1, kGoldenStart));
  phase_ = Phase::kGolden;
  golden_deadline_ = now + 4 * kRampPause + kGoldenTimeoutSeconds;
}

void ZeusDriver::on_bytes(std::span<const uint8_t> bytes, double now) {
  (void)now;
  rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  size_t pos = 0;
  for (; rx_.size() - pos >= 4; pos += 4) {
    uint32_t counter = get_be32(reinterpret_cast<const uint8_t*>(rx_.data()) + pos);
    if (phase_ == Phase::kGolden) {
      if (counter == kGoldenNonce) {
        phase_ = Phase::kReady;
        ready_ = true;
        DriverEvent e = make_event(DriverEvent::kReady);
        e.count = chips_;
        emit(std::move(e));
      }
      // Anything else answers the clock ramp's throw-away work: Zeus's host
      // code flushes those replies, and so do we.
      continue;
    }
    if (phase_ != Phase::kReady) continue;
    DriverEvent e = make_event(DriverEvent::kNonce);
    e.work_ids = {current_};
    if (has_previous_) e.work_ids.push_back(previous_);
    e.nonce = nonce_of_counter(counter);
    e.chip = chip_of_counter(counter, chips_);
    e.core = core_of_counter(counter);
    emit(std::move(e));
  }
  rx_.erase(0, pos);
}

void ZeusDriver::on_tick(double now) {
  if (phase_ == Phase::kGolden && now >= golden_deadline_) {
    phase_ = Phase::kIdle;
    emit(make_event(DriverEvent::kInitFailed, 0, "no golden nonce within the self-test time"));
  }
}

U256 ZeusDriver::chip_target(const U256& wanted) const {
  double t = wanted.to_double();
  double difficulty = t > 0 ? diff1_target(Algorithm::kScrypt) / t : 1;
  return target_of(target16(difficulty));
}

uint8_t ZeusDriver::send_work(const BoardWork& work) {
  double t = work.target.to_double();
  double difficulty = t > 0 ? diff1_target(Algorithm::kScrypt) / t : 1;
  // A reply in flight when the work changes names nothing: a hit belongs to
  // the work before the current one, or to the current one.
  if (sent_++) {
    previous_ = current_;
    has_previous_ = true;
  }
  current_ = uint8_t((current_ + 1) % 16);
  // Any partial reply belonged to the old work's stream position; the byte
  // stream has no framing, so keep alignment as it is.
  write(work_packet(work.header, clock_, target16(difficulty), 0));
  return current_;
}

}  // namespace hashgate::hw::zeus
