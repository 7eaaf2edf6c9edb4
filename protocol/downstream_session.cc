#include "protocol/downstream_session.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace hashgate {

// The binding a session left, with the jobs it was sent there: shares for
// them are still checked, answered and forwarded while that connection
// holds the jobs (a planned move loses nothing in flight).
struct DownstreamSession::PreviousSpace {
  Binding binding;
  std::array<SentJob, JobBook::kWindow> sent{};
  const SentJob* find(uint64_t id) const {
    for (const SentJob& s : sent)
      if (s.seq == id && id) return &s;
    return nullptr;
  }
};

DownstreamSession::~DownstreamSession() = default;

DownstreamSession::DownstreamSession(SessionContext& ctx, uint64_t id, double now)
    : ctx_(ctx), id_(id), framer_(ctx.max_line), vardiff_(ctx.vardiff, now) {
  if (ctx.spares) {
    framer_.set_spare(&ctx.spares->framer);
    events_.set_spare(&ctx.spares->events);
  }
}

void DownstreamSession::borrow_out() {
  if (ctx_.spares && out_.capacity() == 0 && ctx_.spares->out.capacity() != 0) out_.swap(ctx_.spares->out);
}

std::string SessionSpares::take_string() {
  if (strings.empty()) return {};
  std::string s = std::move(strings.back());
  strings.pop_back();
  return s;
}

void SessionSpares::give_string(std::string&& s) {
  if (s.capacity() <= 15 || s.capacity() > kMaxStringCapacity || strings.size() >= kMaxStrings) return;
  if (strings.capacity() == 0) strings.reserve(kMaxStrings);
  s.clear();
  strings.push_back(std::move(s));
}

std::string& DownstreamSession::owned_out() {
  if (out_.empty() || out_.back().shared || out_.back().slot) {
    borrow_out();
    out_.emplace_back();
    if (ctx_.spares) out_.back().owned = ctx_.spares->take_string();
  }
  return out_.back().owned;
}

void DownstreamSession::recycle(std::vector<OutChunk>& written) {
  if (ctx_.spares)
    for (OutChunk& c : written) ctx_.spares->give_string(std::move(c.owned));
  written.clear();
}

void DownstreamSession::take_output(std::vector<OutChunk>& dst) {
  size_t n = 0;
  while (n < out_.size() && out_[n].slot == 0) ++n;
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i) dst.push_back(std::move(out_[i]));
  out_.erase(out_.begin(), out_.begin() + ptrdiff_t(n));
  if (out_.empty() && ctx_.spares && out_.capacity() != 0) {
    if (ctx_.spares->out.capacity() == 0) {
      ctx_.spares->out.swap(out_);
    } else {
      std::vector<OutChunk>().swap(out_);
    }
  }
}

bool DownstreamSession::next_event(SessionEvent& out) { return events_.next(out); }

void DownstreamSession::receive(std::string_view bytes, double now) {
  if (closing_) return;
  framer_.feed(bytes);
  std::string_view line;
  for (;;) {
    switch (framer_.next_line(line)) {
      case LineFramer::Status::kNeedMore:
        return;
      case LineFramer::Status::kTooLong:
        violation(ErrorCode::kInvalidRequest,
                  "line longer than " + std::to_string(ctx_.max_line) + " bytes");
        close("line longer than " + std::to_string(ctx_.max_line) + " bytes");
        return;
      case LineFramer::Status::kLine:
        if (!line.empty()) handle_line(line, now);
        if (closing_) return;
        break;
    }
  }
}

void DownstreamSession::handle_line(std::string_view line, double now) {
  auto parsed = ctx_.parser->parse(line);
  if (!parsed) {
    write_error(owned_out(), RpcId{}, parsed.error().code, parsed.error().message);
    violation(parsed.error().code, parsed.error().message);
    return;
  }
  const Incoming& m = *parsed;
  if (m.is_response) return;  // an answer to client.get_version and the like
  const std::string_view method = m.method;
  if (method == "mining.submit") {
    on_submit(m, now);
  } else if (method == "mining.subscribe") {
    on_subscribe(m);
  } else if (method == "mining.authorize") {
    on_authorize(m);
  } else if (method == "mining.configure") {
    on_configure(m, now);
  } else if (method == "mining.extranonce.subscribe") {
    extranonce_subscribed_ = true;
    write_result_true(owned_out(), m.id);
  } else if (method == "mining.suggest_difficulty") {
    on_suggest_difficulty(m, now);
  } else if (method == "client.get_version") {
    write_get_version_result(owned_out(), m.id, ctx_.version);
  } else {
    std::string msg = "unknown method '" + std::string(method.substr(0, 64)) + "'";
    write_error(owned_out(), m.id, ErrorCode::kMethodNotFound, msg);
    violation(ErrorCode::kMethodNotFound, std::move(msg));
  }
}

