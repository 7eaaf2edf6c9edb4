#include "protocol/stratum_codec.h"

#include <cctype>
#include <cstring>

#include "protocol/json_writer.h"

namespace hashgate {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string ordinal_param(std::string_view method, size_t i, const char* what) {
  std::string s(method);
  s += ": parameter ";
  s += std::to_string(i + 1);
  s += " (";
  s += what;
  s += ")";
  return s;
}

Error bad_param(std::string_view method, size_t i, const char* what, const char* expect) {
  return make_error(ErrorCode::kInvalidParams, ordinal_param(method, i, what) + " must be " + expect);
}

bool get_str(const Incoming& m, size_t i, std::string_view& out) {
  if (i >= m.param_count || i >= Incoming::kMaxParams) return false;
  return m.params[i].get_string().get(out) == simdjson::SUCCESS;
}

bool get_hex32(const Incoming& m, size_t i, uint32_t& out) {
  std::string_view s;
  if (!get_str(m, i, s)) return false;
  auto v = hex_u32(s);
  if (!v) return false;
  out = *v;
  return true;
}

bool get_number(element e, double& out) {
  switch (e.type()) {
    case element_type::INT64: {
      int64_t v;
      if (e.get_int64().get(v)) return false;
      out = double(v);
      return true;
    }
    case element_type::UINT64: {
      uint64_t v;
      if (e.get_uint64().get(v)) return false;
      out = double(v);
      return true;
    }
    case element_type::DOUBLE:
      return e.get_double().get(out) == simdjson::SUCCESS;
    case element_type::STRING: {
      // Some pools send numbers as strings ("1024"); accept them strictly.
      std::string_view s;
      if (e.get_string().get(s) || s.empty() || s.size() > 32) return false;
      char buf[40];
      std::memcpy(buf, s.data(), s.size());
      buf[s.size()] = 0;
      char* end = nullptr;
      out = std::strtod(buf, &end);
      return end == buf + s.size();
    }
    default:
      return false;
  }
}

bool get_uint(element e, uint64_t& out) {
  double d;
  if (!get_number(e, d) || d < 0 || d > 1e15 || d != double(uint64_t(d))) return false;
  out = uint64_t(d);
  return true;
}

bool valid_difficulty(double d) { return d > 0 && d < 1e30; }

void write_id(std::string& out, const RpcId& id) { out += id.json; }

void write_hex(std::string& out, std::span<const uint8_t> bytes) {
  size_t at = out.size();
  out.resize(at + bytes.size() * 2);
  hex_encode_to(bytes, out.data() + at);
}

void write_hex32(std::string& out, uint32_t v) {
  uint8_t b[4];
  put_be32(b, v);
  out.push_back('"');
  write_hex(out, b);
  out.push_back('"');
}

}  // namespace

StratumParser::StratumParser(size_t max_line) : padded_(max_line + simdjson::SIMDJSON_PADDING) {
  ignore_error(parser_.allocate(max_line + 64));
}

