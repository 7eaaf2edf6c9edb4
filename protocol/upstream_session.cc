#include "protocol/upstream_session.h"

namespace hashgate {

UpstreamSession::UpstreamSession(StratumParser& parser, UpstreamOptions opts)
    : parser_(parser), opts_(std::move(opts)), framer_(opts_.max_line) {}

uint64_t UpstreamSession::track(Pending kind, uint64_t token, double now, std::string user) {
  uint64_t id = next_id_++;
  pending_.emplace(id, PendingRequest{kind, token, now, std::move(user)});
  if (kind == Pending::kSubmit) ++pending_submits_;
  return id;
}

void UpstreamSession::start() {
  if (opts_.version_mask) write_configure(out_, track(Pending::kConfigure), opts_.version_mask);
  write_subscribe(out_, track(Pending::kSubscribe), opts_.agent, opts_.resume_session_id);
  state_ = State::kSubscribing;
  if (!opts_.user.empty()) authorize(opts_.user, opts_.password);
}

void UpstreamSession::authorize(const std::string& user, const std::string& password) {
  write_authorize(out_, track(Pending::kAuthorize, 0, 0, user), user, password);
}

void UpstreamSession::submit(uint64_t token, std::string_view worker, std::string_view job_id,
                             std::span<const uint8_t> extranonce2, uint32_t ntime, uint32_t nonce,
                             std::optional<uint32_t> version_bits, double now) {
  write_submit(out_, track(Pending::kSubmit, token, now), worker, job_id, extranonce2, ntime, nonce,
               version_mask_ ? version_bits : std::nullopt);
}

void UpstreamSession::suggest_difficulty(double d) { write_suggest_difficulty(out_, track(Pending::kSuggest), d); }

double UpstreamSession::oldest_pending(double) const {
  double oldest = 0;
  for (const auto& [id, p] : pending_)
    if (p.sent_at > 0 && (oldest == 0 || p.sent_at < oldest)) oldest = p.sent_at;
  return oldest;
}

bool UpstreamSession::next_event(UpstreamEvent& out) { return events_.next(out); }

void UpstreamSession::protocol_error(std::string message, bool fatal, bool bad_notify) {
  UpstreamEvent ev;
  ev.kind = UpstreamEventKind::kProtocolError;
  ev.fatal = fatal;
  ev.bad_notify = bad_notify;
  ev.error = Error{ErrorCode::kInvalidRequest, std::move(message)};
  events_.push(std::move(ev));
}

void UpstreamSession::receive(std::string_view bytes, double now) {
  framer_.feed(bytes);
  std::string_view line;
  for (;;) {
    auto st = framer_.next_line(line);
    if (st == LineFramer::Status::kNeedMore) return;
    if (st == LineFramer::Status::kTooLong) {
      protocol_error("pool sent a line longer than " + std::to_string(opts_.max_line) + " bytes");
      return;
    }
    if (!line.empty()) handle_line(line, now);
  }
}

void UpstreamSession::handle_line(std::string_view line, double now) {
  auto parsed = parser_.parse(line);
  if (!parsed) return protocol_error(parsed.error().message);
  if (parsed->is_response) {
    handle_response(*parsed);
  } else {
    handle_request(*parsed);
  }
}

void UpstreamSession::handle_response(const Incoming& m) {
  if (!m.numeric_id) return protocol_error("response with an id hashgate never sent");
  auto it = pending_.find(*m.numeric_id);
  if (it == pending_.end()) return protocol_error("response to unknown request " + std::to_string(*m.numeric_id));
  PendingRequest req = std::move(it->second);
  pending_.erase(it);
  UpstreamEvent ev;
  switch (req.kind) {
    case Pending::kConfigure:
      version_mask_ = m.has_error ? 0 : decode_configure_result(m);
      ev.kind = UpstreamEventKind::kConfigured;
      ev.version_mask = version_mask_;
      break;
    case Pending::kSubscribe: {
      if (m.has_error) {
        // A refused resume is retried once as a fresh subscription.
        if (!opts_.resume_session_id.empty()) {
          opts_.resume_session_id.clear();
          write_subscribe(out_, track(Pending::kSubscribe), opts_.agent, "");
          return;
        }
        return protocol_error("mining.subscribe refused: " + decode_error(m).message, true);
      }
      // Without a usable subscription the connection is worth nothing,
      // whatever jobs the pool sends on it.
      auto r = decode_subscribe_result(m);
      if (!r) return protocol_error(r.error().message, true);
      subscription_ = std::move(*r);
      state_ = State::kSubscribed;
      ev.kind = UpstreamEventKind::kSubscribed;
      ev.subscription = subscription_;
      if (opts_.extranonce_subscribe) write_extranonce_subscribe(out_, track(Pending::kExtranonceSubscribe));
      break;
    }
    case Pending::kAuthorize:
      ev.kind = UpstreamEventKind::kAuthorized;
      ev.ok = decode_bool_result(m);
      ev.user = std::move(req.user);
      if (!ev.ok) ev.error = decode_error(m);
      if (ev.ok) authorized_ = true;
      break;
    case Pending::kSubmit:
      --pending_submits_;
      ev.kind = UpstreamEventKind::kSubmitResult;
      ev.token = req.token;
      ev.ok = decode_bool_result(m);
      if (!ev.ok) ev.error = decode_error(m);
      break;
    case Pending::kExtranonceSubscribe:
    case Pending::kSuggest:
      return;  // optional features; a refusal changes nothing
  }
  events_.push(std::move(ev));
}

void UpstreamSession::handle_request(const Incoming& m) {
  UpstreamEvent ev;
  const std::string_view method = m.method;
  if (method == "mining.notify") {
    auto n = decode_notify(m);
    if (!n) return protocol_error(n.error().message, false, true);
    ev.kind = UpstreamEventKind::kJob;
    ev.notify = std::move(*n);
  } else if (method == "mining.set_difficulty") {
    auto d = decode_difficulty(m);
    if (!d) return protocol_error(d.error().message);
    difficulty_ = *d;
    ev.kind = UpstreamEventKind::kDifficulty;
    ev.difficulty = *d;
  } else if (method == "mining.set_version_mask") {
    auto v = decode_version_mask(m);
    if (!v) return protocol_error(v.error().message);
    version_mask_ = *v;
    ev.kind = UpstreamEventKind::kVersionMask;
    ev.version_mask = *v;
  } else if (method == "mining.set_extranonce") {
    auto s = decode_set_extranonce(m);
    if (!s) return protocol_error(s.error().message);
    subscription_.extranonce1 = s->extranonce1;
    subscription_.extranonce2_size = s->extranonce2_size;
    ev.kind = UpstreamEventKind::kSetExtranonce;
    ev.subscription = std::move(*s);
  } else if (method == "client.reconnect") {
    auto r = decode_reconnect(m);
    if (!r) return protocol_error(r.error().message);
    ev.kind = UpstreamEventKind::kReconnect;
    ev.reconnect = std::move(*r);
  } else if (method == "client.show_message") {
    std::string_view text;
    if (m.param_count > 0) ignore_error(m.params[0].get_string().get(text));
    ev.kind = UpstreamEventKind::kShowMessage;
    ev.error.message.assign(text.substr(0, 512));
  } else if (method == "client.get_version") {
    write_get_version_result(out_, m.id, opts_.agent);
    return;
  } else {
    if (!m.id.is_null()) write_error(out_, m.id, ErrorCode::kMethodNotFound, "unknown method");
    return protocol_error("pool sent unknown method '" + std::string(method.substr(0, 64)) + "'");
  }
  events_.push(std::move(ev));
}

}  // namespace hashgate
