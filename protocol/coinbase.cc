// Coinbase parsing: a bounds-checked reader over the transaction bytes. Every
// count read from the input is checked against the bytes left before any
// storage is reserved, so a hostile length costs nothing.
#include "protocol/coinbase.h"

#include <algorithm>
#include <cstdio>

namespace hashgate {

const char* coinbase_error_name(CoinbaseError e) {
  switch (e) {
    case CoinbaseError::kTooLarge: return "too_large";
    case CoinbaseError::kTruncated: return "truncated";
    case CoinbaseError::kNonCanonicalSize: return "non_canonical_size";
    case CoinbaseError::kBadSegwitFlag: return "bad_segwit_flag";
    case CoinbaseError::kInputCount: return "input_count";
    case CoinbaseError::kNotCoinbaseInput: return "not_coinbase_input";
    case CoinbaseError::kScriptSigSize: return "script_sig_size";
    case CoinbaseError::kNoOutputs: return "no_outputs";
    case CoinbaseError::kTooManyOutputs: return "too_many_outputs";
    case CoinbaseError::kValueRange: return "value_range";
    case CoinbaseError::kWitness: return "witness";
    case CoinbaseError::kTrailingBytes: return "trailing_bytes";
    case CoinbaseError::kExtranonceSize: return "extranonce_size";
  }
  return "unknown";
}

namespace {

CoinbaseParseError fail(CoinbaseError code, size_t offset, const char* what) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "offset %zu: %s", offset, what);
  return CoinbaseParseError{code, offset, buf};
}

// Reads fields in order; the first failure sticks and later reads return
// zeros, so the parser checks ok() once per step instead of every read.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}

  bool ok() const { return !error_; }
  const CoinbaseParseError& error() const { return *error_; }
  size_t pos() const { return pos_; }
  size_t left() const { return in_.size() - pos_; }
  uint8_t peek(size_t ahead = 0) const { return pos_ + ahead < in_.size() ? in_[pos_ + ahead] : 0; }

  void set_error(CoinbaseError code, size_t offset, const char* what) {
    if (!error_) error_ = fail(code, offset, what);
  }

  bool need(size_t n, const char* what) {
    if (error_) return false;
    if (left() < n) {
      set_error(CoinbaseError::kTruncated, pos_, what);
      return false;
    }
    return true;
  }
  uint32_t u32(const char* what) {
    if (!need(4, what)) return 0;
    uint32_t v = get_le32(&in_[pos_]);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const char* what) {
    if (!need(8, what)) return 0;
    uint64_t v = uint64_t(get_le32(&in_[pos_])) | uint64_t(get_le32(&in_[pos_ + 4])) << 32;
    pos_ += 8;
    return v;
  }
  uint8_t u8(const char* what) {
    if (!need(1, what)) return 0;
    return in_[pos_++];
  }
  // Bitcoin's CompactSize, refusing the longer forms of a small number as
  // Core does (they would make two serializations of one transaction).
  uint64_t compact_size(const char* what) {
    size_t at = pos_;
    uint8_t first = u8(what);
    if (!ok()) return 0;
    uint64_t v = first;
    uint64_t min = 0;
    if (first == 0xfd) {
      if (!need(2, what)) return 0;
      v = uint64_t(in_[pos_]) | uint64_t(in_[pos_ + 1]) << 8;
      pos_ += 2;
      min = 0xfd;
    } else if (first == 0xfe) {
      v = u32(what);
      min = 0x10000;
    } else if (first == 0xff) {
      v = u64(what);
      min = 0x100000000ull;
    }
    if (ok() && v < min) set_error(CoinbaseError::kNonCanonicalSize, at, what);
    return ok() ? v : 0;
  }
  Bytes bytes(uint64_t n, const char* what) {
    if (!need(n, what)) return {};
    Bytes out(in_.begin() + pos_, in_.begin() + pos_ + n);
    pos_ += n;
    return out;
  }

 private:
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::optional<CoinbaseParseError> error_;
};

constexpr uint64_t kMaxWitnessItems = 16;

// BIP34's height push, as Core writes it (CScript() << height): OP_0,
// OP_1..OP_16, or a minimal positive CScriptNum of 1..4 bytes.
std::optional<uint32_t> bip34_height(const Bytes& script) {
  if (script.empty()) return std::nullopt;
  uint8_t op = script[0];
  if (op == 0x00) return 0;
  if (op >= 0x51 && op <= 0x60) return uint32_t(op - 0x50);
  if (op < 1 || op > 4 || script.size() < size_t(1 + op)) return std::nullopt;
  uint32_t v = 0;
  for (int i = 0; i < op; ++i) v |= uint32_t(script[1 + i]) << (8 * i);
  uint8_t last = script[op];
  if (last & 0x80) return std::nullopt;                            // negative
  if (last == 0 && (op == 1 || !(script[op - 1] & 0x80))) return std::nullopt;  // not minimal
  if (v <= 16) return std::nullopt;  // Core pushes these as OP_n, never as data
  return v;
}

// OP_RETURN, push 36, 0xaa21a9ed, then the 32-byte commitment (BIP141).
bool is_witness_commitment(const Bytes& s) {
  static constexpr uint8_t kHead[6] = {0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed};
  return s.size() >= 38 && std::equal(kHead, kHead + 6, s.begin());
}

}  // namespace