Result<Incoming> StratumParser::parse(std::string_view line) {
  if (line.size() + simdjson::SIMDJSON_PADDING > padded_.size())
    return make_error(ErrorCode::kInvalidRequest, "line longer than the configured maximum");
  std::memcpy(padded_.data(), line.data(), line.size());
  std::memset(padded_.data() + line.size(), 0, simdjson::SIMDJSON_PADDING);
  element root;
  if (auto err = parser_.parse(padded_.data(), line.size(), false).get(root))
    return make_error(ErrorCode::kParseError, std::string("malformed JSON: ") + simdjson::error_message(err));
  simdjson::dom::object obj;
  if (root.get_object().get(obj))
    return make_error(ErrorCode::kInvalidRequest, "a JSON-RPC message must be an object");

  Incoming m;
  element id;
  if (obj["id"].get(id) == simdjson::SUCCESS) {
    switch (id.type()) {
      case element_type::NULL_VALUE:
        break;
      case element_type::INT64:
      case element_type::UINT64: {
        uint64_t u;
        int64_t i;
        if (id.get_uint64().get(u) == simdjson::SUCCESS) {
          m.numeric_id = u;
          m.id.json = std::to_string(u);
        } else if (id.get_int64().get(i) == simdjson::SUCCESS) {
          m.id.json = std::to_string(i);
        }
        break;
      }
      case element_type::STRING: {
        std::string_view s;
        ignore_error(id.get_string().get(s));
        if (s.size() > RpcId::kMaxIdLength)
          return make_error(ErrorCode::kInvalidRequest, "id longer than 64 characters");
        m.id.json.clear();
        json_append_string(m.id.json, s);
        break;
      }
      default:
        return make_error(ErrorCode::kInvalidRequest, "id must be a number, a string or null");
    }
  }

  element method;
  if (obj["method"].get(method) == simdjson::SUCCESS && method.type() != element_type::NULL_VALUE) {
    if (method.get_string().get(m.method) || m.method.empty())
      return make_error(ErrorCode::kInvalidRequest, "method must be a non-empty string");
    element params;
    if (obj["params"].get(params) == simdjson::SUCCESS && params.type() != element_type::NULL_VALUE) {
      simdjson::dom::array arr;
      if (params.get_array().get(arr) == simdjson::SUCCESS) {
        m.params_is_array = true;
        for (element e : arr) {
          if (m.param_count < Incoming::kMaxParams) m.params[m.param_count] = e;
          ++m.param_count;
        }
      }
    } else {
      m.params_is_array = true;  // absent params: an empty list
    }
    return m;
  }

  m.has_result = obj["result"].get(m.result) == simdjson::SUCCESS;
  if (obj["error"].get(m.error) == simdjson::SUCCESS) m.has_error = m.error.type() != element_type::NULL_VALUE;
  if (!m.has_result && !m.has_error)
    return make_error(ErrorCode::kInvalidRequest, "message has neither method nor result nor error");
  m.is_response = true;
  return m;
}

// ---- decoders ----

Result<SubscribeParams> decode_subscribe(const Incoming& m) {
  SubscribeParams p;
  std::string_view s;
  if (m.param_count > 0 && get_str(m, 0, s)) p.agent.assign(s.substr(0, 128));
  if (m.param_count > 1 && get_str(m, 1, s)) p.session_id.assign(s.substr(0, 64));
  return p;
}

Result<AuthorizeParams> decode_authorize(const Incoming& m) {
  AuthorizeParams p;
  std::string_view user, pass;
  if (!get_str(m, 0, user) || user.empty() || user.size() > 256)
    return bad_param(m.method, 0, "worker name", "a non-empty string of at most 256 characters");
  p.user.assign(user);
  if (m.param_count > 1) {
    if (get_str(m, 1, pass)) p.password.assign(pass.substr(0, 256));
  }
  return p;
}

Result<SubmitParams> decode_submit(const Incoming& m) {
  SubmitParams p;
  if (m.param_count < 5) return make_error(ErrorCode::kInvalidParams, "mining.submit: expected 5 or 6 parameters");
  if (!get_str(m, 0, p.worker)) return bad_param(m.method, 0, "worker name", "a string");
  if (!get_str(m, 1, p.job_id) || p.job_id.empty()) return bad_param(m.method, 1, "job id", "a non-empty string");
  if (!get_str(m, 2, p.extranonce2_hex)) return bad_param(m.method, 2, "extranonce2", "a hex string");
  if (!get_hex32(m, 3, p.ntime)) return bad_param(m.method, 3, "ntime", "8 hex digits");
  if (!get_hex32(m, 4, p.nonce)) return bad_param(m.method, 4, "nonce", "8 hex digits");
  if (m.param_count > 5) {
    uint32_t vb;
    if (!get_hex32(m, 5, vb)) return bad_param(m.method, 5, "version bits", "8 hex digits");
    p.version_bits = vb;
  }
  return p;
}

