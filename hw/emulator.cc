#include "hw/emulator.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <sstream>
#include <thread>

#include "hashing/bytes.h"
#include "hw/bm13xx.h"
#include "hw/gc3355.h"
#include "hw/zeus.h"

namespace hashgate::hw {

Hash256 openssl_pow(Algorithm algo, const Header& h) {
  Hash256 out{};
  if (algo == Algorithm::kSha256d) {
    uint8_t first[32];
    SHA256(h.data(), h.size(), first);
    SHA256(first, sizeof first, out.data());
  } else {
    EVP_PBE_scrypt(reinterpret_cast<const char*>(h.data()), h.size(), h.data(), h.size(), 1024, 1, 1, 0, out.data(),
                   out.size());
  }
  return out;
}

std::string EmulatorStats::to_json() const {
  std::ostringstream s;
  s << "{\"frames\":" << frames << ",\"bad_frames\":" << bad_frames << ",\"jobs\":" << jobs << ",\"hashes\":" << hashes
    << ",\"nonces\":" << nonces << ",\"stale_nonces\":" << stale_nonces << ",\"invalid_nonces\":" << invalid_nonces
    << ",\"crc_faults\":" << crc_faults << ",\"junk_faults\":" << junk_faults << ",\"inits\":" << inits
    << ",\"chips_addressed\":" << chips_addressed << ",\"frequency\":" << frequency
    << ",\"baud_register\":" << baud_register << ",\"ticket_difficulty\":" << ticket_difficulty
    << ",\"version_mask\":" << version_mask << ",\"min_frequency\":" << min_frequency
    << ",\"sha2_off\":" << (sha2_off ? "true" : "false") << ",\"paced_work\":" << paced_work
    << ",\"unpaced_work\":" << unpaced_work << ",\"self_test_nonces\":" << self_test_nonces << ",\"nonces_by_chip\":[";
  for (size_t i = 0; i < nonces_by_chip.size(); ++i) s << (i ? "," : "") << nonces_by_chip[i];
  s << "]" << ",\"silent\":" << (silent ? "true" : "false") << "}";
  return s.str();
}

std::string Emulator::junk_before(std::string reply) {
  ++replies_;
  if (o_.fault_junk_every && replies_ % o_.fault_junk_every == 0) {
    ++stats_.junk_faults;
    return std::string("\x13\x37\x00\x42", 4) + reply;
  }
  return reply;
}

uint64_t Emulator::budget(double now) {
  if (last_poll_ < 0) last_poll_ = now;
  double dt = std::min(now - last_poll_, 0.2);
  last_poll_ = now;
  carry_ += dt * o_.hashrate;
  uint64_t n = uint64_t(carry_);
  carry_ -= double(n);
  return n;
}

bool Emulator::wrong_nonce() {
  ++reported_;
  return o_.fault_invalid_every && reported_ % o_.fault_invalid_every == 0;
}

namespace {

U256 scaled(const U256& t, double scale) {
  if (scale == 1) return t;
  double v = t.to_double() * scale;
  return v >= U256::max().to_double() ? U256::max() : U256::from_double(v);
}

// Work a chip set is searching: the header, where each chip is in its range.
struct ActiveWork {
  uint8_t id = 0;
  uint32_t tag = 0;  // GC3355: the 32-bit work id its replies echo
  bool self_test = false;  // a host's known-answer work (Zeus's clock ramp): hits not counted as nonces
  Header header{};
  U256 target;
  std::vector<uint32_t> next;  // per chip: the next nonce (or counter) to try
  double until = 1e300;        // stale overlap: hashed until then
};

// What every emulated chip set does with its work: each chip walks its own
// range, hashes (OpenSSL), and reports hits in the protocol's reply format.
// After a new work arrives the chips finish the old one for a moment, so
// replies naming the previous work come in after the new one, as on real
// boards. The protocols differ only in where the counter goes in the
// header and what a reply looks like.
class Scanner : public Emulator {
 public:
  std::string poll(double now) override {
    std::string out = std::move(pending_);
    pending_.clear();
    uint64_t n = budget(now);
    if (stats_.silent || works_.empty()) return out;
    if (o_.silent_after > 0 && !went_silent_ && working_since_ >= 0 && now - working_since_ >= o_.silent_after) {
      went_silent_ = true;
      stats_.silent = true;
      return out;
    }
    while (works_.size() > 1 && works_.front().until < now) works_.pop_front();
    unsigned lanes = std::min<unsigned>(chips_hashing(), unsigned(works_.front().next.size()));
    for (uint64_t i = 0; lanes && i < n; ++i) {
      ActiveWork& w = works_.front();  // during the overlap: the old work
      // Round robin across polls: a poll's budget can be smaller than the lane count.
      unsigned chip = unsigned(lane_cursor_++ % lanes);
      if (chip_idle(chip)) continue;
      uint32_t c = w.next[chip];
      w.next[chip] = step(c);
      Header h = w.header;
      place(h, w, c);
      ++stats_.hashes;
      if (!(U256::from_hash(openssl_pow(algo_, h)) <= w.target)) continue;
      uint32_t reported = c;
      if (wrong_nonce()) {
        // Corrupted until it truly misses (a flipped bit can land on another hit).
        reported = corrupt(c);
        for (uint32_t flip = 1; flip && hits(w, reported); flip <<= 1) reported = corrupt(c) ^ flip;
        ++stats_.invalid_nonces;
      } else if (w.self_test) {
        ++stats_.self_test_nonces;
      } else {
        ++stats_.nonces;
        unsigned found_by = chip_of_lane(chip);
        if (stats_.nonces_by_chip.size() <= found_by) stats_.nonces_by_chip.resize(found_by + 1);
        ++stats_.nonces_by_chip[found_by];
        if (works_.size() > 1) ++stats_.stale_nonces;
      }
      out += junk_before(reply(w, c, reported));
    }
    return out;
  }

