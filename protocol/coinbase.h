// The coinbase transaction of a job, parsed: version, the BIP34 height in
// the input's script, every output (value and scriptPubKey), the total the
// block pays, and the BIP141 witness commitment. Sans-I/O and bounded: any
// byte string gets a Coinbase or a CoinbaseParseError naming what is wrong
// and where, never a crash, and memory in proportion to the input's size.
//
// Callers: the economics (block value = reward + fees, the pool pays it to
// the outputs of its coinbase) and the job integrity checks (the height a
// pool mines on, where the block pays). A Stratum job gives the coinbase in
// two halves around the extranonce: use parse_job_coinbase(), which puts any
// extranonce of the right size in between and says whether it landed inside
// the input's script, where it belongs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hashing/bytes.h"

namespace hashgate {

// Why a byte string is not a coinbase transaction.
enum class CoinbaseError {
  kTooLarge,         // longer than kMaxCoinbaseBytes
  kTruncated,        // ends inside a field
  kNonCanonicalSize, // a CompactSize in a longer form than needed
  kBadSegwitFlag,    // marker 0x00 followed by a flag other than 0x01
  kInputCount,       // not exactly one input
  kNotCoinbaseInput, // the input's prevout is not 32 zero bytes and index 0xffffffff
  kScriptSigSize,    // input script outside consensus' 2..100 bytes
  kNoOutputs,        // zero outputs
  kTooManyOutputs,   // more outputs than the remaining bytes could hold
  kValueRange,       // an output, or the sum, above kMaxMoney
  kWitness,          // segwit form, but the witness is malformed
  kTrailingBytes,    // bytes after the lock time
  kExtranonceSize,   // parse_job_coinbase: extranonce sizes do not add up
};

// Short stable name of an error ("truncated", "value_range", ...): for logs
// and metrics labels.
const char* coinbase_error_name(CoinbaseError e);

struct CoinbaseParseError {
  CoinbaseError code = CoinbaseError::kTruncated;
  size_t offset = 0;     // byte offset in the assembled transaction
  std::string message;   // "offset 41: output 1 value 9e18 above the maximum"
};

struct CoinbaseOutput {
  uint64_t value = 0;    // satoshis (sha256d coins) or litoshis (Litecoin)
  Bytes script_pubkey;
};

struct Coinbase {
  uint32_t version = 0;
  bool segwit = false;                   // serialized with marker and flag
  Bytes script_sig;                      // the coinbase input's script
  size_t script_sig_offset = 0;          // where script_sig starts in the transaction
  // BIP34: the block height pushed first in script_sig (OP_0, OP_1..OP_16 or a
  // minimal little-endian push of 1..4 bytes); absent when the script does
  // not start that way (blocks before BIP34, or a pool that leaves it out).
  std::optional<uint32_t> height;
  uint32_t sequence = 0;
  std::vector<CoinbaseOutput> outputs;
  uint64_t total_value = 0;              // sum of the outputs: subsidy + fees
  // BIP141: index of the last output whose script is OP_RETURN 0xaa21a9ed ‖
  // 32-byte commitment, and that commitment.
  std::optional<size_t> witness_commitment_output;
  Hash256 witness_commitment{};
  std::vector<Bytes> witness;            // the input's witness stack (segwit form)
  uint32_t lock_time = 0;
  size_t size = 0;                       // bytes parsed (the whole input)
};

class CoinbaseResult {
 public:
  CoinbaseResult(Coinbase c) : value_(std::move(c)) {}
  CoinbaseResult(CoinbaseParseError e) : error_(std::move(e)) {}
  explicit operator bool() const { return value_.has_value(); }
  const Coinbase& operator*() const { return *value_; }
  const Coinbase* operator->() const { return &*value_; }
  Coinbase& operator*() { return *value_; }
  Coinbase* operator->() { return &*value_; }
  const CoinbaseParseError& error() const { return error_; }

 private:
  std::optional<Coinbase> value_;
  CoinbaseParseError error_;
};

// Largest coinbase accepted (bytes). A block's coinbase is bounded by the
// block; 1 MB is far above any pool's and keeps a hostile job cheap.
inline constexpr size_t kMaxCoinbaseBytes = 1'000'000;
// Largest value an output or the sum may hold: Litecoin's 84 million coins,
// four times Bitcoin's, so one bound serves both algorithms.
inline constexpr uint64_t kMaxMoney = 84'000'000ull * 100'000'000ull;

// Parses one whole coinbase transaction (legacy or segwit serialization).
CoinbaseResult parse_coinbase(std::span<const uint8_t> tx);

// A Stratum job's coinbase: coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2.
// extranonce2 may be any bytes of extranonce2_size (zeros when empty).
struct JobCoinbase {
  Coinbase coinbase;
  // True when extranonce1 ‖ extranonce2 lies wholly inside script_sig (a
  // pool that places it elsewhere changes outputs or lock time per share).
  bool extranonce_in_script = false;
};

class JobCoinbaseResult {
 public:
  JobCoinbaseResult(JobCoinbase c) : value_(std::move(c)) {}
  JobCoinbaseResult(CoinbaseParseError e) : error_(std::move(e)) {}
  explicit operator bool() const { return value_.has_value(); }
  const JobCoinbase& operator*() const { return *value_; }
  const JobCoinbase* operator->() const { return &*value_; }
  const CoinbaseParseError& error() const { return error_; }

 private:
  std::optional<JobCoinbase> value_;
  CoinbaseParseError error_;
};

JobCoinbaseResult parse_job_coinbase(std::span<const uint8_t> coinb1, std::span<const uint8_t> extranonce1,
                                     std::span<const uint8_t> extranonce2, uint32_t extranonce2_size,
                                     std::span<const uint8_t> coinb2);

}  // namespace hashgate
