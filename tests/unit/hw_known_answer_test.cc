// Local boards against third-party bytes: GC3355 work packets and replies
// exactly as bfgminer 5.5.0 sent and accepted them
// (tests/vectors/gc3355_bfgminer.json), and Zeus's host facts (clock ramp,
// chip and core bits, integer difficulty). Every hash here is OpenSSL's
// (hw::openssl_pow), never hashing/.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "hashing/bytes.h"
#include "hw/emulator.h"
#include "hw/gc3355.h"
#include "hw/zeus.h"
#include "vectors.h"

using namespace hashgate;
using namespace hashgate::hw;

namespace {

std::string sv(simdjson::dom::element e) { return std::string(std::string_view(e)); }
std::string raw(const std::string& hex) {
  auto b = hex_decode(hex);
  REQUIRE(b);
  return std::string(b->begin(), b->end());
}
std::string hex(const std::string& s) { return hex_encode({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }
std::span<const uint8_t> span(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

struct GcVector {
  std::string packet, reply;
  Header header{};  // the true header, nonce included
  U256 target;
  uint32_t n = 0;
  unsigned chips = 0, chip = 0;
};

std::vector<GcVector> gc_vectors() {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(test::vector_path("gc3355_bfgminer.json"));
  std::vector<GcVector> out;
  for (simdjson::dom::element v : doc["vectors"].get_array()) {
    GcVector g;
    g.packet = raw(sv(v["work_packet"]));
    g.reply = raw(sv(v["reply"]));
    std::string h = raw(sv(v["header"]));
    REQUIRE(h.size() == 80);
    std::memcpy(g.header.data(), h.data(), 80);
    std::string t = raw(sv(v["target"]));  // big-endian digits
    uint8_t le[32];
    for (int i = 0; i < 32; ++i) le[i] = uint8_t(t[31 - i]);
    g.target = U256::from_le_bytes(le);
    g.n = uint32_t(*hex_u32(sv(v["nonce_value_le_in_reply"]).substr(2)));
    g.chips = unsigned(int64_t(v["chips"]));
    g.chip = unsigned(int64_t(v["chip_by_nonce_value"]));
    out.push_back(std::move(g));
  }
  REQUIRE(out.size() == 3);
  return out;
}

bool meets(const Header& h, const U256& target) {
  return U256::from_hash(openssl_pow(Algorithm::kScrypt, h)) <= target;
}

Header without_nonce(Header h) {
  put_le32(h.data() + 76, 0);
  return h;
}

// A driver past its firmware probe, with `work` sent: the id it returned.
uint8_t ready_driver(gc3355::Gc3355Driver& d, const Header& header, const U256& target) {
  d.start(0);
  d.on_bytes(span(gc3355::firmware_reply(gc3355::kFirmwareOrb)), 0.1);
  REQUIRE(d.ready());
  d.take_events();
  BoardWork w;
  w.header = header;
  w.target = target;
  uint8_t id = d.send_work(w);
  d.take_actions();
  return id;
}

// Replies of an emulator given `packet` until it sent `want` nonces.
std::vector<std::string> emulate(const std::string& packet, unsigned chips, double scale, unsigned want) {
  EmulatorOptions o;
  o.driver = "gc3355";
  o.chips = chips;
  o.hashrate = 2000;
  o.difficulty_scale = scale;
  auto emu = Emulator::make(o);
  emu->on_bytes(span(packet), 0);
  std::vector<std::string> replies;
  std::string buf;
  for (double t = 0.01; t < 60 && replies.size() < want; t += 0.01) {
    buf += emu->poll(t);
    while (buf.size() >= 12) {
      replies.push_back(buf.substr(0, 12));
      buf.erase(0, 12);
    }
  }
  return replies;
}

}  // namespace

TEST_CASE("GC3355 known answers (bfgminer 5.5.0): the driver's packets and its reading of the replies") {
  for (const GcVector& v : gc_vectors()) {
    // The header OpenSSL's scrypt puts under the target is the true one.
    CHECK(meets(v.header, v.target));
    // The packet, byte for byte, from the header and target: all but the
    // last four bytes (bfgminer left its work-id area uninitialised; ours
    // carries the id that GridSeed's driver puts there).
    std::string ours = gc3355::work_packet(7, without_nonce(v.header), v.target);
    REQUIRE(ours.size() == 156);
    CHECK(hex(ours.substr(0, 152)) == hex(v.packet.substr(0, 152)));
    CHECK(get_le32(span(ours).data() + 152) == 7u);
    CHECK(uint8_t(ours[3]) == 0);  // task slot 0, as every host sends it

    // The driver takes bfgminer's accepted reply to the true header's nonce,
    // and to the chip bfgminer attributes it to.
    gc3355::Gc3355Driver d(v.chips, 600);
    uint8_t id = ready_driver(d, without_nonce(v.header), v.target);
    d.on_bytes(span(v.reply), 1);
    auto ev = d.take_events();
    REQUIRE(ev.size() == 1);
    REQUIRE(ev[0].kind == DriverEvent::kNonce);
    CHECK(ev[0].work_ids.at(0) == id);  // the reply echoes no id: the current work first
    CHECK(get_le32(span(v.reply).data() + 4) == v.n);
    Header h = without_nonce(v.header);
    put_le32(h.data() + 76, ev[0].nonce);
    CHECK(h == v.header);
    CHECK(meets(h, v.target));
    CHECK(ev[0].chip == v.chip);
  }
}

TEST_CASE("GC3355 known answers: the emulator, given bfgminer's packets, finds nonces under the true header") {
  for (const GcVector& v : gc_vectors()) {
    // One chip whose range ends at the accepted nonce (a host sets the range
    // in bytes 144..151): the scan reaches it within 17 hashes.
    std::string p = v.packet;
    put_le32(reinterpret_cast<uint8_t*>(p.data()) + 144, v.n - 16);
    put_le32(reinterpret_cast<uint8_t*>(p.data()) + 148, v.n + 16);
    auto replies = emulate(p, 1, 1, 1);
    REQUIRE(replies.size() == 1);
    const uint8_t* r = span(replies[0]).data();
    CHECK(r[0] == 0x55);
    CHECK(r[1] == 0x20);
    uint32_t n = get_le32(r + 4);
    CHECK(n <= v.n);  // the first hit of the range: the accepted nonce or an earlier one
    CHECK(get_le32(r + 8) == get_le32(span(p).data() + 152));  // the work-id area comes back as sent
    Header h = v.header;
    put_be32(h.data() + 76, n);
    CHECK(meets(h, v.target));
    if (n == v.n) CHECK(replies[0].substr(0, 8) == v.reply.substr(0, 8));
  }
}

TEST_CASE("GC3355 flipped byte orders are hardware errors") {
  auto vs = gc_vectors();
  // A nonce read in the other byte order: the reply's bytes taken as the
  // header's little-endian field. OpenSSL puts none of them under the target.
  for (const GcVector& v : vs) {
    Header h = v.header;
    std::memcpy(h.data() + 76, v.reply.data() + 4, 4);
    CHECK_FALSE(meets(h, v.target));
  }
  // A packet with the raw (unswapped) header: the emulator, like a board,
  // reads the words swapped and hashes another header, so what it reports
  // fails under the true one. The correct packet, same scale: all pass.
  // (Scale 2^12: one hash in sixteen is a hit, so both runs are short.)
  const GcVector& v = vs[0];
  std::string flipped = v.packet;
  std::memcpy(flipped.data() + 68, v.header.data(), 76);
  std::memset(flipped.data() + 144, 0, 4);
  U256 easy = U256::from_double(v.target.to_double() * 4096);
  auto count_good = [&](const std::string& packet) {
    auto replies = emulate(packet, 5, 4096, 16);
    REQUIRE(replies.size() >= 16);
    replies.resize(16);
    unsigned good = 0;
    for (const std::string& r : replies) {
      Header h = without_nonce(v.header);
      put_be32(h.data() + 76, get_le32(span(r).data() + 4));
      if (meets(h, easy)) ++good;
    }
    return good;
  };
  CHECK(count_good(v.packet) == 16);
  CHECK(count_good(flipped) <= 4);  // chance passes (one in sixteen) only
  // A task slot other than 0 is refused outright (the chips never start it).
  std::string slot = v.packet;
  slot[3] = 1;
  EmulatorOptions o;
  o.driver = "gc3355";
  auto emu = Emulator::make(o);
  emu->on_bytes(span(slot), 0);
  CHECK(emu->stats().bad_frames == 1);
  CHECK(emu->stats().jobs == 0);
}

TEST_CASE("GC3355: init sequence, PLL word and firmware version as GridSeed's driver has them") {
  gc3355::Gc3355Driver d(40, 600);  // a blade
  d.start(0);
  auto a = d.take_actions();
  REQUIRE(a.size() == 2);  // the firmware probe and its pause: nothing else before the answer
  CHECK(hex(a[0].bytes) == "55aac000909090900000000001000000");
  CHECK(a[1].kind == DriverAction::kPause);
  // Firmware bytes 13 01 14 01: version 0x01140113 read little-endian.
  CHECK(hex(gc3355::firmware_reply(gc3355::kFirmwareOrb)) == "55aac0009090909013011401");
  d.on_bytes(span(raw("55aac0009090909013011401")), 0.1);
  CHECK(d.firmware() == 0x01140113u);
  auto ev = d.take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].detail == "firmware 01140113");
  std::vector<std::string> writes;
  std::vector<double> pauses;
  for (auto& x : d.take_actions()) {
    if (x.kind == DriverAction::kWrite) writes.push_back(hex(x.bytes));
    if (x.kind == DriverAction::kPause) pauses.push_back(x.seconds);
  }
  std::vector<std::string> want = {
      "55aac000808080800000000001000000",                  // chip reset
      "55aac000c0c0c0c00500000001000000",                  // sub-chips: 5, even for 40 chips
      "55aaef020000000000000000000000000000000000000000",  // SHA-2 off: one 24-byte command
      "55aaef3020000000", "55aa1f2814000000", "55aa1f2817000000",
      "55aaef000500e082",  // 600 MHz: GridSeed's table word
      "55aa0fff581400c0",  // SHA-2 UART: force start | enable | 600e6 / 115200
  };
  CHECK(writes == want);
  REQUIRE(pauses.size() == writes.size());  // one pause after every write
  CHECK(pauses[0] >= 0.2);                  // GridSeed's driver waits 200 ms after the reset
  for (double p : pauses) CHECK(p >= 0.03);
  // Work: the scrypt reset, 100 ms more, then the packet with its own id.
  BoardWork w;
  w.target = U256::max();
  uint8_t id1 = d.send_work(w);
  auto wa = d.take_actions();
  REQUIRE(wa.size() == 6);
  CHECK(hex(wa[0].bytes) == "55aa1f2816000000");
  CHECK(hex(wa[2].bytes) == "55aa1f2817000000");
  CHECK(wa[3].kind == DriverAction::kPause);
  CHECK(wa[3].seconds >= 0.13);
  CHECK(wa[4].bytes.size() == 156);
  CHECK(get_le32(span(wa[4].bytes).data() + 152) == 1u);
  uint8_t id2 = d.send_work(w);
  CHECK(id2 != id1);
  // A reply echoing the first work's id names that work alone.
  d.on_bytes(span(gc3355::nonce_reply(0x12345678, 1)), 1);
  ev = d.take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].work_ids == std::vector<uint8_t>{id1});
  CHECK(ev[0].nonce == 0x78563412u);
  // PLL words: band select (bit 31) only from 500 MHz up.
  CHECK(gc3355::pll_word(450) == 0x02200005u);
  CHECK(gc3355::pll_word(500) == 0x82600005u);
  CHECK(gc3355::pll_word(250) == 0x01200005u);
  CHECK(gc3355::pll_frequency(gc3355::pll_word(612.5)) == 612.5);
  CHECK(gc3355::pll_frequency(gc3355::pll_word(850)) == 850);
}

