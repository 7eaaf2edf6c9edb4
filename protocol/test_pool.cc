#include "protocol/test_pool.h"

#include <algorithm>

#include "hashing/header.h"

namespace hashgate {
namespace {

constexpr size_t kJobsKept = 8;

void append_le(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
}

}  // namespace

TestPool::TestPool(Algorithm algo, TestPoolOptions opts, uint64_t seed, double now)
    : algo_(algo), opts_(opts), rng_(seed), parser_(16384) {
  if (opts_.nbits == 0) opts_.nbits = algo == Algorithm::kScrypt ? 0x1e0ffff0 : 0x1d00ffff;
  target_ = target_from_difficulty(algo_, opts_.difficulty);
  new_job(true, now);
}

std::unique_ptr<TestPool::Connection> TestPool::connect() {
  auto c = std::unique_ptr<Connection>(new Connection(*this, next_extranonce1_++));
  connections_.push_back(c.get());
  return c;
}

void TestPool::on_tick(double now) {
  if (now - last_job_at_ >= opts_.job_interval_seconds) new_job(false, now);
}

void TestPool::new_job(bool clean, double now) {
  last_job_at_ = now;
  // A new block height every clean job, like a pool after a new block.
  if (clean) ++height_;
  IssuedJob job;
  char id[20];
  std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(next_job_++));
  job.id = id;
  NotifyParams& p = job.params;
  p.job_id = job.id;
  for (auto& b : p.prevhash) b = uint8_t(rng_());
  // coinb1: version, one input spending nothing, the scriptSig up to the
  // extranonces (BIP34 height push, then a push of both extranonces).
  const std::string tag = "/hashgate test pool/";
  const uint32_t en_size = opts_.extranonce1_size + opts_.extranonce2_size;
  Bytes& c1 = p.coinb1;
  append_le(c1, 1, 4);
  c1.push_back(1);
  c1.insert(c1.end(), 32, 0);
  append_le(c1, 0xffffffff, 4);
  c1.push_back(uint8_t(4 + 1 + en_size + 1 + tag.size()));
  c1.push_back(3);
  append_le(c1, height_, 3);
  c1.push_back(uint8_t(en_size));
  // coinb2: the pool tag, the sequence, one P2PKH output, the lock time.
  Bytes& c2 = p.coinb2;
  c2.push_back(uint8_t(tag.size()));
  c2.insert(c2.end(), tag.begin(), tag.end());
  append_le(c2, 0xffffffff, 4);
  c2.push_back(1);
  append_le(c2, 625000000, 8);
  c2.push_back(25);
  c2.push_back(0x76);
  c2.push_back(0xa9);
  c2.push_back(20);
  for (int i = 0; i < 20; ++i) c2.push_back(uint8_t(rng_()));
  c2.push_back(0x88);
  c2.push_back(0xac);
  append_le(c2, 0, 4);
  size_t branches = rng_() % 5;
  for (size_t i = 0; i < branches; ++i) {
    Hash256 h;
    for (auto& b : h) b = uint8_t(rng_());
    p.merkle_branch.push_back(h);
  }
  p.version = 0x20000000;
  p.nbits = opts_.nbits;
  p.ntime = uint32_t(1700000000 + uint64_t(now));
  p.clean_jobs = clean;
  if (clean) jobs_.clear();
  if (jobs_.size() >= kJobsKept) jobs_.pop_front();
  jobs_.push_back(job);
  ++stats_.jobs;
  std::string line;
  write_notify(line, job.id, job.params, clean);
  broadcast(line);
}

void TestPool::broadcast(const std::string& line) {
  for (Connection* c : connections_)
    if (c->subscribed_) c->out_ += line;
}

const TestPool::IssuedJob* TestPool::find_job(std::string_view id) const {
  for (const auto& j : jobs_)
    if (j.id == id) return &j;
  return nullptr;
}

TestPool::Connection::Connection(TestPool& pool, uint32_t extranonce1) : pool_(pool), framer_(16384) {
  extranonce1_.resize(pool.opts_.extranonce1_size);
  for (size_t i = 0; i < extranonce1_.size(); ++i)
    extranonce1_[extranonce1_.size() - 1 - i] = uint8_t(extranonce1 >> (8 * (i % 4)));
}

