// Stratum V1 codec: parses JSON-RPC lines with simdjson and writes every
// message of the protocol in both directions. No I/O.
//
// Parsed views point into the parser's document and stay valid until the
// parser parses the next line; decode_* functions copy what must outlive it.
#pragma once

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hashing/bytes.h"
#include "protocol/result.h"

namespace hashgate {

// simdjson's results are [[nodiscard]]; this marks the places where a
// missing field simply keeps its default.
inline void ignore_error(simdjson::error_code) {}

// A JSON-RPC id kept as its JSON text ("7", "\"abc\"", "null") so it can be
// echoed exactly. Ids longer than kMaxIdLength are refused by the parser.
struct RpcId {
  static constexpr size_t kMaxIdLength = 64;
  std::string json = "null";
  bool is_null() const { return json == "null"; }
  static RpcId number(uint64_t n) { return RpcId{std::to_string(n)}; }
};

struct Incoming {
  static constexpr size_t kMaxParams = 12;
  RpcId id;
  std::optional<uint64_t> numeric_id;  // set when the id is a non-negative integer
  bool is_response = false;            // has "result" or "error" and no "method"
  std::string_view method;             // empty for responses
  // The first kMaxParams elements of "params"; param_count is the real length.
  std::array<simdjson::dom::element, kMaxParams> params{};
  size_t param_count = 0;
  bool params_is_array = false;
  simdjson::dom::element result;
  simdjson::dom::element error;
  bool has_result = false;
  bool has_error = false;  // "error" present and not null
};

class StratumParser {
 public:
  explicit StratumParser(size_t max_line);
  // Parses one line. The returned views are valid until the next parse.
  Result<Incoming> parse(std::string_view line);

 private:
  simdjson::dom::parser parser_;
  std::vector<char> padded_;  // max_line + SIMDJSON_PADDING, reused for every line
};

// ---- Typed parameters (owned copies) ----

struct SubscribeParams {
  std::string agent;
  std::string session_id;  // resume request, may be empty
};

struct AuthorizeParams {
  std::string user;
  std::string password;
};

struct SubmitParams {
  std::string_view worker;  // views: valid until the next parse
  std::string_view job_id;
  std::string_view extranonce2_hex;
  uint32_t ntime = 0;
  uint32_t nonce = 0;
  std::optional<uint32_t> version_bits;
};

struct ConfigureParams {
  bool version_rolling = false;
  uint32_t version_rolling_mask = 0;
  uint32_t version_rolling_min_bit_count = 0;
  std::optional<double> minimum_difficulty;
  bool subscribe_extranonce = false;
};

struct NotifyParams {
  std::string job_id;
  std::array<uint8_t, 32> prevhash{};  // notify form
  Bytes coinb1;
  Bytes coinb2;
  std::vector<Hash256> merkle_branch;
  uint32_t version = 0;
  uint32_t nbits = 0;
  uint32_t ntime = 0;
  bool clean_jobs = false;
};

struct SubscribeResult {
  Bytes extranonce1;
  uint32_t extranonce2_size = 0;
  std::string session_id;  // from the mining.notify subscription, for resume
};

struct ReconnectParams {
  std::string host;  // empty: same host
  uint16_t port = 0; // 0: same port
  uint32_t wait_seconds = 0;
};

Result<SubscribeParams> decode_subscribe(const Incoming& m);
Result<AuthorizeParams> decode_authorize(const Incoming& m);
Result<SubmitParams> decode_submit(const Incoming& m);
Result<ConfigureParams> decode_configure(const Incoming& m);
Result<double> decode_difficulty(const Incoming& m);  // set_difficulty, suggest_difficulty
Result<NotifyParams> decode_notify(const Incoming& m);
Result<uint32_t> decode_version_mask(const Incoming& m);  // mining.set_version_mask
Result<SubscribeResult> decode_set_extranonce(const Incoming& m);
Result<ReconnectParams> decode_reconnect(const Incoming& m);
Result<SubscribeResult> decode_subscribe_result(const Incoming& m);
// mining.configure's result: the version-rolling mask granted, or 0.
uint32_t decode_configure_result(const Incoming& m);
// A boolean result (authorize, submit, extranonce.subscribe): true only for `true`.
bool decode_bool_result(const Incoming& m);
// An error response as [code, "message", ...] or {"code":..,"message":..}.
Error decode_error(const Incoming& m);

// ---- Writers: each appends one complete line ending in '\n' ----

void write_result_true(std::string& out, const RpcId& id);
void write_result_false(std::string& out, const RpcId& id);
void write_error(std::string& out, const RpcId& id, ErrorCode code, std::string_view message);
void write_subscribe_result(std::string& out, const RpcId& id, std::string_view subscription_id,
                            std::span<const uint8_t> extranonce1, uint32_t extranonce2_size);
// mining.configure result: version rolling granted with `mask`, or refused;
// minimum-difficulty and subscribe-extranonce acknowledged when asked.
void write_configure_result(std::string& out, const RpcId& id, const ConfigureParams& asked,
                            bool version_rolling, uint32_t mask);
void write_set_difficulty(std::string& out, double difficulty);
void write_set_version_mask(std::string& out, uint32_t mask);
void write_set_extranonce(std::string& out, std::span<const uint8_t> extranonce1, uint32_t extranonce2_size);
void write_notify(std::string& out, std::string_view job_id, const NotifyParams& job, bool clean_jobs);
// `port_as_string`: the port as a JSON string, which cgminer-lineage firmware
// needs (it reads only a string port and keeps its own otherwise); minerd
// and cpuminer-opt read either.
// Whether firmware with this mining.subscribe agent reads client.reconnect's
// port only as a string: cgminer and what is built on it (bmminer, sgminer,
// bfgminer, Antminer stock firmware).
bool reconnect_port_as_string(std::string_view agent);
void write_reconnect(std::string& out, std::string_view host, uint16_t port, uint32_t wait_seconds,
                     bool port_as_string = false);
void write_show_message(std::string& out, std::string_view message);
void write_get_version_result(std::string& out, const RpcId& id, std::string_view version);

// Requests (client side): `id` is the request id.
void write_subscribe(std::string& out, uint64_t id, std::string_view agent, std::string_view session_id);
void write_authorize(std::string& out, uint64_t id, std::string_view user, std::string_view password);
void write_configure(std::string& out, uint64_t id, uint32_t version_mask);
void write_extranonce_subscribe(std::string& out, uint64_t id);
void write_suggest_difficulty(std::string& out, uint64_t id, double difficulty);
void write_submit(std::string& out, uint64_t id, std::string_view worker, std::string_view job_id,
                  std::span<const uint8_t> extranonce2, uint32_t ntime, uint32_t nonce,
                  std::optional<uint32_t> version_bits);
void write_get_version(std::string& out, uint64_t id);

}  // namespace hashgate