void DownstreamSession::on_subscribe(const Incoming& m) {
  if (subscribed_ || pending_subscribe_) {
    write_error(owned_out(), m.id, ErrorCode::kOther, "already subscribed");
    return;
  }
  auto p = decode_subscribe(m);
  agent_ = std::move(p->agent);
  resume_id_ = std::move(p->session_id);
  pending_subscribe_ = m.id;
  if (bound_) {
    answer_pending();
  } else {
    request_upstream();
  }
}

void DownstreamSession::on_configure(const Incoming& m, double now) {
  auto p = decode_configure(m);
  if (!p) {
    write_error(owned_out(), m.id, p.error().code, p.error().message);
    violation(p.error().code, p.error().message);
    return;
  }
  configure_ = *p;
  if (configure_.minimum_difficulty) vardiff_.suggest(*configure_.minimum_difficulty, now);
  if (configure_.subscribe_extranonce) extranonce_subscribed_ = true;
  pending_configure_ = m.id;
  if (bound_) {
    answer_pending();
  } else {
    request_upstream();
  }
}

void DownstreamSession::on_authorize(const Incoming& m) {
  auto p = decode_authorize(m);
  if (!p) {
    write_error(owned_out(), m.id, p.error().code, p.error().message);
    violation(p.error().code, p.error().message);
    return;
  }
  SessionEvent ev;
  ev.kind = SessionEventKind::kAuthorize;
  ev.id = m.id;
  ev.auth = std::move(*p);
  events_.push(std::move(ev));
}

void DownstreamSession::authorize_result(const RpcId& id, const std::string& user, bool ok,
                                         std::string_view message) {
  if (!ok) {
    write_error(owned_out(), id, ErrorCode::kUnauthorized, message.empty() ? "unauthorized worker" : message);
    return;
  }
  bool was_ready = ready();
  if (std::find(workers_.begin(), workers_.end(), user) == workers_.end() && workers_.size() < 64)
    workers_.push_back(user);
  write_result_true(owned_out(), id);
  if (!was_ready && ready()) deliver_latest();
}

void DownstreamSession::on_suggest_difficulty(const Incoming& m, double now) {
  auto d = decode_difficulty(m);
  if (!d) {
    if (!m.id.is_null()) write_error(owned_out(), m.id, d.error().code, d.error().message);
    violation(d.error().code, d.error().message);
    return;
  }
  vardiff_.suggest(*d, now);
  if (!m.id.is_null()) write_result_true(owned_out(), m.id);
}

void DownstreamSession::request_upstream() {
  if (wants_upstream_ || bound_) return;
  wants_upstream_ = true;
  SessionEvent ev;
  ev.kind = SessionEventKind::kNeedUpstream;
  events_.push(std::move(ev));
}

void DownstreamSession::bind(const Binding& b, double now) {
  binding_ = b;
  bound_ = true;
  wants_upstream_ = false;
  sent_ = {};
  grant_unasked_mask();
  answer_pending();
}

void DownstreamSession::set_profile(const FirmwareProfile* p) {
  // Only a change of difficulty rules touches vardiff (its statistics stay
  // when the profile changes only in how the miner is moved).
  if (!profile_ || !p || p->difficulty != profile_->difficulty || p->min_difficulty != profile_->min_difficulty)
    vardiff_.set_shape(p);
  profile_ = p;
  grant_unasked_mask();
}

void DownstreamSession::grant_unasked_mask() {
  // Firmware that rolls version bits without negotiating them (a rented
  // Antminer S21) gets the pool's whole mask, unannounced: what it rolls
  // inside it is valid work, what falls outside is still refused.
  if (profile_ && profile_->rolls_without_configure && bound_ && !configure_.version_rolling)
    session_mask_ = binding_.version_mask;
}

void DownstreamSession::unbind() {
  if (bound_) keep_previous();
  bound_ = false;
  sent_ = {};
}

void DownstreamSession::keep_previous() {
  if (!previous_) previous_ = std::make_unique<PreviousSpace>();
  previous_->binding = binding_;
  previous_->sent = sent_;
}

void DownstreamSession::resume_difficulty(double d, double now) { vardiff_.resume(d, now); }