 protected:
  Scanner(EmulatorOptions o, Algorithm algo) : Emulator(std::move(o)), algo_(algo) {}
  void start_work(ActiveWork w, double now) {
    ++stats_.jobs;
    if (working_since_ < 0) working_since_ = now;
    if (!works_.empty()) works_.back().until = now + o_.stale_overlap_seconds;
    while (works_.size() > 1) works_.pop_front();
    works_.push_back(std::move(w));
  }
  virtual unsigned chips_hashing() const { return o_.chips; }
  virtual bool chip_idle(unsigned chip) const { return int(chip) == o_.missing_chip; }
  // The chip a hashing lane belongs to (Zeus: eight cores a chip).
  virtual unsigned chip_of_lane(unsigned lane) const { return lane; }
  // A lane's next counter (BM13xx: the count wraps inside its 17 bits).
  virtual uint32_t step(uint32_t c) const { return c + 1; }
  // Puts chip counter `c` (and whatever else the protocol varies) into `h`.
  virtual void place(Header& h, const ActiveWork& w, uint32_t c) const = 0;
  // The wire reply for a hit at counter `c`, reporting `reported` (which a fault may have changed).
  virtual std::string reply(const ActiveWork& w, uint32_t c, uint32_t reported) = 0;
  virtual uint32_t corrupt(uint32_t c) const { return c ^ 0x00000100; }

  std::string pending_;
  std::deque<ActiveWork> works_;

 private:
  bool hits(const ActiveWork& w, uint32_t c) {
    Header h = w.header;
    place(h, w, c);
    return U256::from_hash(openssl_pow(algo_, h)) <= w.target;
  }
  Algorithm algo_;
  uint64_t lane_cursor_ = 0;
  bool went_silent_ = false;
};

// ---------------------------------------------------------------- BM13xx
class Bm13xxEmulator final : public Scanner {
 public:
  explicit Bm13xxEmulator(EmulatorOptions o) : Scanner(std::move(o), Algorithm::kSha256d) {
    chip_id_ = o_.driver == "bm1366" ? 0x1366 : o_.driver == "bm1368" ? 0x1368 : 0x1370;
  }