TestPool::Connection::~Connection() {
  auto& v = pool_.connections_;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void TestPool::Connection::receive(std::string_view bytes, double now) {
  framer_.feed(bytes);
  std::string_view line;
  for (;;) {
    auto st = framer_.next_line(line);
    if (st != LineFramer::Status::kLine) return;
    auto m = pool_.parser_.parse(line);
    if (!m) {
      write_error(out_, RpcId{}, m.error().code, m.error().message);
      continue;
    }
    if (!m->is_response) handle(*m, now);
  }
}

void TestPool::Connection::handle(const Incoming& m, double now) {
  if (m.method == "mining.subscribe") {
    subscribed_ = true;
    write_subscribe_result(out_, m.id, "testpool", extranonce1_, pool_.opts_.extranonce2_size);
  } else if (m.method == "mining.authorize") {
    auto a = decode_authorize(m);
    if (!a) return write_error(out_, m.id, a.error().code, a.error().message);
    workers_.push_back(a->user);
    write_result_true(out_, m.id);
    write_set_difficulty(out_, pool_.opts_.difficulty);
    const IssuedJob& j = pool_.jobs_.back();
    write_notify(out_, j.id, j.params, true);
  } else if (m.method == "mining.configure") {
    auto c = decode_configure(m);
    if (!c) return write_error(out_, m.id, c.error().code, c.error().message);
    version_mask_ = c->version_rolling ? (c->version_rolling_mask & pool_.opts_.version_mask) : 0;
    write_configure_result(out_, m.id, *c, version_mask_ != 0, version_mask_);
  } else if (m.method == "mining.extranonce.subscribe" || m.method == "mining.suggest_difficulty") {
    write_result_true(out_, m.id);
  } else if (m.method == "mining.submit") {
    on_submit(m);
  } else {
    write_error(out_, m.id, ErrorCode::kMethodNotFound, "unknown method");
  }
}

void TestPool::Connection::on_submit(const Incoming& m) {
  auto s = decode_submit(m);
  TestPoolStats& st = pool_.stats_;
  auto refuse = [&](ErrorCode code, std::string_view msg) {
    ++st.rejected;
    write_error(out_, m.id, code, msg);
  };
  if (!s) return refuse(s.error().code, s.error().message);
  if (std::find(workers_.begin(), workers_.end(), s->worker) == workers_.end())
    return refuse(ErrorCode::kUnauthorized, "unauthorized worker");
  const IssuedJob* job = pool_.find_job(s->job_id);
  if (!job) {
    ++st.stale;
    return refuse(ErrorCode::kStaleJob, "job not found");
  }
  uint8_t en2[16];
  const uint32_t n2 = pool_.opts_.extranonce2_size;
  if (s->extranonce2_hex.size() != 2 * n2 || !hex_decode(s->extranonce2_hex, std::span<uint8_t>(en2, n2)))
    return refuse(ErrorCode::kOther, "bad extranonce2 size");
  if (s->ntime < job->params.ntime || s->ntime > job->params.ntime + 7200)
    return refuse(ErrorCode::kOther, "ntime out of range");
  uint32_t version = job->params.version;
  if (s->version_bits) {
    if (*s->version_bits & ~version_mask_) return refuse(ErrorCode::kOther, "version bits outside mask");
    version = (version & ~version_mask_) | (*s->version_bits & version_mask_);
  }
  std::string key = std::string(s->job_id) + ':' + std::string(s->extranonce2_hex) + ':' + hex_u32_string(s->ntime) +
                    ':' + hex_u32_string(s->nonce) + ':' + hex_u32_string(version) + ':' + hex_encode(extranonce1_);
  if (!pool_.seen_.insert(key).second) {
    ++st.duplicate;
    return refuse(ErrorCode::kDuplicateShare, "duplicate share");
  }
  Hash256 cb = coinbase_hash(job->params.coinb1, extranonce1_, std::span<const uint8_t>(en2, n2), job->params.coinb2);
  Header h = build_header(version, job->params.prevhash, merkle_root(cb, job->params.merkle_branch), s->ntime,
                          job->params.nbits, s->nonce);
  Hash256 pow = pow_hash(pool_.algo_, h);
  if (!meets(pow, pool_.target_)) {
    ++st.low_difficulty;
    return refuse(ErrorCode::kLowDifficulty, "low difficulty share");
  }
  if (meets(pow, U256::from_compact(job->params.nbits))) ++st.blocks;
  ++st.accepted;
  st.accepted_difficulty += pool_.opts_.difficulty;
  write_result_true(out_, m.id);
}

}  // namespace hashgate