void DownstreamSession::answer_pending() {
  // Configure first: miners expect its answer before subscribe's.
  if (pending_configure_) {
    bool rolling = configure_.version_rolling && binding_.version_mask != 0;
    session_mask_ = rolling ? (configure_.version_rolling_mask & binding_.version_mask) : 0;
    if (rolling && std::popcount(session_mask_) < int(configure_.version_rolling_min_bit_count)) {
      rolling = false;
      session_mask_ = 0;
    }
    rolling_ = rolling;
    write_configure_result(owned_out(), *pending_configure_, configure_, rolling, session_mask_);
    pending_configure_.reset();
  }
  if (pending_subscribe_) {
    char sid[17];
    std::snprintf(sid, sizeof sid, "%016llx", static_cast<unsigned long long>(id_));
    write_subscribe_result(owned_out(), *pending_subscribe_, sid, binding_.extranonce1, binding_.extranonce2_size);
    pending_subscribe_.reset();
    subscribed_ = true;
    if (ready()) deliver_latest();
  }
}

void DownstreamSession::send_set_extranonce(const Binding& b, double now) {
  // The same space again (a pool session resumed on a new connection): the
  // miner keeps its extranonce and only needs the new connection's jobs.
  const bool same_space = !binding_.extranonce1.empty() && b.extranonce1 == binding_.extranonce1 &&
                          b.extranonce2_size == binding_.extranonce2_size;
  if (!same_space && bound_) keep_previous();
  binding_ = b;
  bound_ = true;
  wants_upstream_ = false;
  sent_ = {};
  clean_next_ = true;
  if (!same_space) write_set_extranonce(owned_out(), b.extranonce1, b.extranonce2_size);
  // Narrowed for miners that negotiated; an unasked grant is simply re-granted.
  if (configure_.version_rolling && (session_mask_ & ~b.version_mask)) {
    session_mask_ &= b.version_mask;
    write_set_version_mask(owned_out(), session_mask_);
  }
  grant_unasked_mask();
  announced_difficulty_ = 0;  // re-announce with the first job on the new pool
  if (ready()) deliver_latest();
}

void DownstreamSession::set_pool_version_mask(uint32_t mask) {
  binding_.version_mask = mask;
  // Only a session that negotiated rolling rolls; it keeps within what it asked for.
  if (!configure_.version_rolling || !rolling_) return;
  const uint32_t next = configure_.version_rolling_mask & mask;
  if (next == session_mask_) return;
  session_mask_ = next;
  write_set_version_mask(owned_out(), session_mask_);
}

void DownstreamSession::deliver_latest() {
  // A new id even for a job this miner may have had on its last connection:
  // minerd rebuilds its work only for a job id it has not seen.
  if (JobRef job = ctx_.jobs->latest(binding_.link_id)) send_job_variant(job);
}

void DownstreamSession::renotify(double now) {
  if (!ready() || closing_) return;
  // One re-send at a time: until the miner's shares show the difficulty it
  // carried (or a target interval passed, or the pool's next job went out),
  // later changes wait. Without this a flood of shares at a tiny difficulty
  // re-sent the job per share and pushed the ids the miner was still
  // working on out of sent_.
  if (renotified_at_ > 0 && now - renotified_at_ < ctx_.vardiff.target_share_seconds) return;
  if (JobRef job = ctx_.jobs->latest(binding_.link_id)) {
    send_job_variant(job);
    renotified_at_ = now;
  }
}

void DownstreamSession::send_job_variant(const JobRef& job) {
  if (!ready() || closing_ || job->link_id != binding_.link_id) return;
  vardiff_.set_ceiling(job->pool_difficulty);
  const double d = vardiff_.difficulty();
  if (d != announced_difficulty_) {
    write_set_difficulty(owned_out(), d);
    announced_difficulty_ = d;
  }
  if (++ctx_.next_variant == 0) ctx_.next_variant = 1;
  const uint64_t id = (job->seq & JobBook::kSeqMask) | (uint64_t(ctx_.next_variant) << JobBook::kVariantShift);
  char buf[20];
  auto res = std::to_chars(buf, buf + sizeof buf, id, 16);
  write_notify(owned_out(), std::string_view(buf, size_t(res.ptr - buf)), job->params, true);
  clean_next_ = false;
  sent_[sent_next_] = SentJob{id, d};
  sent_next_ = (sent_next_ + 1) % sent_.size();
}