  void on_bytes(std::span<const uint8_t> bytes, double now) override {
    rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    size_t pos = 0;
    while (rx_.size() - pos >= 4) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(rx_.data()) + pos;
      if (p[0] != 0x55 || p[1] != 0xaa) {
        ++stats_.bad_frames;
        ++pos;
        continue;
      }
      size_t len = size_t(p[3]) + 2;
      bool job = (p[2] & 0x60) == 0x20;
      if ((job && len != 88) || (!job && len != 7 && len != 11)) {
        ++stats_.bad_frames;
        pos += 2;
        continue;
      }
      if (rx_.size() - pos < len) break;
      bool ok;
      if (job) {
        uint16_t crc = bm13xx::crc16({p + 2, len - 4});
        ok = (uint16_t(p[len - 2]) << 8 | p[len - 1]) == crc;
      } else {
        ok = bm13xx::crc5({p + 2, len - 3}, (len - 3) * 8) == p[len - 1];
      }
      if (!ok) {
        ++stats_.bad_frames;
        pos += len;
        continue;
      }
      ++stats_.frames;
      if (job) {
        on_job(p, now);
      } else {
        on_command(p, len);
      }
      pos += len;
    }
    rx_.erase(0, pos);
  }

 private:
  // The missing chip never took an address: every addressed chip hashes.
  // Lanes: kCores main cores on each addressed chip. A lane's counter is
  // the byte-swapped nonce (core << 25 | address << 17 | count): the chip's
  // address and core travel in the nonce itself, as ESP-Miner reads them.
  static constexpr unsigned kCores = 8;
  unsigned chips_hashing() const override { return unsigned(addresses_.size()) * kCores; }
  bool chip_idle(unsigned) const override { return false; }
  unsigned chip_of_lane(unsigned lane) const override { return lane / kCores; }
  uint32_t step(uint32_t c) const override {
    // The count fills 17 bits; then the lane moves on to core + kCores.
    if (((c + 1) & 0x1ffff) != 0) return c + 1;
    return (c & 0x01fe0000) | ((((c >> 25) + kCores) & 0x7f) << 25);
  }
  void place(Header& h, const ActiveWork& w, uint32_t c) const override {
    put_le32(h.data(), (get_le32(h.data()) & ~version_mask_) | version_bits(w.id));
    put_le32(h.data() + 76, __builtin_bswap32(c));
  }
  uint32_t corrupt(uint32_t c) const override { return c ^ 0x00000100; }
  std::string reply(const ActiveWork& w, uint32_t c, uint32_t reported) override {
    std::string r = bm13xx::nonce_reply(__builtin_bswap32(reported), 0, w.id, uint8_t(c & 0x0f), version_bits(w.id));
    if (o_.fault_crc_every && replies_ % o_.fault_crc_every == o_.fault_crc_every - 1) {
      r.back() = char(r.back() ^ 0x01);
      ++stats_.crc_faults;
    }
    return r;
  }

  uint32_t version_bits(uint8_t job_id) const {
    // Each job rolls a different pattern inside the mask, so rolled versions are exercised.
    uint32_t mask = version_mask_;
    if (!mask) return 0;
    uint32_t want = (uint32_t(job_id / 8) + 1) << 13;
    return want & mask;
  }