CoinbaseResult parse_coinbase(std::span<const uint8_t> tx) {
  if (tx.size() > kMaxCoinbaseBytes) return fail(CoinbaseError::kTooLarge, kMaxCoinbaseBytes, "coinbase longer than 1000000 bytes");
  Reader r(tx);
  Coinbase cb;
  cb.version = r.u32("version");
  if (r.ok() && r.peek() == 0x00 && r.left() >= 1) {
    // A zero input count is the segwit marker; the flag must be 1.
    size_t at = r.pos();
    r.u8("segwit marker");
    uint8_t flag = r.u8("segwit flag");
    if (r.ok() && flag != 0x01) r.set_error(CoinbaseError::kBadSegwitFlag, at + 1, "segwit flag is not 0x01");
    cb.segwit = true;
  }
  size_t at = r.pos();
  uint64_t inputs = r.compact_size("input count");
  if (r.ok() && inputs != 1) r.set_error(CoinbaseError::kInputCount, at, "a coinbase has exactly one input");
  at = r.pos();
  Bytes prevout = r.bytes(36, "input prevout");
  if (r.ok() && (!std::all_of(prevout.begin(), prevout.begin() + 32, [](uint8_t b) { return b == 0; }) ||
                 get_le32(&prevout[32]) != 0xffffffffu))
    r.set_error(CoinbaseError::kNotCoinbaseInput, at, "input prevout is not null (32 zero bytes, index 0xffffffff)");
  at = r.pos();
  uint64_t script_size = r.compact_size("input script size");
  if (r.ok() && (script_size < 2 || script_size > 100))
    r.set_error(CoinbaseError::kScriptSigSize, at, "input script size outside 2..100 bytes");
  cb.script_sig_offset = r.pos();
  cb.script_sig = r.bytes(script_size, "input script");
  cb.sequence = r.u32("input sequence");

  at = r.pos();
  uint64_t outputs = r.compact_size("output count");
  // An output takes at least 9 bytes (value and an empty script's size).
  if (r.ok() && outputs == 0) r.set_error(CoinbaseError::kNoOutputs, at, "no outputs");
  if (r.ok() && outputs > r.left() / 9) r.set_error(CoinbaseError::kTooManyOutputs, at, "output count larger than the bytes left");
  if (r.ok()) cb.outputs.reserve(outputs);
  for (uint64_t i = 0; r.ok() && i < outputs; ++i) {
    at = r.pos();
    CoinbaseOutput out;
    out.value = r.u64("output value");
    if (r.ok() && (out.value > kMaxMoney || cb.total_value + out.value > kMaxMoney)) {
      r.set_error(CoinbaseError::kValueRange, at, "output value (or the sum so far) above 84e6 coins");
      break;
    }
    uint64_t n = r.compact_size("output script size");
    out.script_pubkey = r.bytes(n, "output script");
    if (!r.ok()) break;
    cb.total_value += out.value;
    if (is_witness_commitment(out.script_pubkey)) {
      cb.witness_commitment_output = cb.outputs.size();
      std::copy(out.script_pubkey.begin() + 6, out.script_pubkey.begin() + 38, cb.witness_commitment.begin());
    }
    cb.outputs.push_back(std::move(out));
  }

  if (r.ok() && cb.segwit) {
    at = r.pos();
    uint64_t items = r.compact_size("witness item count");
    // Each item takes at least its one-byte size.
    // A coinbase's witness is one 32-byte item (BIP141's reserved value);
    // a handful more is tolerated, thousands of empty ones are not.
    if (r.ok() && items > kMaxWitnessItems) r.set_error(CoinbaseError::kWitness, at, "more than 16 witness items");
    for (uint64_t i = 0; r.ok() && i < items; ++i) {
      uint64_t n = r.compact_size("witness item size");
      cb.witness.push_back(r.bytes(n, "witness item"));
    }
  }
  cb.lock_time = r.u32("lock time");
  if (r.ok() && r.left() != 0) r.set_error(CoinbaseError::kTrailingBytes, r.pos(), "bytes after the lock time");
  if (!r.ok()) return r.error();
  cb.height = bip34_height(cb.script_sig);
  cb.size = tx.size();
  return cb;
}

JobCoinbaseResult parse_job_coinbase(std::span<const uint8_t> coinb1, std::span<const uint8_t> extranonce1,
                                     std::span<const uint8_t> extranonce2, uint32_t extranonce2_size,
                                     std::span<const uint8_t> coinb2) {
  if (!extranonce2.empty() && extranonce2.size() != extranonce2_size)
    return fail(CoinbaseError::kExtranonceSize, coinb1.size() + extranonce1.size(), "extranonce2 is not extranonce2_size bytes");
  size_t total = coinb1.size() + extranonce1.size() + size_t(extranonce2_size) + coinb2.size();
  if (extranonce2_size > kMaxCoinbaseBytes || total > kMaxCoinbaseBytes)
    return fail(CoinbaseError::kTooLarge, kMaxCoinbaseBytes, "coinbase longer than 1000000 bytes");
  Bytes tx;
  tx.reserve(total);
  tx.insert(tx.end(), coinb1.begin(), coinb1.end());
  tx.insert(tx.end(), extranonce1.begin(), extranonce1.end());
  if (extranonce2.empty())
    tx.resize(tx.size() + extranonce2_size, 0);
  else
    tx.insert(tx.end(), extranonce2.begin(), extranonce2.end());
  tx.insert(tx.end(), coinb2.begin(), coinb2.end());
  auto cb = parse_coinbase(tx);
  if (!cb) return cb.error();
  JobCoinbase out;
  size_t en_begin = coinb1.size(), en_end = en_begin + extranonce1.size() + extranonce2_size;
  out.extranonce_in_script =
      en_begin >= cb->script_sig_offset && en_end <= cb->script_sig_offset + cb->script_sig.size();
  out.coinbase = std::move(*cb);
  return out;
}

}  // namespace hashgate
