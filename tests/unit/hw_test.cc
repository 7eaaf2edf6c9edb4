// hw/: known answers from public captures, and each driver against its
// emulator in process (no pty): the emulator hashes with OpenSSL, the test
// re-hashes what the driver reports with hashing/.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "hashing/bytes.h"
#include "hw/bm13xx.h"
#include "hw/emulator.h"
#include "hw/gc3355.h"
#include "hw/serial.h"
#include "hw/zeus.h"

using namespace hashgate;
using namespace hashgate::hw;

namespace {
std::string hex(const std::string& s) { return hex_encode({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
std::string bytes(const char* h) {
  auto b = hex_decode(h);
  REQUIRE(b);
  return std::string(b->begin(), b->end());
}
std::span<const uint8_t> span(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

Header sample_header(uint32_t salt) {
  Header h{};
  for (size_t i = 0; i < h.size(); ++i) h[i] = uint8_t(i * 7 + salt);
  put_le32(h.data(), 0x20000000);
  put_le32(h.data() + 76, 0);
  return h;
}
}  // namespace

TEST_CASE("BM13xx: CRC5 command frames from public captures") {
  CHECK(hex(bm13xx::cmd_read(true, 0, 0x00)) == "55aa520500000a");
  CHECK(hex(bm13xx::cmd_chain_inactive()) == "55aa5305000003");
  CHECK(hex(bm13xx::cmd_set_address(0x00)) == "55aa400500001c");
  CHECK(hex(bm13xx::cmd_write(true, 0, 0xa4, 0x9000ffff)) == "55aa510900a49000ffff1c");
  // ESP-Miner's version mask for 0x1fffe000 is that very register value.
  CHECK(bm13xx::version_mask_register(0x1fffe000) == 0x9000ffff);
}

TEST_CASE("BM13xx: the BM1370 nonce reply AA 55 4C 03 52 75 0C D2 05 A2 9C") {
  auto f = bytes("aa554c0352750cd205a29c");
  auto r = bm13xx::parse_reply(std::span<const uint8_t, 11>(span(f).data(), 11));
  REQUIRE(r);
  CHECK(r->nonce);
  CHECK(r->nonce_value == 0x7552034c);
  CHECK(r->job_id == 0x68);  // (0xd2 & 0xf0) >> 1
  CHECK(r->small_core == 2);
  CHECK((0x20000000u | r->version_bits) == 0x20b44000u);
  // ESP-Miner's reading of the same nonce: byte-swapped 0x4C035275, main
  // core in bits 31..25 (38), chip address in bits 24..17 (1).
  CHECK(r->core == 38);
  CHECK(bm13xx::lane_start(1, 38) == (0x4c035275u & ~0x1ffffu));
  CHECK(bm13xx::chip_of_nonce(0x7552034c, 1) == 0);
  CHECK(bm13xx::chip_of_nonce(0x7552034c, 3) == 0);        // addresses 0, 85, 170: address 1 is chip 0
  CHECK(bm13xx::chip_of_nonce(__builtin_bswap32(bm13xx::lane_start(170, 9) + 5), 3) == 2);
  CHECK(bm13xx::chip_of_nonce(__builtin_bswap32(bm13xx::lane_start(128, 0)), 2) == 1);
  // One flipped bit anywhere fails the CRC.
  for (size_t i = 2; i < 11; ++i) {
    std::string bad = f;
    bad[i] = char(bad[i] ^ 0x04);
    CHECK_FALSE(bm13xx::parse_reply(std::span<const uint8_t, 11>(span(bad).data(), 11)));
  }
  // Our own encoder produces the same frame.
  CHECK(hex(bm13xx::nonce_reply(0x7552034c, 0x0c, 0x68, 2, 0x00b44000)) == "aa554c0352750cd205a29c");
  // The chip-id reply of a BM1370 (mujina's capture).
  auto id = bytes("aa551370000000000000" "10");
  auto rr = bm13xx::parse_reply(std::span<const uint8_t, 11>(span(id).data(), 11));
  REQUIRE(rr);
  CHECK_FALSE(rr->nonce);
  CHECK(rr->value == 0x13700000);
}

TEST_CASE("BM13xx: job frames carry the header and a CRC16") {
  Header h = sample_header(3);
  std::string f = bm13xx::job_frame(0x18, h);
  REQUIRE(f.size() == 88);
  CHECK(hex(f.substr(0, 6)) == "55aa21561801");
  uint16_t crc = bm13xx::crc16(span(f).subspan(2, 84));
  CHECK((uint16_t(uint8_t(f[86])) << 8 | uint8_t(f[87])) == crc);
  CHECK(bm13xx::header_from_job(std::span<const uint8_t, 82>(span(f).data() + 4, 82)) == h);
  CHECK(bm13xx::crc16(span(std::string("123456789"))) == 0x29b1);  // CRC-16/CCITT-FALSE check value
}

TEST_CASE("BM13xx: ticket mask, PLL and baud registers") {
  CHECK(bm13xx::ticket_mask(256) == 0x000000ff);
  CHECK(bm13xx::ticket_mask(512) == 0x000080ff);
  CHECK(bm13xx::ticket_difficulty(bm13xx::ticket_mask(1000)) == 512);
  CHECK(bm13xx::ticket_difficulty(bm13xx::ticket_mask(0.001)) == 1);
  for (double f : {400.0, 490.0, 525.0, 575.0, 600.0}) CHECK(std::abs(bm13xx::pll_frequency(bm13xx::pll_register(f)) - f) < 6);
  CHECK(bm13xx::baud_from_register(*bm13xx::baud_register(1000000)) == 1000000u);
  CHECK_FALSE(bm13xx::baud_register(57600));
}

TEST_CASE("Zeus: the golden nonce") {
  std::string pkt = zeus::work_packet(zeus::golden_header(), 0x55, 1, zeus::kGoldenStart);
  // bfgminer's golden work, byte for byte.
  CHECK(hex(pkt) ==
        "55aa000100038000063b0b1b028f32535e900609c15dc49a42b1d8492a6dd4f8f15295c989a1decf584a6aa93be26066"
        "d3185f55ef635b5865a7a79b7fa74121a6bb819da416328a9bd2f8cef72794bf02000000");
  // The first hit from 0x00038000 with target 1 is 0x00038d26 (OpenSSL's scrypt).
  Header h = zeus::golden_header();
  U256 t = zeus::target_of(1);
  uint32_t first = 0;
  for (uint32_t c = zeus::kGoldenStart; c <= zeus::kGoldenNonce + 1; ++c) {
    put_be32(h.data() + 76, c);
    if (U256::from_hash(openssl_pow(Algorithm::kScrypt, h)) <= t) {
      first = c;
      break;
    }
  }
  CHECK(first == zeus::kGoldenNonce);
  // ... and the driver takes the emulator's reply 00 03 8D 26 as a passed self-test.
  zeus::ZeusDriver d(6, 328);
  d.start(0);
  CHECK(hex(d.take_actions().back().bytes).substr(8) == hex(pkt).substr(8));  // after the clock ramp
  d.on_bytes(span(bytes("00038d26")), 0.1);
  auto ev = d.take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kind == DriverEvent::kReady);
  CHECK(d.ready());
  CHECK(zeus::target16(65535) == 1);
  CHECK(zeus::target16(0.5) == 0xffff);
}

TEST_CASE("GC3355: work packets and replies") {
  Header h = sample_header(9);
  U256 target = target_from_difficulty(Algorithm::kScrypt, 0.001);
  std::string p = gc3355::work_packet(5, h, target);
  REQUIRE(p.size() == 156);
  CHECK(hex(p.substr(0, 4)) == "55aa1f00");
  // The header goes with every 32-bit word byte-swapped (the nonce word is the scan start, 0).
  bool swapped = true;
  for (int i = 0; i < 76; ++i) swapped = swapped && uint8_t(p[68 + i]) == h[(i & ~3) + 3 - (i & 3)];
  CHECK(swapped);
  auto pk = gc3355::parse_packet(std::span<const uint8_t, 156>(span(p).data(), 156));
  CHECK(pk.task == 0);
  CHECK(pk.work_id == 5);
  CHECK(pk.target == target);
  CHECK(pk.header == h);
  CHECK(pk.nonce_max == 0xffffffffu);
  CHECK(hex(gc3355::nonce_reply(0x12345678, 5)) == "552000007856341205000000");
  CHECK(gc3355::chip_of_count(0xffffffffu, 5) == 4);
  CHECK(gc3355::chip_of_count(0, 5) == 0);
  CHECK(gc3355::chip_of_count(gc3355::chip_start(3, 5), 5) == 3);
  CHECK(gc3355::pll_frequency(get_le32(span(gc3355::pll_command(600)).data() + 4)) == 600);
}

namespace {
// Drives a driver against an emulator in process until `want` nonces came
// back; checks every one with hashing/ against the board target.
struct Loop {
  std::unique_ptr<Driver> drv;
  std::unique_ptr<Emulator> emu;
  double now = 0;
  std::map<uint8_t, BoardWork> works;
  unsigned good = 0, bad = 0, crc = 0, junk = 0, ready = 0, init_failed = 0;
  std::string detail;
  std::vector<uint64_t> good_by_chip;  // as the driver attributed them
  bool honour_pauses = true;  // as the board manager does (false: every write at once)
  std::vector<DriverAction> queue;
  double resume_at = 0;

  void pump() {
    for (auto& a : drv->take_actions()) queue.push_back(std::move(a));
    size_t i = 0;
    for (; i < queue.size() && now >= resume_at; ++i) {
      if (queue[i].kind == DriverAction::kWrite) emu->on_bytes(span(queue[i].bytes), now);
      if (queue[i].kind == DriverAction::kPause && honour_pauses) resume_at = now + queue[i].seconds;
    }
    queue.erase(queue.begin(), queue.begin() + long(i));
    emu->settle();
    std::string out = emu->poll(now);
    if (!out.empty()) drv->on_bytes(span(out), now);
    drv->on_tick(now);
    for (auto& e : drv->take_events()) {
      if (e.kind == DriverEvent::kReady) ++ready, detail = e.detail;
      if (e.kind == DriverEvent::kInitFailed) ++init_failed;
      if (e.kind == DriverEvent::kCrcError) ++crc;
      if (e.kind == DriverEvent::kJunk) ++junk;
      if (e.kind != DriverEvent::kNonce) continue;
      bool ok = false;
      for (uint8_t id : e.work_ids) {
        auto it = works.find(id);
        if (it == works.end()) continue;
        Header h = it->second.header;
        if (e.version) put_le32(h.data(), (get_le32(h.data()) & ~it->second.version_mask) | e.version);
        put_le32(h.data() + 76, e.nonce);
        if (U256::from_hash(pow_hash(drv->algorithm(), h)) <= it->second.target) ok = true;
        if (ok) break;
      }
      ok ? ++good : ++bad;
      if (ok) {
        if (good_by_chip.size() <= e.chip) good_by_chip.resize(e.chip + 1);
        ++good_by_chip[e.chip];
      }
    }
    now += 0.01;
  }
  uint8_t send(const BoardWork& w) {
    uint8_t id = drv->send_work(w);
    works[id] = w;
    return id;
  }
};

U256 scale(const U256& t, double s) { return U256::from_double(t.to_double() * s); }
}  // namespace

TEST_CASE("BM1370 driver against its emulator: enumeration, work, version rolling, faults") {
  EmulatorOptions eo;
  eo.driver = "bm1370";
  eo.chips = 3;
  eo.hashrate = 200000;
  eo.difficulty_scale = double(1u << 24);
  eo.missing_chip = 2;
  eo.fault_crc_every = 7;
  eo.fault_invalid_every = 11;
  Loop l;
  l.drv = make_driver({"bm1370", 3, 490, 1000000});
  l.emu = Emulator::make(eo);
  l.drv->start(0);
  for (int i = 0; i < 100 && !l.drv->ready(); ++i) l.pump();
  REQUIRE(l.drv->ready());
  l.pump();  // the rest of the init reaches the chips
  CHECK(l.drv->chips_found() == 2);  // the missing chip never answered
  CHECK(l.detail == "2 of 3 chips answered");
  CHECK(l.emu->stats().chips_addressed == 2);
  CHECK(std::abs(l.emu->stats().frequency - 490) < 6);
  CHECK(l.emu->stats().baud_register == *bm13xx::baud_register(1000000));
  BoardWork w;
  w.header = sample_header(1);
  w.target = target_from_difficulty(Algorithm::kSha256d, 1);
  w.version_mask = 0x1fffe000;
  // The host validates against the chip's own target, times the test scale.
  w.target = scale(l.drv->chip_target(w.target), eo.difficulty_scale);
  l.send(w);
  for (int i = 0; i < 400 && l.good < 30; ++i) l.pump();
  CHECK(l.good >= 30);
  CHECK(l.bad >= 1);             // the invalid nonces came back as such
  CHECK(l.crc >= 1);             // bad CRCs were dropped, not read as nonces
  CHECK(l.emu->stats().bad_frames == 0);
  CHECK(l.emu->stats().version_mask == 0x1fffe000);
  CHECK(l.emu->stats().invalid_nonces >= l.bad);
  // Per chip (address bits of the nonce): what the driver attributed is what
  // each chip found, less the replies a bad CRC dropped.
  const auto& found = l.emu->stats().nonces_by_chip;
  REQUIRE(found.size() == 2);
  REQUIRE(l.good_by_chip.size() == 2);
  uint64_t lost = 0;
  for (size_t c = 0; c < 2; ++c) {
    CHECK(l.good_by_chip[c] <= found[c]);
    CHECK(l.good_by_chip[c] >= 10);
    lost += found[c] - l.good_by_chip[c];
  }
  CHECK(lost <= l.emu->stats().crc_faults);
}

TEST_CASE("Zeus and GC3355 drivers against their emulators") {
  for (std::string name : {"zeus", "gc3355"}) {
    CAPTURE(name);
    EmulatorOptions eo;
    eo.driver = name;
    eo.chips = 4;
    eo.hashrate = 4000;
    eo.difficulty_scale = name == "zeus" ? 4096 : 1;
    eo.fault_junk_every = name == "gc3355" ? 5 : 0;
    eo.fault_invalid_every = 6;
    Loop l;
    l.drv = make_driver({name, 4, 300, 115200});
    l.emu = Emulator::make(eo);
    l.drv->start(0);
    for (int i = 0; i < 3000 && !l.drv->ready(); ++i) l.pump();
    REQUIRE(l.drv->ready());
    BoardWork w;
    w.header = sample_header(2);
    U256 share = target_from_difficulty(Algorithm::kScrypt, 1.0 / 4096);
    w.target = scale(l.drv->chip_target(share), eo.difficulty_scale);
    if (name == "gc3355") w.target = l.drv->chip_target(share);
    l.send(w);
    for (int i = 0; i < 1000 && l.good < 12; ++i) l.pump();
    CHECK(l.good >= 12);
    CHECK(l.bad >= 1);
    if (name == "gc3355") CHECK(l.junk >= 1);
    // A new work: nonces of the old one still check out against it.
    w.header = sample_header(77);
    l.send(w);
    unsigned before = l.good;
    for (int i = 0; i < 1000 && l.good < before + 5; ++i) l.pump();
    CHECK(l.good >= before + 5);
    // Per chip, the driver attributes every valid nonce to the chip that
    // really found it (Zeus: core bits, then the chip's share of 29 bits;
    // GC3355: N / (0xffffffff / chips)).
    CHECK(l.good_by_chip == l.emu->stats().nonces_by_chip);
    CHECK(l.good_by_chip.size() == 4);
  }
}

TEST_CASE("GC3355: unpaced writes corrupt the board; the driver's pauses keep it working") {
  for (bool paced : {true, false}) {
    CAPTURE(paced);
    EmulatorOptions eo;
    eo.driver = "gc3355";
    eo.chips = 5;
    eo.hashrate = 4000;
    eo.min_work_gap = 0.1;  // the datasheet's wait before a new transaction
    Loop l;
    l.honour_pauses = paced;
    l.drv = make_driver({"gc3355", 5, 600, 115200});
    l.emu = Emulator::make(eo);
    l.drv->start(0);
    for (int i = 0; i < 100 && !l.drv->ready(); ++i) l.pump();
    REQUIRE(l.drv->ready());
    BoardWork w;
    w.header = sample_header(5);
    w.target = target_from_difficulty(Algorithm::kScrypt, 1.0 / 4096);
    l.send(w);
    for (int i = 0; i < 300 && l.good < 5; ++i) l.pump();
    CHECK(l.emu->stats().chips_addressed == 5);
    CHECK(l.emu->stats().sha2_off);
    CHECK(l.emu->stats().frequency == 600);
    if (paced) {
      CHECK(l.good >= 5);
      CHECK(l.emu->stats().bad_frames == 0);
      CHECK(l.emu->stats().paced_work == 1);
    } else {
      CHECK(l.good == 0);
      CHECK(l.emu->stats().bad_frames == 1);  // the work packet landed in corrupted registers
      CHECK(l.emu->stats().jobs == 0);
    }
  }
}

TEST_CASE("Serial ports: raw, non-standard baud rates through termios2, no modem lines on a pty") {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  REQUIRE(master >= 0);
  REQUIRE(grantpt(master) == 0);
  REQUIRE(unlockpt(master) == 0);
  std::string slave = ptsname(master);
  std::string err;
  int fd = open_serial(slave, 3125000, err);  // BM1370's top rate: no Bxxx constant exists for it
  REQUIRE_MESSAGE(fd >= 0, err);
  CHECK(serial_baud(fd) == 3125000u);
  CHECK(serial_baud(master) == 3125000u);  // what an emulator sees on its side
  CHECK(set_serial_baud(fd, 115200, err));
  CHECK(serial_baud(master) == 115200u);
  CHECK_FALSE(set_modem_lines(fd, true, true));  // a pty has no DTR/RTS: refused, not fatal
  // Raw: every byte value passes unchanged, both ways.
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(char(i));
  REQUIRE(::write(master, all.data(), all.size()) == 256);
  std::string got;
  char buf[512];
  for (int i = 0; i < 100 && got.size() < 256; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, size_t(n));
    else usleep(1000);
  }
  CHECK(got == all);
  ::close(fd);
  CHECK(open_serial("/nonexistent/ttyUSB9", 115200, err) == -1);
  CHECK(err.find("/nonexistent/ttyUSB9") != std::string::npos);
  int notty = ::open("/dev/null", O_RDWR);
  ::close(notty);
  CHECK(open_serial("/dev/null", 115200, err) == -1);
  CHECK(err.find("not a tty") != std::string::npos);
  ::close(master);
}