  void on_command(const uint8_t* p, size_t len) {
    uint8_t cmd = p[2] & 0x0f;
    bool all = p[2] & 0x10;
    uint8_t chip = p[4], reg = p[5];
    if (cmd == 2 && reg == bm13xx::kRegChipId) {
      if (all) {
        // Enumeration: the chain restarts; every present chip answers.
        ++stats_.inits;
        stats_.silent = false;
        addresses_.clear();
        works_.clear();
        inactive_ = false;
        for (unsigned c = 0; c < o_.chips; ++c) {
          if (int(c) == o_.missing_chip) continue;
          pending_ += junk_before(bm13xx::register_reply(uint32_t(chip_id_) << 16, 0, 0));
        }
      }
      return;
    }
    if (cmd == 3) {
      inactive_ = true;
      return;
    }
    if (cmd == 0) {
      if (inactive_ && addresses_.size() < o_.chips - (o_.missing_chip >= 0 ? 1 : 0)) addresses_.push_back(chip);
      stats_.chips_addressed = unsigned(addresses_.size());
      return;
    }
    if (cmd == 1 && len == 11) {
      uint32_t value = uint32_t(p[6]) << 24 | uint32_t(p[7]) << 16 | uint32_t(p[8]) << 8 | p[9];
      if (all) registers_[reg] = value;
      switch (reg) {
        case bm13xx::kRegPll: stats_.frequency = bm13xx::pll_frequency(value); break;
        case bm13xx::kRegTicketMask: stats_.ticket_difficulty = bm13xx::ticket_difficulty(value); break;
        case bm13xx::kRegVersionMask:
          version_mask_ = (value & 0xffff) << 13;
          stats_.version_mask = version_mask_;
          break;
        case bm13xx::kRegUartBaud: stats_.baud_register = value; break;
        default: break;
      }
    }
  }

  void on_job(const uint8_t* p, double now) {
    std::span<const uint8_t, 82> body(p + 4, 82);
    ActiveWork w;
    w.id = body[0];
    w.header = bm13xx::header_from_job(body);
    double diff = stats_.ticket_difficulty > 0 ? stats_.ticket_difficulty : 1;
    w.target = scaled(target_from_difficulty(Algorithm::kSha256d, diff), o_.difficulty_scale);
    unsigned chips = std::max<unsigned>(1, unsigned(addresses_.size()));
    for (unsigned c = 0; c < chips; ++c)
      for (unsigned core = 0; core < kCores; ++core)
        w.next.push_back(bm13xx::lane_start(addresses_.empty() ? 0 : addresses_[c], core));
    start_work(std::move(w), now);
  }

  std::string rx_;
  uint16_t chip_id_;
  bool inactive_ = false;
  std::vector<uint8_t> addresses_;
  std::map<uint8_t, uint32_t> registers_;
  uint32_t version_mask_ = 0;
};

// ---------------------------------------------------------------- Zeus
// Each chip has 8 cores. A core's lane is the chip counter's top three bits
// (core 0..7), and inside the lower 29 bits chip k starts at
// k * (0x1fffffff / chips): the split Zeus's own host code attributes by.
class ZeusEmulator final : public Scanner {
 public:
  static constexpr unsigned kCores = 8;
  explicit ZeusEmulator(EmulatorOptions o) : Scanner(std::move(o), Algorithm::kScrypt) {}
  ~ZeusEmulator() override { stop_golden(); }

  void on_bytes(std::span<const uint8_t> bytes, double now) override {
    rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    size_t pos = 0;
    for (; rx_.size() - pos >= 84; pos += 84) {
      auto pk = zeus::parse_packet(std::span<const uint8_t, 84>(reinterpret_cast<const uint8_t*>(rx_.data()) + pos, 84));
      if (!pk.clock_ok) {
        ++stats_.bad_frames;
        continue;
      }
      ++stats_.frames;
      stats_.frequency = pk.clock * 3.0 / 2.0;
      if (stats_.min_frequency == 0 || stats_.frequency < stats_.min_frequency) stats_.min_frequency = stats_.frequency;
      Header plain = pk.header;
      put_le32(plain.data() + 76, 0);
      Header golden = zeus::golden_header();
      put_le32(golden.data() + 76, 0);
      if (plain == golden) {
        // The self-test: a real chip answers within a fraction of a second.
        // The search (thousands of scrypt hashes) runs on its own thread so
        // the I/O loop keeps reading and writing meanwhile.
        ++stats_.inits;
        stats_.silent = false;
        works_.clear();
        start_golden(pk.header, zeus::target_of(pk.target), pk.start_counter);
        continue;
      }
      stop_golden();  // new work replaces the self-test, as on the chips
      ActiveWork w;
      w.header = pk.header;
      Header ramp = zeus::ramp_header();
      put_le32(ramp.data() + 76, 0);
      w.self_test = plain == ramp;
      w.target = scaled(zeus::target_of(pk.target), o_.difficulty_scale);
      for (unsigned chip = 0; chip < o_.chips; ++chip)
        for (unsigned core = 0; core < kCores; ++core) w.next.push_back(pk.start_counter + lane_start(chip, core));
      start_work(std::move(w), now);
    }
    rx_.erase(0, pos);
  }