Result<ConfigureParams> decode_configure(const Incoming& m) {
  ConfigureParams p;
  simdjson::dom::array exts;
  if (m.param_count < 1 || m.params[0].get_array().get(exts))
    return bad_param(m.method, 0, "extensions", "a list of strings");
  simdjson::dom::object opts;
  bool has_opts = m.param_count > 1 && m.params[1].get_object().get(opts) == simdjson::SUCCESS;
  for (element e : exts) {
    std::string_view name;
    if (e.get_string().get(name)) return bad_param(m.method, 0, "extensions", "a list of strings");
    if (name == "version-rolling") {
      p.version_rolling = true;
      p.version_rolling_mask = 0xffffffff;
      std::string_view mask;
      if (has_opts && opts["version-rolling.mask"].get_string().get(mask) == simdjson::SUCCESS) {
        auto v = hex_u32(mask);
        if (!v) return make_error(ErrorCode::kInvalidParams, "mining.configure: version-rolling.mask must be 8 hex digits");
        p.version_rolling_mask = *v;
      }
      element bits;
      uint64_t n;
      if (has_opts && opts["version-rolling.min-bit-count"].get(bits) == simdjson::SUCCESS && get_uint(bits, n))
        p.version_rolling_min_bit_count = uint32_t(std::min<uint64_t>(n, 32));
    } else if (name == "minimum-difficulty") {
      element v;
      double d;
      if (has_opts && opts["minimum-difficulty.value"].get(v) == simdjson::SUCCESS && get_number(v, d) &&
          valid_difficulty(d))
        p.minimum_difficulty = d;
    } else if (name == "subscribe-extranonce") {
      p.subscribe_extranonce = true;
    }
  }
  return p;
}

Result<double> decode_difficulty(const Incoming& m) {
  double d;
  if (m.param_count < 1 || !get_number(m.params[0], d) || !valid_difficulty(d))
    return bad_param(m.method, 0, "difficulty", "a positive number");
  return d;
}

Result<NotifyParams> decode_notify(const Incoming& m) {
  NotifyParams n;
  if (m.param_count < 9) return make_error(ErrorCode::kInvalidParams, "mining.notify: expected 9 parameters");
  std::string_view s;
  if (!get_str(m, 0, s) || s.empty() || s.size() > 64) return bad_param(m.method, 0, "job id", "a string of 1..64 characters");
  n.job_id.assign(s);
  if (!get_str(m, 1, s) || !hex_decode(s, n.prevhash)) return bad_param(m.method, 1, "prevhash", "64 hex digits");
  auto cb1 = get_str(m, 2, s) ? hex_decode(s) : std::nullopt;
  if (!cb1) return bad_param(m.method, 2, "coinb1", "a hex string");
  n.coinb1 = std::move(*cb1);
  auto cb2 = get_str(m, 3, s) ? hex_decode(s) : std::nullopt;
  if (!cb2) return bad_param(m.method, 3, "coinb2", "a hex string");
  n.coinb2 = std::move(*cb2);
  simdjson::dom::array branch;
  if (m.params[4].get_array().get(branch)) return bad_param(m.method, 4, "merkle branch", "a list of hashes");
  for (element e : branch) {
    Hash256 h;
    if (e.get_string().get(s) || !hex_decode(s, h)) return bad_param(m.method, 4, "merkle branch", "a list of 64-hex-digit hashes");
    if (n.merkle_branch.size() >= 32) return bad_param(m.method, 4, "merkle branch", "at most 32 hashes");
    n.merkle_branch.push_back(h);
  }
  if (!get_hex32(m, 5, n.version)) return bad_param(m.method, 5, "version", "8 hex digits");
  if (!get_hex32(m, 6, n.nbits)) return bad_param(m.method, 6, "nbits", "8 hex digits");
  if (!get_hex32(m, 7, n.ntime)) return bad_param(m.method, 7, "ntime", "8 hex digits");
  if (m.params[8].get_bool().get(n.clean_jobs)) return bad_param(m.method, 8, "clean_jobs", "true or false");
  return n;
}

