#include "proxy/job_fanout.h"

#include <algorithm>
#include <span>
#include <thread>

#include "proxy/log.h"

namespace hashgate {
namespace {
// A job's fan-out to at least this many sessions wakes the fanout threads.
constexpr size_t kFanoutMinParallel = 256;
}  // namespace

JobFanout::JobFanout(MinerWriter& writer)
    : writer_(writer),
      times_({1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1}) {}

void JobFanout::start(int threads) {
  const unsigned helpers = threads >= 0 ? unsigned(threads)
                                        : std::min(3u, std::max(1u, std::thread::hardware_concurrency()) - 1);
  fanout_ = std::make_unique<FanoutWriter>(helpers);
  log::info("fanout").kv("threads", helpers).kv("min_sessions", uint64_t(kFanoutMinParallel));
}

void JobFanout::begin() { started_ns_ = uv_hrtime(); }

void JobFanout::add(Miner* m) {
  if (!stage(m)) unstaged_.push_back(m);
}

void JobFanout::finish() {
  write_staged();
  for (Miner* m : unstaged_) writer_.flush(m);
  unstaged_.clear();
  times_.observe(double(uv_hrtime() - started_ns_) / 1e9);
}

bool JobFanout::stage(Miner* m) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&m->tcp);
  if (m->tls || m->closing || uv_is_closing(reinterpret_cast<uv_handle_t*>(&m->tcp)) ||
      uv_stream_get_write_queue_size(stream) != 0)
    return false;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&m->tcp), &fd) != 0) return false;
  const size_t first = chunks_.size();
  m->session->take_output(chunks_);
  if (chunks_.size() == first) return true;  // nothing to send
  staged_.push_back(Staged{m, uint32_t(first), uint32_t(chunks_.size())});
  items_.push_back(FanoutWriter::Item{fd, 0, 0, 0});
  return true;
}

void JobFanout::write_staged() {
  // The iovecs point into the chunks: taken only now that the chunk vector
  // has stopped growing (a moved short string would move its bytes).
  iovs_.clear();
  for (size_t i = 0; i < staged_.size(); ++i) {
    items_[i].first = uint32_t(iovs_.size());
    for (uint32_t c = staged_[i].first_chunk; c < staged_[i].end_chunk; ++c) {
      std::string_view v = chunks_[c].view();
      iovs_.push_back(iovec{const_cast<char*>(v.data()), v.size()});
    }
    items_[i].count = uint32_t(iovs_.size()) - items_[i].first;
  }
  fanout_->run(items_, iovs_, kFanoutMinParallel);
  for (size_t i = 0; i < staged_.size(); ++i) {
    const Staged& st = staged_[i];
    const int64_t result = items_[i].result;
    if (result < 0) {
      st.m->host->close_miner(st.m, uv_strerror(int(result)), "io_error");
      continue;
    }
    const auto chunks = std::span(chunks_).subspan(st.first_chunk, st.end_chunk - st.first_chunk);
    const auto [unsent, done] = unsent_from(chunks, size_t(result));
    if (unsent == chunks.size()) continue;
    writer_.queue_write(st.m, std::vector<OutChunk>(std::make_move_iterator(chunks.begin() + ptrdiff_t(unsent)),
                                                    std::make_move_iterator(chunks.end())),
                        done);
  }
  for (OutChunk& c : chunks_) writer_.give_back(c);
  chunks_.clear();
  staged_.clear();
  items_.clear();
}

}  // namespace hashgate