  std::string poll(double now) override {
    if (golden_ && golden_->done.load()) {
      if (golden_->thread.joinable()) golden_->thread.join();
      stats_.hashes += golden_->hashes;
      if (golden_->found) {
        uint8_t r[4];
        put_be32(r, golden_->counter);
        pending_.append(reinterpret_cast<const char*>(r), 4);
      }
      golden_.reset();
    }
    return Scanner::poll(now);
  }

  void settle() override {
    if (golden_ && golden_->thread.joinable()) golden_->thread.join();
  }

 private:
  uint32_t lane_start(unsigned chip, unsigned core) const {
    return uint32_t(core) << 29 | (o_.chips > 1 ? chip * (0x1fffffffu / o_.chips) : 0);
  }
  unsigned chips_hashing() const override { return o_.chips * kCores; }
  bool chip_idle(unsigned lane) const override { return int(lane / kCores) == o_.missing_chip; }
  unsigned chip_of_lane(unsigned lane) const override { return lane / kCores; }
  void place(Header& h, const ActiveWork&, uint32_t c) const override { put_be32(h.data() + 76, c); }
  std::string reply(const ActiveWork&, uint32_t, uint32_t reported) override {
    uint8_t r[4];
    put_be32(r, reported);
    return std::string(reinterpret_cast<const char*>(r), 4);
  }

  struct Golden {
    std::thread thread;
    std::atomic<bool> done{false}, cancel{false};
    bool found = false;  // written by the thread before done
    uint32_t counter = 0;
    uint64_t hashes = 0;
  };

  void start_golden(Header header, U256 target, uint32_t start) {
    stop_golden();
    golden_ = std::make_unique<Golden>();
    Golden* g = golden_.get();
    // Core 0 of chip 0 starts at the packet's counter; it is the one that
    // meets the golden nonce 0xd26 hashes later.
    g->thread = std::thread([g, header, target, start] {
      Header h = header;
      for (uint32_t c = start; c < start + 0x100000 && !g->cancel.load(std::memory_order_relaxed); ++c) {
        put_be32(h.data() + 76, c);
        ++g->hashes;
        if (U256::from_hash(openssl_pow(Algorithm::kScrypt, h)) <= target) {
          g->found = true;
          g->counter = c;
          break;
        }
      }
      g->done.store(true);
    });
  }
  void stop_golden() {
    if (!golden_) return;
    golden_->cancel.store(true);
    if (golden_->thread.joinable()) golden_->thread.join();
    golden_.reset();
  }

  std::string rx_;
  std::unique_ptr<Golden> golden_;
};

// ---------------------------------------------------------------- GC3355
// Reads packets the way the chips do (hw/gc3355.h): the header area with its
// words swapped back, the count N hashed as the header nonce's big-endian
// bytes, reported little-endian with the packet's work id. A host that sends
// the raw header or reads N the other way gets nonces for a header it never
// had: hardware errors, as from a real board.
class Gc3355Emulator final : public Scanner {
 public:
  explicit Gc3355Emulator(EmulatorOptions o) : Scanner(std::move(o), Algorithm::kScrypt) {}

