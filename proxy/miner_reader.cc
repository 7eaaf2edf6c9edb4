#include "proxy/miner_reader.h"

#include <algorithm>

#include "proxy/log.h"

namespace hashgate {

MinerReader::MinerReader(const conf::Limits& limits, MinerWriter& writer, Hooks hooks)
    : limits_(limits), writer_(writer), hooks_(std::move(hooks)) {}

void MinerReader::cipher(Miner* m, std::string_view bytes, double now) {
  if (m->closing) return;
  std::string plain;
  const bool ok = m->tls->receive(bytes, plain);
  if (m->tls->just_established())
    log::debug("miner_tls").kv("session", m->session->id()).kv("peer", m->peer).kv("protocol", m->tls->protocol());
  if (!plain.empty()) read(m, plain, now);
  if (m->closing) return;
  writer_.flush(m);  // handshake records, or the alert that goes with a failure
  if (!ok) {
    if (!m->tls->established()) m->host->punish(m->addr, Violation::kBadProtocol);
    m->host->close_miner(m, m->tls->established() ? m->tls->error() : "TLS handshake failed: " + m->tls->error(),
                         m->tls->established() ? "tls_error" : "tls_handshake");
  }
}

void MinerReader::read(Miner* m, std::string_view bytes, double now) {
  if (m->closing) return;
  // Messages per second: a token bucket per session, refilled as time passes.
  const double t = now;
  const double rate = limits_.messages_per_second;
  m->msg_tokens = std::min(rate * 5, m->msg_tokens + (t - m->msg_tokens_at) * rate);
  m->msg_tokens_at = t;
  if (m->msg_tokens < 0) {
    m->host->punish(m->addr, Violation::kRateExceeded);
    return m->host->close_miner(m, "more than " + std::to_string(int(rate)) + " messages per second",
                                "rate_exceeded");
  }
  // A share that passes every check but the hash, from an authorized
  // session, is the miner's job, never abuse: only the other lines cost
  // (a fast miner's difficulty is raised instead; a low one costs when judged).
  const double lines = double(std::count(bytes.begin(), bytes.end(), '\n'));
  // Only whole messages count as activity: a byte now and then (a
  // slowloris) does not keep a connection alive past idle_timeout_seconds.
  if (lines > 0) m->last_message_at = t;
  submits_seen_ = 0;
  m->session->receive(bytes, t);
  drain_events(m);
  m->msg_tokens -= std::max(0.0, lines - double(submits_seen_));
  writer_.flush(m);
  if (m->session->closing()) m->host->close_miner(m, m->session->close_reason(), "protocol_error");
}

void MinerReader::drain_events(Miner* m) {
  SessionEvent ev;
  while (m->session->next_event(ev)) {
    switch (ev.kind) {
      case SessionEventKind::kNeedUpstream:
        hooks_.need_upstream(m);
        break;
      case SessionEventKind::kAuthorize:
        hooks_.authorize(m, ev.id, ev.auth);
        break;
      case SessionEventKind::kShare:
        ++submits_seen_;
        hooks_.share(m, ev.share);
        break;
      case SessionEventKind::kRejected:
        hooks_.rejected(m, ev);
        log::debug("share_rejected")
            .kv("session", m->session->id())
            .kv("peer", m->peer)
            .kv("code", int(ev.error.code))
            .kv("reason", ev.error.message);
        break;
      case SessionEventKind::kViolation:
        m->host->punish(m->addr, ev.error.message.rfind("line longer than", 0) == 0 ? Violation::kOversizedLine
                                 : ev.error.code == ErrorCode::kMethodNotFound      ? Violation::kUnknownMethod
                                                                                    : Violation::kMalformed);
        log::info("miner_protocol_error")
            .kv("session", m->session->id())
            .kv("peer", m->peer)
            .kv("code", int(ev.error.code))
            .kv("error", ev.error.message);
        break;
    }
  }
}

void MinerReader::sweep(const std::unordered_map<uint64_t, Miner*>& miners, double now,
                        const std::function<bool(const Miner*)>& owes_answer, Due& due) {
  const double t = now;
  const auto& lim = limits_;
  retargeted_.clear();
  for (const auto& [id, m] : miners) {
    m->session->on_tick(t);
    if (m->session->has_output()) retargeted_.push_back(m);  // vardiff sent a new difficulty
    if (owes_answer(m)) m->connected_at = t;
    if (m->close_at > 0 && t >= m->close_at) {
      due.overdue.push_back(m);
    } else if (!m->session->subscribed() && t - m->connected_at > lim.subscribe_timeout_seconds) {
      due.slow.emplace_back(m, "no mining.subscribe within " + std::to_string(int(lim.subscribe_timeout_seconds)) +
                                   " s");
    } else if (!m->session->authorized() && t - m->connected_at > lim.authorize_timeout_seconds) {
      due.slow.emplace_back(m, "no mining.authorize within " + std::to_string(int(lim.authorize_timeout_seconds)) +
                                   " s");
    } else if (t - m->last_message_at > lim.idle_timeout_seconds) {
      due.idle.emplace_back(m, "idle for " + std::to_string(int(lim.idle_timeout_seconds)) + " s");
    }
  }
  for (Miner* m : retargeted_) writer_.flush(m);
}

}  // namespace hashgate
