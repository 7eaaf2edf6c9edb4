#include "proxy/miner_conn.h"

#include "proxy/log.h"

namespace hashgate {
namespace {

// A closed miner's queued bytes get this long to be read before the socket
// is closed regardless (a miner that stopped reading would hold it forever).
constexpr double kLingerSeconds = 5;

struct MinerWrite {
  uv_write_t req;
  MinerWriter* writer = nullptr;
  std::vector<OutChunk> chunks;
  std::vector<uv_buf_t> bufs;
  std::string cipher;  // TLS: the chunks, encrypted
};

struct MinerShutdown {
  uv_shutdown_t req;
  MinerWriter* writer = nullptr;
};

uv_stream_t* stream_of(Miner* m) { return reinterpret_cast<uv_stream_t*>(&m->tcp); }
uv_handle_t* handle_of(Miner* m) { return reinterpret_cast<uv_handle_t*>(&m->tcp); }

}  // namespace

void free_miner(uv_handle_t* h) { delete static_cast<Miner*>(h->data); }

std::pair<size_t, size_t> unsent_from(std::span<const OutChunk> chunks, size_t written) {
  size_t i = 0;
  while (i < chunks.size() && written >= chunks[i].view().size()) written -= chunks[i++].view().size();
  return {i, written};
}

void MinerWriter::flush(Miner* m) {
  if (uv_is_closing(handle_of(m))) return;
  if (!m->session->has_output() && !(m->tls && m->tls->has_output())) return;
  auto* stream = stream_of(m);
  std::vector<OutChunk> rest;
  size_t skip = 0;  // bytes of rest.front() already written
  if (!m->tls && uv_stream_get_write_queue_size(stream) == 0) {
    // Most writes go out whole at once: try them straight from the session's
    // chunks (no request, no copies), and queue only what the socket left.
    scratch_.clear();
    m->session->take_output(scratch_);
    if (scratch_.empty()) return;
    bufs_.clear();
    size_t total = 0;
    for (const OutChunk& c : scratch_) {
      std::string_view v = c.view();
      bufs_.push_back(uv_buf_init(const_cast<char*>(v.data()), unsigned(v.size())));
      total += v.size();
    }
    int n = uv_try_write(stream, bufs_.data(), unsigned(bufs_.size()));
    if (n == int(total)) {
      m->session->recycle(scratch_);  // the answers' storage serves the next ones
      return;
    }
    if (n < 0 && n != UV_EAGAIN) {
      scratch_.clear();
      return m->host->close_miner(m, uv_strerror(n), "io_error");
    }
    auto [i, done] = unsent_from(scratch_, n > 0 ? size_t(n) : 0);
    for (; i < scratch_.size(); ++i) rest.push_back(std::move(scratch_[i]));
    skip = done;
    scratch_.clear();
  }
  if (rest.empty()) m->session->take_output(rest);
  queue_write(m, std::move(rest), skip);
}

void MinerWriter::queue_write(Miner* m, std::vector<OutChunk> chunks, size_t skip) {
  auto* w = new MinerWrite;
  w->writer = this;
  w->chunks = std::move(chunks);
  if (m->tls) {
    for (const OutChunk& c : w->chunks) m->tls->send(c.view());
    m->session->recycle(w->chunks);
    m->tls->take_output(w->cipher);
    w->bufs.push_back(uv_buf_init(w->cipher.data(), unsigned(w->cipher.size())));
  }
  w->bufs.reserve(w->chunks.size());
  for (const OutChunk& c : w->chunks) {
    std::string_view v = c.view();
    if (skip) {
      v.remove_prefix(skip);
      skip = 0;
    }
    w->bufs.push_back(uv_buf_init(const_cast<char*>(v.data()), unsigned(v.size())));
  }
  w->req.data = m;
  int rc = uv_write(&w->req, stream_of(m), w->bufs.data(), unsigned(w->bufs.size()), [](uv_write_t* req, int status) {
    auto* w = reinterpret_cast<MinerWrite*>(req);
    auto* m = static_cast<Miner*>(req->data);
    for (OutChunk& c : w->chunks) w->writer->give_back(c);
    delete w;
    if (status < 0 && status != UV_ECANCELED) m->host->close_miner(m, uv_strerror(status), "io_error");
  });
  if (rc < 0) {
    delete w;
    return m->host->close_miner(m, uv_strerror(rc), "io_error");
  }
  const size_t pending = uv_stream_get_write_queue_size(stream_of(m));
  if (pending > limits_.max_pending_output_bytes) {
    m->host->punish(m->addr, Violation::kSlowClient);
    m->abort_close = true;
    m->host->close_miner(m, "does not read its socket (" + std::to_string(pending) + " bytes waiting)",
                         "slow_reader");
  }
}

void MinerWriter::write_raw(Miner* m, std::string bytes) {
  if (m->closing || uv_is_closing(handle_of(m))) return;
  auto* w = new MinerWrite;
  w->writer = this;
  w->cipher = std::move(bytes);
  w->bufs.push_back(uv_buf_init(w->cipher.data(), unsigned(w->cipher.size())));
  w->req.data = m;
  int rc = uv_write(&w->req, stream_of(m), w->bufs.data(), 1,
                    [](uv_write_t* req, int) { delete reinterpret_cast<MinerWrite*>(req); });
  if (rc < 0) delete w;
}

void MinerWriter::shut(Miner* m, double now) {
  uv_read_stop(stream_of(m));
  if (m->abort_close) return uv_close(handle_of(m), free_miner);
  // Let queued writes reach the miner, then close; a miner that does not
  // read them within kLingerSeconds is closed anyway (close_lingering).
  auto* s = new MinerShutdown;
  s->writer = this;
  s->req.data = m;
  int rc = uv_shutdown(&s->req, stream_of(m), [](uv_shutdown_t* req, int status) {
    auto* s = reinterpret_cast<MinerShutdown*>(req);
    auto* m = static_cast<Miner*>(req->data);
    MinerWriter* writer = s->writer;
    delete s;
    if (status == UV_ECANCELED) return;  // close_lingering closed it first
    writer->lingering_.erase(m);
    uv_close(handle_of(m), free_miner);
  });
  if (rc < 0) {
    delete s;
    uv_close(handle_of(m), free_miner);
  } else {
    lingering_.emplace(m, now + kLingerSeconds);
  }
}

void MinerWriter::close_lingering(double now) {
  std::vector<Miner*> due;
  for (const auto& [m, deadline] : lingering_)
    if (now >= deadline) due.push_back(m);
  for (Miner* m : due) {
    lingering_.erase(m);
    log::debug("session_close_forced").kv("session", m->session->id()).kv("peer", m->peer)
        .kv("unsent_bytes", uint64_t(uv_stream_get_write_queue_size(stream_of(m))));
    // Cancels the shutdown (its callback sees UV_ECANCELED) and the writes.
    uv_close(handle_of(m), free_miner);
  }
}

}  // namespace hashgate