  void on_bytes(std::span<const uint8_t> bytes, double now) override {
    rx_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    size_t pos = 0;
    while (rx_.size() - pos >= 4) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(rx_.data()) + pos;
      size_t avail = rx_.size() - pos;
      if (p[0] != 0x55 || p[1] != 0xaa) {
        ++stats_.bad_frames;
        ++pos;
        continue;
      }
      size_t len = 8;
      if (p[2] == 0xc0) len = 16;
      else if (p[2] == 0x1f && p[3] != 0x28) len = 156;
      else if (p[2] == 0xef && p[3] == 0x02) {
        // SHA-2 gating: 8 bytes for one chip, or the 24-byte all-chips form.
        if (avail < 10) break;
        len = (p[8] == 0x55 && p[9] == 0xaa) ? 8 : 24;
      }
      if (avail < len) break;
      ++stats_.frames;
      double gap = last_command_ < 0 ? 1e9 : now - last_command_;
      last_command_ = now;
      if (len == 16) {
        if (std::memcmp(p + 4, "\x80\x80\x80\x80", 4) == 0) {
          // GCP reset: the chips start over (a hung chip comes back here).
          ++stats_.inits;
          stats_.silent = false;
          works_.clear();
        } else if (std::memcmp(p + 4, "\x90\x90\x90\x90", 4) == 0) {
          // The board's MCU answers even when its chips hang.
          pending_ += junk_before(gc3355::firmware_reply(gc3355::kFirmwareOrb));
        } else if (std::memcmp(p + 4, "\xc0\xc0\xc0\xc0", 4) == 0) {
          stats_.chips_addressed = get_le32(p + 8);
        }
      } else if (len == 24) {
        stats_.sha2_off = std::all_of(p + 4, p + 24, [](uint8_t b) { return b == 0; });
      } else if (len == 156) {
        on_work(std::span<const uint8_t, 156>(p, 156), gap, now);
      } else if (p[2] == 0xef && p[3] == 0x00) {
        stats_.frequency = gc3355::pll_frequency(get_le32(p + 4));
        if (stats_.min_frequency == 0 || stats_.frequency < stats_.min_frequency) stats_.min_frequency = stats_.frequency;
      } else if (p[2] == 0x0f && p[3] == 0xff) {
        stats_.baud_register = get_le32(p + 4);  // the SHA-2 UART word
      }
      pos += len;
    }
    rx_.erase(0, pos);
  }

 private:
  void on_work(std::span<const uint8_t, 156> p, double gap, double now) {
    auto pk = gc3355::parse_packet(p);
    // Byte 3 selects a task slot the scrypt unit never starts from; a
    // packet that follows its reset too closely lands in corrupted registers.
    bool corrupted = o_.min_work_gap > 0 && gap < o_.min_work_gap;
    if (pk.task != 0 || corrupted) {
      ++stats_.bad_frames;
      return;
    }
    ++(gap >= 0.05 ? stats_.paced_work : stats_.unpaced_work);
    ActiveWork w;
    w.tag = pk.work_id;
    w.header = pk.header;
    w.target = scaled(pk.target, o_.difficulty_scale);
    uint64_t range = uint64_t(pk.nonce_max) - pk.nonce_min;
    for (unsigned c = 0; c < o_.chips; ++c)
      w.next.push_back(uint32_t(pk.nonce_min + (o_.chips > 1 ? c * (range / o_.chips) : 0)));
    start_work(std::move(w), now);
  }
  void place(Header& h, const ActiveWork&, uint32_t n) const override { put_le32(h.data() + 76, gc3355::header_nonce_of(n)); }
  std::string reply(const ActiveWork& w, uint32_t, uint32_t reported) override {
    return gc3355::nonce_reply(reported, w.tag);
  }

  std::string rx_;
  double last_command_ = -1;
};

}  // namespace

std::unique_ptr<Emulator> Emulator::make(const EmulatorOptions& o) {
  if (o.chips == 0) return nullptr;
  if (o.driver == "bm1366" || o.driver == "bm1368" || o.driver == "bm1370") return std::make_unique<Bm13xxEmulator>(o);
  if (o.driver == "zeus") return std::make_unique<ZeusEmulator>(o);
  if (o.driver == "gc3355") return std::make_unique<Gc3355Emulator>(o);
  return nullptr;
}

}  // namespace hashgate::hw
