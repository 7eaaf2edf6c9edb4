// The pool-side Stratum session: hashgate as a client of one pool
// connection. Sans-I/O like DownstreamSession: bytes in, events and bytes
// out, time passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocol/event_queue.h"
#include "protocol/line_framer.h"
#include "protocol/stratum_codec.h"

namespace hashgate {

struct UpstreamOptions {
  std::string agent = "hashgate";
  std::string user;              // empty: authorize later with authorize()
  std::string password;
  uint32_t version_mask = 0;     // non-zero: negotiate version rolling with this mask
  bool extranonce_subscribe = true;
  std::string resume_session_id; // tried in mining.subscribe
  size_t max_line = 65536;
};

enum class UpstreamEventKind {
  kConfigured,     // version_mask holds the pool's granted mask (0: none)
  kSubscribed,     // subscription holds extranonce1, extranonce2 size, session id
  kAuthorized,     // ok, error
  kJob,            // notify
  kDifficulty,     // difficulty
  kVersionMask,    // version_mask
  kSetExtranonce,  // subscription
  kReconnect,      // reconnect
  kSubmitResult,   // token, ok, error
  kShowMessage,    // error.message holds the text
  kProtocolError,  // error: a malformed or unexpected message from the pool
};

struct UpstreamEvent {
  UpstreamEventKind kind = UpstreamEventKind::kProtocolError;
  bool ok = false;
  uint64_t token = 0;
  uint32_t version_mask = 0;
  double difficulty = 0;
  SubscribeResult subscription;
  NotifyParams notify;
  ReconnectParams reconnect;
  Error error;
  std::string user;  // for kAuthorized
  // kProtocolError: the connection cannot be used at all (its subscribe was
  // refused or unusable); `bad_notify`: the malformed message was a mining.notify.
  bool fatal = false;
  bool bad_notify = false;
};

class UpstreamSession {
 public:
  enum class State { kIdle, kSubscribing, kSubscribed };

  UpstreamSession(StratumParser& parser, UpstreamOptions opts);

  // Writes the opening requests: configure, subscribe, authorize.
  void start();
  void receive(std::string_view bytes, double now);
  bool next_event(UpstreamEvent& out);
  std::string& output() { return out_; }

  void authorize(const std::string& user, const std::string& password);
  // Sends a share; `token` comes back with its kSubmitResult.
  void submit(uint64_t token, std::string_view worker, std::string_view job_id, std::span<const uint8_t> extranonce2,
              uint32_t ntime, uint32_t nonce, std::optional<uint32_t> version_bits, double now);
  void suggest_difficulty(double d);

  State state() const { return state_; }
  bool authorized() const { return authorized_; }
  const SubscribeResult& subscription() const { return subscription_; }
  double difficulty() const { return difficulty_; }
  uint32_t version_mask() const { return version_mask_; }
  size_t pending_submits() const { return pending_submits_; }
  // The oldest unanswered request's send time, for timeouts; 0 when none.
  double oldest_pending(double) const;

 private:
  enum class Pending { kConfigure, kSubscribe, kAuthorize, kExtranonceSubscribe, kSubmit, kSuggest };
  struct PendingRequest {
    Pending kind;
    uint64_t token = 0;
    double sent_at = 0;
    std::string user;
  };

  void handle_line(std::string_view line, double now);
  void handle_response(const Incoming& m);
  void handle_request(const Incoming& m);
  void protocol_error(std::string message, bool fatal = false, bool bad_notify = false);
  uint64_t track(Pending kind, uint64_t token = 0, double now = 0, std::string user = {});

  StratumParser& parser_;
  UpstreamOptions opts_;
  LineFramer framer_;
  std::string out_;
  EventQueue<UpstreamEvent> events_;
  std::unordered_map<uint64_t, PendingRequest> pending_;
  size_t pending_submits_ = 0;
  uint64_t next_id_ = 1;
  State state_ = State::kIdle;
  bool authorized_ = false;
  SubscribeResult subscription_;
  double difficulty_ = 1;
  uint32_t version_mask_ = 0;
};

}  // namespace hashgate