void DownstreamSession::on_job(const JobRef& job, bool force_clean) {
  if (!ready() || closing_ || job->link_id != binding_.link_id) return;
  // Never a job older than (or the same as) the last one sent: the shell runs
  // the routing core's commands after the core has booked later jobs, so a
  // session bound in the same call was already given the newest as its first
  // job when the fan-out of an older one reaches it.
  const SentJob& last = sent_[(sent_next_ + sent_.size() - 1) % sent_.size()];
  if (last.seq && (last.seq & JobBook::kSeqMask) >= job->seq) return;
  renotified_at_ = 0;  // this job carries the current difficulty
  // Never above the difficulty of the connection that gets the shares: the
  // pool credits a share only at its own (a lowered one applies from here).
  vardiff_.set_ceiling(job->pool_difficulty);
  double d = vardiff_.difficulty();
  if (d != announced_difficulty_) {
    write_set_difficulty(owned_out(), d);
    announced_difficulty_ = d;
  }
  OutChunk chunk;
  chunk.shared = (force_clean || clean_next_ || job->params.clean_jobs) ? job->notify_line_clean : job->notify_line;
  clean_next_ = false;
  borrow_out();
  out_.push_back(std::move(chunk));
  sent_[sent_next_] = SentJob{job->seq, d};
  sent_next_ = (sent_next_ + 1) % sent_.size();
}

const DownstreamSession::SentJob* DownstreamSession::sent_job(uint64_t id) const {
  for (const SentJob& s : sent_)
    if (s.seq == id && id) return &s;
  // The job's plain id names the same work as any variant of it sent here.
  if ((id >> JobBook::kVariantShift) == 0)
    for (const SentJob& s : sent_)
      if ((s.seq & JobBook::kSeqMask) == id && id) return &s;
  return nullptr;
}

void DownstreamSession::reject(const RpcId& id, ErrorCode code, std::string_view message, std::string_view worker) {
  write_error(owned_out(), id, code, message);
  SessionEvent ev;
  ev.kind = SessionEventKind::kRejected;
  ev.auth.user.assign(worker.substr(0, 256));
  ev.error = Error{code, std::string(message)};
  events_.push(std::move(ev));
}

void DownstreamSession::on_submit(const Incoming& m, double now) {
  auto p = decode_submit(m);
  // A submit refused at decode is a rejected share like any other (counted).
  if (!p) return reject(m.id, p.error().code, p.error().message, {});
  if (!subscribed_) return reject(m.id, ErrorCode::kNotSubscribed, "not subscribed", p->worker);

  // DESIGN.md's order: known job, authorized worker, ntime, version bits,
  // duplicate, then the hash.
  // A job of the current binding, or of the one the session is leaving
  // while that connection still has it.
  const auto job_id = JobBook::parse_id(p->job_id);
  JobEntry* entry = job_id ? ctx_.jobs->find(*job_id & JobBook::kSeqMask) : nullptr;
  const SentJob* sent = nullptr;
  const Binding* space = &binding_;
  if (entry && bound_ && entry->job->link_id == binding_.link_id) {
    sent = sent_job(*job_id);
  } else if (entry && previous_ && entry->job->link_id == previous_->binding.link_id) {
    sent = previous_->find(*job_id);
    space = &previous_->binding;
  }
  if (!sent) return reject(m.id, ErrorCode::kStaleJob, "job not found (stale)", p->worker);
  const Binding& binding = *space;
  const Job& job = *entry->job;

  auto w = std::find(workers_.begin(), workers_.end(), p->worker);
  if (w == workers_.end()) return reject(m.id, ErrorCode::kUnauthorized, "unauthorized worker", p->worker);

  if (p->ntime < job.params.ntime || p->ntime - job.params.ntime > ctx_.ntime_roll_seconds)
    return reject(m.id, ErrorCode::kOther, "ntime out of range", p->worker);

  uint32_t version = job.params.version;
  if (p->version_bits) {
    if (session_mask_ == 0) return reject(m.id, ErrorCode::kOther, "version rolling not negotiated", p->worker);
    if (*p->version_bits & ~session_mask_)
      return reject(m.id, ErrorCode::kOther, "version bits outside the negotiated mask", p->worker);
    version = (version & ~session_mask_) | (*p->version_bits & session_mask_);
  }

  uint8_t en2[16];
  if (p->extranonce2_hex.size() != 2 * binding.extranonce2_size ||
      !hex_decode(p->extranonce2_hex, std::span<uint8_t>(en2, binding.extranonce2_size)))
    return reject(m.id, ErrorCode::kOther,
                  "extranonce2 must be " + std::to_string(binding.extranonce2_size) + " bytes of hex", p->worker);

  ShareWork work;
  const size_t prefix_len = binding.extranonce1.size() - binding.prefix_offset;
  std::memcpy(work.upstream_extranonce2.data(), binding.extranonce1.data() + binding.prefix_offset, prefix_len);
  std::memcpy(work.upstream_extranonce2.data() + prefix_len, en2, binding.extranonce2_size);
  work.upstream_extranonce2_size = uint8_t(prefix_len + binding.extranonce2_size);

  uint64_t fp = ctx_.fingerprint_key;
  fp = fingerprint_mix(fp, work.upstream_extranonce2.data(), work.upstream_extranonce2_size);
  uint8_t fields[12];
  put_le32(fields, p->ntime);
  put_le32(fields + 4, p->nonce);
  put_le32(fields + 8, version);
  fp = fingerprint_finish(fingerprint_mix(fp, fields, sizeof fields));
  if (!entry->seen.insert(fp)) return reject(m.id, ErrorCode::kDuplicateShare, "duplicate share", p->worker);

  Hash256 cb = coinbase_hash(job.params.coinb1, job.extranonce1,
                             std::span<const uint8_t>(work.upstream_extranonce2.data(), work.upstream_extranonce2_size),
                             job.params.coinb2);
  Hash256 root = merkle_root(cb, job.params.merkle_branch);
  work.header = build_header(version, job.params.prevhash, root, p->ntime, job.params.nbits, p->nonce);
  work.session_id = id_;
  work.slot = next_slot_++;
  OutChunk placeholder;
  placeholder.slot = work.slot;
  if (ctx_.spares) placeholder.owned = ctx_.spares->take_string();
  borrow_out();
  out_.push_back(std::move(placeholder));
  work.rpc_id = m.id;
  work.job = entry->job;
  // Lowering the difficulty helps at once; raising it waits for the next job.
  work.difficulty = std::min(sent->difficulty, vardiff_.difficulty());
  work.mined_difficulty = sent->difficulty;
  work.worker = uint32_t(w - workers_.begin());
  work.ntime = p->ntime;
  work.nonce = p->nonce;
  work.version_bits = p->version_bits;

  SessionEvent ev;
  ev.kind = SessionEventKind::kShare;
  ev.share = std::move(work);
  events_.push(std::move(ev));
}

