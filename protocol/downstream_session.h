// The miner-side Stratum session: a sans-I/O state machine. It takes bytes
// (receive) and gateway decisions (bind, authorize_result, on_job,
// complete_share) and produces bytes to send (output) and events for the
// gateway (next_event). It never sees a socket, a timer or a clock: `now` is
// passed in, in seconds.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hashing/header.h"
#include "protocol/job.h"
#include "protocol/event_queue.h"
#include "protocol/line_framer.h"
#include "protocol/stratum_codec.h"
#include "protocol/vardiff.h"

namespace hashgate {

// What every session of one gateway shares. Owned by the gateway; sessions
// keep a reference, never a loop global.
struct SessionSpares;

struct SessionContext {
  StratumParser* parser = nullptr;
  JobBook* jobs = nullptr;
  Algorithm algorithm = Algorithm::kSha256d;
  VardiffConfig vardiff;
  size_t max_line = 16384;
  // A share's ntime may run from the job's ntime up to this many seconds past it.
  uint32_t ntime_roll_seconds = 7200;
  uint64_t fingerprint_key = 0;
  std::string version = "hashgate";
  // Buffers lent to whichever session is busy (one loop thread): an idle
  // session holds none, a busy one allocates none. Null: each keeps its own.
  SessionSpares* spares = nullptr;
  // Variants of job ids (JobBook::kVariantShift) handed out so far: shared,
  // so that a miner reconnecting to the same job never sees an id again.
  uint16_t next_variant = 0;
};

// The slice of an upstream connection given to one session.
struct Binding {
  uint32_t link_id = 0;
  Bytes extranonce1;             // the pool's extranonce1 ‖ this session's prefix
  uint32_t prefix_offset = 0;    // where the prefix starts inside extranonce1
  uint32_t extranonce2_size = 0; // the miner's share of extranonce2
  uint32_t version_mask = 0;     // granted by the pool; 0 when it does not roll
};

// A share that passed every check but the hash. The gateway hashes `header`
// (on the loop or on hashing threads) and hands the result to complete_share.
struct ShareWork {
  uint64_t session_id = 0;
  uint64_t slot = 0;            // its place in the session's output, filled by complete_share
  RpcId rpc_id;
  JobRef job;
  Header header{};
  double difficulty = 0;        // the session difficulty this share must meet
  double mined_difficulty = 0;  // the difficulty sent with its job: what the miner mined at
  uint32_t worker = 0;          // index into the session's authorized workers
  std::array<uint8_t, 16> upstream_extranonce2{};  // prefix ‖ miner extranonce2
  uint8_t upstream_extranonce2_size = 0;
  uint32_t ntime = 0;
  uint32_t nonce = 0;
  std::optional<uint32_t> version_bits;
};

struct ShareVerdict {
  bool accepted = false;   // the miner was told "true"
  bool forward = false;    // meets the pool's target: submit upstream
  bool block = false;      // meets the network target
  double share_difficulty = 0;  // what the hash is worth
  ErrorCode code = ErrorCode::kOther;
};

enum class SessionEventKind {
  kNeedUpstream,  // subscribe or configure came: the session wants a Binding
  kAuthorize,     // mining.authorize: answer with authorize_result()
  kShare,         // a share to hash: answer with complete_share()
  kRejected,      // a share rejected before hashing (code and message)
  kViolation,     // malformed input, unknown method: for scores and logs
};

struct SessionEvent {
  SessionEventKind kind = SessionEventKind::kViolation;
  RpcId id;
  AuthorizeParams auth;  // kAuthorize; for kRejected, auth.user is the worker the share named
  ShareWork share;
  Error error;
};

// One write unit: either bytes owned by this session or a notify line shared
// by every session that gets the job. A chunk with a non-zero `slot` is the
// place of a share's answer while the share is being hashed: nothing after
// it is sent before it, so answers keep the order of the submits.
struct OutChunk {
  std::string owned;
  std::shared_ptr<const std::string> shared;
  uint64_t slot = 0;
  std::string_view view() const { return shared ? std::string_view(*shared) : std::string_view(owned); }
};

struct SessionSpares {
  std::string framer;
  std::vector<SessionEvent> events;
  std::vector<OutChunk> out;
  // Emptied answer strings, handed back by recycle() once written: a
  // session's next answer takes one, so answering allocates nothing.
  std::vector<std::string> strings;
  static constexpr size_t kMaxStrings = 256;
  static constexpr size_t kMaxStringCapacity = 4096;
  std::string take_string();
  void give_string(std::string&& s);
};

class DownstreamSession {
 public:
  DownstreamSession(SessionContext& ctx, uint64_t id, double now);
  ~DownstreamSession();

  // ---- input ----
  void receive(std::string_view bytes, double now);
  bool next_event(SessionEvent& out);
  // Moves the chunks that may be written now (those before the first share
  // still being hashed) to the end of `dst`.
  void take_output(std::vector<OutChunk>& dst);
  // Empties `written` (chunks from take_output whose bytes are sent) and
  // keeps their strings' storage in the spares for the next answers.
  void recycle(std::vector<OutChunk>& written);
  bool has_output() const { return !out_.empty() && out_.front().slot == 0; }