Result<uint32_t> decode_version_mask(const Incoming& m) {
  uint32_t mask;
  if (!get_hex32(m, 0, mask)) return bad_param(m.method, 0, "mask", "8 hex digits");
  return mask;
}

Result<SubscribeResult> decode_set_extranonce(const Incoming& m) {
  SubscribeResult r;
  std::string_view s;
  std::optional<Bytes> e1;
  if (!get_str(m, 0, s) || !(e1 = hex_decode(s)) || e1->size() > 16)
    return bad_param(m.method, 0, "extranonce1", "a hex string of at most 16 bytes");
  r.extranonce1 = std::move(*e1);
  uint64_t n2;
  if (m.param_count < 2 || !get_uint(m.params[1], n2) || n2 < 1 || n2 > 16)
    return bad_param(m.method, 1, "extranonce2 size", "an integer from 1 to 16");
  r.extranonce2_size = uint32_t(n2);
  return r;
}

Result<ReconnectParams> decode_reconnect(const Incoming& m) {
  ReconnectParams r;
  std::string_view s;
  if (m.param_count > 0 && get_str(m, 0, s)) r.host.assign(s.substr(0, 255));
  uint64_t v;
  if (m.param_count > 1 && get_uint(m.params[1], v)) {
    if (v > 65535) return bad_param(m.method, 1, "port", "a port number");
    r.port = uint16_t(v);
  }
  if (m.param_count > 2 && get_uint(m.params[2], v)) r.wait_seconds = uint32_t(std::min<uint64_t>(v, 3600));
  return r;
}

Result<SubscribeResult> decode_subscribe_result(const Incoming& m) {
  SubscribeResult r;
  simdjson::dom::array arr;
  if (!m.has_result || m.result.get_array().get(arr) || arr.size() < 3)
    return make_error(ErrorCode::kInvalidParams, "mining.subscribe result must be [subscriptions, extranonce1, extranonce2_size]");
  element subs = arr.at(0).value_unsafe();
  // Either [["mining.notify", id], ...] or one ["mining.notify", id] pair.
  auto take_pair = [&](element pair) {
    simdjson::dom::array p;
    std::string_view name, id;
    if (pair.get_array().get(p) || p.size() < 2) return;
    if (p.at(0).get_string().get(name) || p.at(1).get_string().get(id)) return;
    if (name == "mining.notify") r.session_id.assign(id.substr(0, 64));
  };
  simdjson::dom::array list;
  if (subs.get_array().get(list) == simdjson::SUCCESS) {
    if (list.size() > 0 && list.at(0).value_unsafe().type() == element_type::STRING) {
      take_pair(subs);
    } else {
      for (element e : list) take_pair(e);
    }
  }
  std::string_view e1s;
  std::optional<Bytes> e1;
  if (arr.at(1).get_string().get(e1s) || !(e1 = hex_decode(e1s)) || e1->size() > 16)
    return make_error(ErrorCode::kInvalidParams, "mining.subscribe result: extranonce1 must be hex of at most 16 bytes");
  r.extranonce1 = std::move(*e1);
  uint64_t n2;
  if (!get_uint(arr.at(2).value_unsafe(), n2) || n2 < 1 || n2 > 16)
    return make_error(ErrorCode::kInvalidParams, "mining.subscribe result: extranonce2_size must be 1..16");
  r.extranonce2_size = uint32_t(n2);
  return r;
}

uint32_t decode_configure_result(const Incoming& m) {
  simdjson::dom::object obj;
  if (!m.has_result || m.result.get_object().get(obj)) return 0;
  bool granted = false;
  if (obj["version-rolling"].get_bool().get(granted) || !granted) return 0;
  std::string_view mask;
  if (obj["version-rolling.mask"].get_string().get(mask)) return 0;
  return hex_u32(mask).value_or(0);
}

bool decode_bool_result(const Incoming& m) {
  bool b = false;
  return m.has_result && !m.has_error && m.result.get_bool().get(b) == simdjson::SUCCESS && b;
}