TEST_CASE("Zeus: clock ramp before the golden test, chip and core bits, integer difficulty") {
  zeus::ZeusDriver d(6, 328);
  d.start(0);
  std::vector<std::string> packets;
  unsigned pauses = 0;
  for (auto& a : d.take_actions()) {
    if (a.kind == DriverAction::kPause) {
      ++pauses;
      CHECK(a.seconds == 0.5);
    }
    if (a.kind == DriverAction::kWrite)
      for (size_t i = 0; i < a.bytes.size(); i += 84) packets.push_back(hex(a.bytes.substr(i, 84)));
  }
  REQUIRE(packets.size() == 5);
  CHECK(pauses == 4);
  // Zeus's own host code: its second golden body at 165 MHz (register 0x6e), then at 328 MHz (0xda).
  const std::string ramp_body =
      "0001c00278894532091be6f16a5381ad33619dacb9e6a4a6e79956aac97b51112bfb93dc450b8fc765181a344b6244d42d"
      "78625f5c39463bbfdc10405ff711dc1222dd065b015ac9c2c66e28da7202000000";
  CHECK(packets[0] == "6e91" + ramp_body);
  CHECK(packets[1] == packets[0]);
  CHECK(packets[2] == "da25" + ramp_body);
  CHECK(packets[4].substr(0, 16) == "da25000100038000");  // then the golden work
  // A counter's top three bits are the core; chips split the lower 29.
  d.on_bytes(span(raw("00038d26")), 2.1);
  REQUIRE(d.ready());
  d.take_events();
  BoardWork w;
  w.target = target_from_difficulty(Algorithm::kScrypt, 1);
  d.send_work(w);
  uint32_t span29 = 0x1fffffffu / 6;
  uint8_t r[4];
  put_be32(r, 5u << 29 | (2 * span29 + 9));
  d.on_bytes({r, 4}, 3);
  auto ev = d.take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].core == 5);
  CHECK(ev[0].chip == 2);
  CHECK(zeus::chip_of_counter(0xffffffffu, 6) == 5);
  CHECK(zeus::core_of_counter(0xffffffffu) == 7);
  CHECK(zeus::chip_of_counter(0x20000000u, 6) == 0);  // core 1 of chip 0, not "chip 1 of 6"
  // Difficulty truncated to an integer before 0xffff / d.
  CHECK(zeus::target16(1.9) == 0xffff);
  CHECK(zeus::target16(2.5) == 0x7fff);
  CHECK(zeus::target16(3) == 0x5555);
  CHECK(zeus::target16(0.25) == 0xffff);
}

TEST_CASE("Zeus emulator: the golden search runs off the caller's thread and answers 00 03 8D 26") {
  EmulatorOptions o;
  o.driver = "zeus";
  o.chips = 6;
  auto emu = Emulator::make(o);
  emu->on_bytes(span(zeus::work_packet(zeus::golden_header(), 0xda, 1, zeus::kGoldenStart)), 0);
  // on_bytes returned without hashing: the search's hashes are counted when it is collected.
  CHECK(emu->stats().hashes == 0);
  emu->settle();
  std::string out = emu->poll(0.01);
  CHECK(hex(out) == "00038d26");
  CHECK(emu->stats().hashes == zeus::kGoldenNonce - zeus::kGoldenStart + 1);
  CHECK(emu->stats().inits == 1);
}
