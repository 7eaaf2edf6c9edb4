#include "protocol/job.h"

#include <charconv>

namespace hashgate {

JobBook::JobBook(Algorithm algo) : algo_(algo) {}

JobRef JobBook::add(uint32_t link_id, NotifyParams params, const Bytes& extranonce1, uint32_t extranonce2_size,
                    double pool_difficulty) {
  auto job = std::make_shared<Job>();
  job->seq = next_seq_++;
  char buf[20];
  auto res = std::to_chars(buf, buf + sizeof buf, job->seq, 16);
  job->id.assign(buf, res.ptr);
  job->link_id = link_id;
  job->params = std::move(params);
  job->extranonce1 = extranonce1;
  job->extranonce2_size = extranonce2_size;
  job->pool_difficulty = pool_difficulty;
  job->pool_target = target_from_difficulty(algo_, pool_difficulty);
  job->network_target = U256::from_compact(job->params.nbits);
  std::string line;
  write_notify(line, job->id, job->params, job->params.clean_jobs);
  job->notify_line = std::make_shared<const std::string>(line);
  if (job->params.clean_jobs) {
    job->notify_line_clean = job->notify_line;
  } else {
    line.clear();
    write_notify(line, job->id, job->params, true);
    job->notify_line_clean = std::make_shared<const std::string>(std::move(line));
  }

  auto& order = by_link_[link_id];
  if (job->params.clean_jobs) {
    for (uint64_t seq : order) entries_.erase(seq);
    order.clear();
  }
  while (order.size() >= kWindow) {
    entries_.erase(order.front());
    order.pop_front();
  }
  order.push_back(job->seq);
  JobRef ref = job;
  entries_.emplace(job->seq, JobEntry{ref, {}});
  return ref;
}

JobEntry* JobBook::find(uint64_t seq) {
  auto it = entries_.find(seq);
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<uint64_t> JobBook::parse_id(std::string_view job_id) {
  uint64_t id = 0;
  if (job_id.empty() || job_id.size() > 16) return std::nullopt;
  auto res = std::from_chars(job_id.data(), job_id.data() + job_id.size(), id, 16);
  if (res.ec != std::errc() || res.ptr != job_id.data() + job_id.size()) return std::nullopt;
  return id;
}

JobEntry* JobBook::find(std::string_view job_id) {
  auto id = parse_id(job_id);
  return id ? find(*id & kSeqMask) : nullptr;
}

JobRef JobBook::latest(uint32_t link_id) const {
  auto it = by_link_.find(link_id);
  if (it == by_link_.end() || it->second.empty()) return nullptr;
  auto e = entries_.find(it->second.back());
  return e == entries_.end() ? nullptr : e->second.job;
}

void JobBook::retire_link(uint32_t link_id) {
  auto it = by_link_.find(link_id);
  if (it == by_link_.end()) return;
  for (uint64_t seq : it->second) entries_.erase(seq);
  by_link_.erase(it);
}

}  // namespace hashgate