Error decode_error(const Incoming& m) {
  Error e{ErrorCode::kOther, "rejected"};
  if (!m.has_error) return e;
  simdjson::dom::array arr;
  simdjson::dom::object obj;
  // A default element has no document: only elements that were found are
  // looked at (an empty error array from a pool must not crash us).
  element code, msg;
  bool have_code = false, have_msg = false;
  if (m.error.get_array().get(arr) == simdjson::SUCCESS) {
    if (arr.size() > 0) code = arr.at(0).value_unsafe(), have_code = true;
    if (arr.size() > 1) msg = arr.at(1).value_unsafe(), have_msg = true;
  } else if (m.error.get_object().get(obj) == simdjson::SUCCESS) {
    have_code = obj["code"].get(code) == simdjson::SUCCESS;
    have_msg = obj["message"].get(msg) == simdjson::SUCCESS;
  }
  int64_t c;
  if (have_code && code.type() == element_type::INT64 && code.get_int64().get(c) == simdjson::SUCCESS)
    e.code = ErrorCode(c);
  std::string_view s;
  if (have_msg && msg.type() == element_type::STRING && msg.get_string().get(s) == simdjson::SUCCESS)
    e.message.assign(s.substr(0, 200));
  return e;
}

// ---- writers ----

void write_result_true(std::string& out, const RpcId& id) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":true,\"error\":null}\n";
}

void write_result_false(std::string& out, const RpcId& id) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":false,\"error\":null}\n";
}

void write_error(std::string& out, const RpcId& id, ErrorCode code, std::string_view message) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":null,\"error\":[";
  json_append_int(out, int(code));
  out.push_back(',');
  json_append_string(out, message);
  out += ",null]}\n";
}

void write_subscribe_result(std::string& out, const RpcId& id, std::string_view subscription_id,
                            std::span<const uint8_t> extranonce1, uint32_t extranonce2_size) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":[[[\"mining.set_difficulty\",";
  json_append_string(out, subscription_id);
  out += "],[\"mining.notify\",";
  json_append_string(out, subscription_id);
  out += "]],\"";
  write_hex(out, extranonce1);
  out += "\",";
  json_append_uint(out, extranonce2_size);
  out += "],\"error\":null}\n";
}

void write_configure_result(std::string& out, const RpcId& id, const ConfigureParams& asked, bool version_rolling,
                            uint32_t mask) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":{";
  bool first = true;
  auto sep = [&] {
    if (!first) out.push_back(',');
    first = false;
  };
  if (asked.version_rolling) {
    sep();
    if (version_rolling) {
      out += "\"version-rolling\":true,\"version-rolling.mask\":";
      write_hex32(out, mask);
    } else {
      out += "\"version-rolling\":false";
    }
  }
  if (asked.minimum_difficulty) {
    sep();
    out += "\"minimum-difficulty\":true";
  }
  if (asked.subscribe_extranonce) {
    sep();
    out += "\"subscribe-extranonce\":true";
  }
  out += "},\"error\":null}\n";
}

void write_set_difficulty(std::string& out, double difficulty) {
  out += "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[";
  json_append_double(out, difficulty);
  out += "]}\n";
}

void write_set_version_mask(std::string& out, uint32_t mask) {
  out += "{\"id\":null,\"method\":\"mining.set_version_mask\",\"params\":[";
  write_hex32(out, mask);
  out += "]}\n";
}

void write_set_extranonce(std::string& out, std::span<const uint8_t> extranonce1, uint32_t extranonce2_size) {
  out += "{\"id\":null,\"method\":\"mining.set_extranonce\",\"params\":[\"";
  write_hex(out, extranonce1);
  out += "\",";
  json_append_uint(out, extranonce2_size);
  out += "]}\n";
}