ShareVerdict DownstreamSession::complete_share(const ShareWork& work, const Hash256& hash, double now) {
  ShareVerdict v;
  v.share_difficulty = hash_difficulty(ctx_.algorithm, hash);
  // The answer goes into the share's place in the output.
  OutChunk* place = nullptr;
  for (OutChunk& c : out_)
    if (c.slot == work.slot) place = &c;
  std::string fallback;
  std::string& out = place ? place->owned : fallback;
  if (place) place->slot = 0;
  if (!meets(hash, target_from_difficulty(ctx_.algorithm, work.difficulty))) {
    v.code = ErrorCode::kLowDifficulty;
    write_error(out, work.rpc_id, ErrorCode::kLowDifficulty, "low difficulty share");
    return v;
  }
  v.accepted = true;
  write_result_true(out, work.rpc_id);
  v.forward = meets(hash, work.job->pool_target);
  v.block = meets(hash, work.job->network_target);
  // A share of the space it left tells nothing new about this binding's
  // difficulty, but it is the miner's work all the same.
  if (renotified_at_ > 0 && work.mined_difficulty == announced_difficulty_) renotified_at_ = 0;  // in force
  if (vardiff_.on_share(work.mined_difficulty, now)) renotify(now);
  return v;
}

void DownstreamSession::on_tick(double now) {
  if (vardiff_.on_tick(now) || (renotified_at_ == 0 && vardiff_.difficulty() != announced_difficulty_ && bound_))
    renotify(now);
  // The space left behind is dropped once none of its jobs is live.
  if (previous_) {
    bool live = false;
    for (const SentJob& s : previous_->sent)
      if (s.seq) {
        const JobEntry* e = ctx_.jobs->find(s.seq & JobBook::kSeqMask);
        live = live || (e && e->job->link_id == previous_->binding.link_id);
      }
    if (!live) previous_.reset();
  }
}

void DownstreamSession::send_reconnect(std::string_view host, uint16_t port, uint32_t wait_seconds) {
  write_reconnect(owned_out(), host, port, wait_seconds, reconnect_port_as_string(agent_));
}

void DownstreamSession::violation(ErrorCode code, std::string message) {
  SessionEvent ev;
  ev.kind = SessionEventKind::kViolation;
  ev.error = Error{code, std::move(message)};
  events_.push(std::move(ev));
}

void DownstreamSession::close(std::string reason) {
  if (closing_) return;
  closing_ = true;
  close_reason_ = std::move(reason);
}

}  // namespace hashgate