  // ---- gateway decisions ----
  void bind(const Binding& b, double now);
  void unbind();
  void authorize_result(const RpcId& id, const std::string& user, bool ok, std::string_view message);
  void on_job(const JobRef& job, bool force_clean);
  ShareVerdict complete_share(const ShareWork& work, const Hash256& hash, double now);
  void on_tick(double now);
  // The port goes as a string to firmware of the cgminer lineage (by its agent).
  void send_reconnect(std::string_view host, uint16_t port, uint32_t wait_seconds);
  void send_set_extranonce(const Binding& b, double now);
  // Starts vardiff at a difficulty this worker settled at before (a reconnect).
  void resume_difficulty(double d, double now);
  // The pool changed its version mask (mining.set_version_mask): the
  // session's mask becomes what the miner asked for within the new one, and
  // the miner is told when it changes.
  void set_pool_version_mask(uint32_t mask);
  // The miner's firmware profile (protocol/firmware_profile.h): shapes every
  // difficulty it is sent, and grants the pool's version mask to firmware
  // that rolls version bits without mining.configure. Set before the first
  // job; the profile outlives the session (the gateway's book).
  void set_profile(const FirmwareProfile* p);
  const FirmwareProfile* profile() const { return profile_; }
  void close(std::string reason);

  // ---- state ----
  uint64_t id() const { return id_; }
  // Holds buffer memory of its own: a partial line, undrained events or unsent output.
  bool holds_buffers() const { return framer_.capacity() > 15 || events_.capacity() != 0 || out_.capacity() != 0; }
  bool subscribed() const { return subscribed_; }
  bool authorized() const { return !workers_.empty(); }
  bool ready() const { return subscribed_ && authorized() && bound_; }
  bool bound() const { return bound_; }
  bool wants_upstream() const { return wants_upstream_; }
  const Binding& binding() const { return binding_; }
  bool closing() const { return closing_; }
  const std::string& close_reason() const { return close_reason_; }
  bool extranonce_subscribed() const { return extranonce_subscribed_; }
  const std::string& agent() const { return agent_; }
  const std::string& subscribe_session_id() const { return resume_id_; }
  const std::vector<std::string>& workers() const { return workers_; }
  double difficulty() const { return vardiff_.difficulty(); }
  // Vardiff has enough shares to call difficulty() this miner's own.
  bool difficulty_settled() const { return vardiff_.settled(); }
  // Still answering shares for jobs of the connection it left.
  bool has_previous_space() const { return previous_ != nullptr; }
  uint32_t version_mask() const { return session_mask_; }
  size_t buffered_input() const { return framer_.buffered(); }

 private:
  struct SentJob {
    uint64_t seq = 0;
    double difficulty = 0;
  };

  void handle_line(std::string_view line, double now);
  void on_subscribe(const Incoming& m);
  void on_configure(const Incoming& m, double now);
  void on_authorize(const Incoming& m);
  void on_submit(const Incoming& m, double now);
  void on_suggest_difficulty(const Incoming& m, double now);
  void answer_pending();
  void deliver_latest();
  // Sends `job` again under a new id (a variant): with the current
  // difficulty, which firmware applies only from a notify with a new id.
  void send_job_variant(const JobRef& job);
  // Vardiff changed the difficulty: the miner gets it now, not with the pool's next job.
  void renotify(double now);
  // The session leaves its binding: its jobs there stay answerable while
  // the connection still has them (shares in flight during a move).
  void keep_previous();
  void grant_unasked_mask();
  void reject(const RpcId& id, ErrorCode code, std::string_view message, std::string_view worker);
  void violation(ErrorCode code, std::string message);
  void request_upstream();
  std::string& owned_out();
  void borrow_out();  // takes the spare output vector when this session has none
  const SentJob* sent_job(uint64_t seq) const;

  SessionContext& ctx_;
  uint64_t id_;
  LineFramer framer_;
  Vardiff vardiff_;
  EventQueue<SessionEvent> events_;
  std::vector<OutChunk> out_;
  uint64_t next_slot_ = 1;

  bool subscribed_ = false;
  bool bound_ = false;
  bool clean_next_ = false;  // the binding changed: the next job replaces all work
  bool wants_upstream_ = false;
  bool closing_ = false;
  bool extranonce_subscribed_ = false;
  bool rolling_ = false;  // the configure answer granted version rolling
  uint8_t sent_next_ = 0;  // next slot of sent_ (here, in the flags' padding: see sent_)
  std::optional<RpcId> pending_subscribe_;
  std::optional<RpcId> pending_configure_;
  ConfigureParams configure_;
  std::string agent_;
  std::string resume_id_;
  std::string close_reason_;
  Binding binding_;
  const FirmwareProfile* profile_ = nullptr;
  uint32_t session_mask_ = 0;
  std::vector<std::string> workers_;
  double announced_difficulty_ = 0;
  double renotified_at_ = 0;  // the last re-send of a job for a new difficulty; 0: none pending
  struct PreviousSpace;
  std::unique_ptr<PreviousSpace> previous_;
  // Last member: the session is 640 bytes, one of the allocator's size
  // classes; a few bytes more cost 128 (the next class is 768).
  std::array<SentJob, JobBook::kWindow> sent_{};
  static_assert(JobBook::kWindow <= 255, "sent_next_ is a uint8_t");
};

}  // namespace hashgate