void write_notify(std::string& out, std::string_view job_id, const NotifyParams& job, bool clean_jobs) {
  out += "{\"id\":null,\"method\":\"mining.notify\",\"params\":[";
  json_append_string(out, job_id);
  out += ",\"";
  write_hex(out, job.prevhash);
  out += "\",\"";
  write_hex(out, job.coinb1);
  out += "\",\"";
  write_hex(out, job.coinb2);
  out += "\",[";
  for (size_t i = 0; i < job.merkle_branch.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    write_hex(out, job.merkle_branch[i]);
    out.push_back('"');
  }
  out += "],";
  write_hex32(out, job.version);
  out.push_back(',');
  write_hex32(out, job.nbits);
  out.push_back(',');
  write_hex32(out, job.ntime);
  out += clean_jobs ? ",true]}\n" : ",false]}\n";
}

bool reconnect_port_as_string(std::string_view agent) {
  std::string a;
  for (char c : agent.substr(0, 32)) a.push_back(char(std::tolower(static_cast<unsigned char>(c))));
  for (std::string_view p : {"cgminer", "bmminer", "sgminer", "bfgminer", "antminer"})
    if (a.rfind(p, 0) == 0) return true;
  return false;
}

void write_reconnect(std::string& out, std::string_view host, uint16_t port, uint32_t wait_seconds,
                     bool port_as_string) {
  out += "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[";
  json_append_string(out, host);
  out.push_back(',');
  if (port_as_string) out.push_back('"');
  json_append_uint(out, port);
  if (port_as_string) out.push_back('"');
  out.push_back(',');
  json_append_uint(out, wait_seconds);
  out += "]}\n";
}

void write_show_message(std::string& out, std::string_view message) {
  out += "{\"id\":null,\"method\":\"client.show_message\",\"params\":[";
  json_append_string(out, message);
  out += "]}\n";
}

void write_get_version_result(std::string& out, const RpcId& id, std::string_view version) {
  out += "{\"id\":";
  write_id(out, id);
  out += ",\"result\":";
  json_append_string(out, version);
  out += ",\"error\":null}\n";
}

void write_subscribe(std::string& out, uint64_t id, std::string_view agent, std::string_view session_id) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.subscribe\",\"params\":[";
  json_append_string(out, agent);
  if (!session_id.empty()) {
    out.push_back(',');
    json_append_string(out, session_id);
  }
  out += "]}\n";
}

void write_authorize(std::string& out, uint64_t id, std::string_view user, std::string_view password) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.authorize\",\"params\":[";
  json_append_string(out, user);
  out.push_back(',');
  json_append_string(out, password);
  out += "]}\n";
}

void write_configure(std::string& out, uint64_t id, uint32_t version_mask) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.configure\",\"params\":[[\"version-rolling\"],{\"version-rolling.mask\":";
  write_hex32(out, version_mask);
  out += ",\"version-rolling.min-bit-count\":2}]}\n";
}

void write_extranonce_subscribe(std::string& out, uint64_t id) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.extranonce.subscribe\",\"params\":[]}\n";
}

void write_suggest_difficulty(std::string& out, uint64_t id, double difficulty) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.suggest_difficulty\",\"params\":[";
  json_append_double(out, difficulty);
  out += "]}\n";
}

void write_submit(std::string& out, uint64_t id, std::string_view worker, std::string_view job_id,
                  std::span<const uint8_t> extranonce2, uint32_t ntime, uint32_t nonce,
                  std::optional<uint32_t> version_bits) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"mining.submit\",\"params\":[";
  json_append_string(out, worker);
  out.push_back(',');
  json_append_string(out, job_id);
  out += ",\"";
  write_hex(out, extranonce2);
  out += "\",";
  write_hex32(out, ntime);
  out.push_back(',');
  write_hex32(out, nonce);
  if (version_bits) {
    out.push_back(',');
    write_hex32(out, *version_bits);
  }
  out += "]}\n";
}

void write_get_version(std::string& out, uint64_t id) {
  out += "{\"id\":";
  json_append_uint(out, id);
  out += ",\"method\":\"client.get_version\",\"params\":[]}\n";
}

}  // namespace hashgate
