// libFuzzer: everything a peer's Stratum bytes reach. The first byte picks
// the side: a miner's bytes into a DownstreamSession (bound when it asks,
// with a job, so submits reach the share checks), a pool's bytes into an
// UpstreamSession, or single lines into the parser and every decoder.
// Besides "no crash", it checks what a peer relies on: every line hashgate
// writes is one valid JSON object, a miner gets at most one answer per line
// it sent, and what is written stays proportional to what was read.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/downstream_session.h"
#include "protocol/stratum_codec.h"
#include "protocol/upstream_session.h"

using namespace hashgate;

namespace {

// Output per input byte a miner can cause, plus what a session says on its
// own (subscribe result, difficulty, one job): generous, but finite.
constexpr size_t kOutPerInByte = 64;
constexpr size_t kOutFixed = 16384;

// Checks every line of `out` (newline-terminated, no partial line) and
// returns how many of them answer a request (an "id" that is not null
// beside a "result" or an "error").
size_t check_lines(std::string_view out) {
  static simdjson::dom::parser json;
  if (!out.empty() && out.back() != '\n') __builtin_trap();  // a line cut short
  size_t answers = 0;
  while (!out.empty()) {
    const size_t nl = out.find('\n');
    const std::string_view line = out.substr(0, nl);
    out.remove_prefix(nl + 1);
    simdjson::dom::object obj;
    if (json.parse(line.data(), line.size()).get(obj)) __builtin_trap();  // not one JSON object
    simdjson::dom::element id;
    if (obj["id"].get(id) || id.is_null()) continue;
    simdjson::dom::element r;
    if (!obj["result"].get(r) || !obj["error"].get(r)) ++answers;
  }
  return answers;
}

NotifyParams a_job() {
  NotifyParams n;
  n.job_id = "j1";
  n.prevhash.fill(0x11);
  n.coinb1 = {0x01, 0x02};
  n.coinb2 = {0x03};
  n.version = 0x20000000;
  n.nbits = 0x1d00ffff;
  n.ntime = 0x60000000;
  n.clean_jobs = true;
  return n;
}

void downstream(std::string_view in) {
  static StratumParser parser(4096);
  JobBook jobs(Algorithm::kSha256d);
  SessionContext ctx;
  ctx.parser = &parser;
  ctx.jobs = &jobs;
  ctx.algorithm = Algorithm::kSha256d;
  ctx.vardiff = VardiffConfig{1e-6, 1e-6, 1, 10};
  ctx.max_line = 4096;
  DownstreamSession s(ctx, 1, 0);
  Binding b;
  b.link_id = 1;
  b.extranonce1 = {0xa0, 0, 0, 1, 0x05};
  b.prefix_offset = 4;
  b.extranonce2_size = 4;
  b.version_mask = 0x1fffe000;
  JobRef job = jobs.add(1, a_job(), Bytes{0xa0, 0, 0, 1}, 5, 1e-6);
  // Split the input in three receives, as TCP might.
  const size_t a = in.size() / 3, c = 2 * in.size() / 3;
  std::string_view parts[] = {in.substr(0, a), in.substr(a, c - a), in.substr(c)};
  double t = 0;
  std::string written;
  for (std::string_view p : parts) {
    s.receive(p, t += 1);
    SessionEvent ev;
    while (s.next_event(ev)) {
      if (ev.kind == SessionEventKind::kNeedUpstream) {
        s.bind(b, t);
        s.on_job(job, true);
      } else if (ev.kind == SessionEventKind::kAuthorize) {
        s.authorize_result(ev.id, ev.auth.user, true, {});
      } else if (ev.kind == SessionEventKind::kShare) {
        Hash256 h{};
        h[31] = uint8_t(ev.share.nonce);
        s.complete_share(ev.share, h, t);
      }
    }
    std::vector<OutChunk> out;
    s.take_output(out);
    for (const OutChunk& c : out) written += c.view();
    s.on_tick(t);
  }
  std::vector<OutChunk> out;
  s.take_output(out);
  for (const OutChunk& c : out) written += c.view();
  size_t lines_in = 0;
  for (char ch : in) lines_in += ch == '\n';
  if (check_lines(written) > lines_in) __builtin_trap();  // more answers than requests
  if (written.size() > kOutFixed + kOutPerInByte * in.size()) __builtin_trap();  // output not bounded by input
}

void upstream(std::string_view in) {
  static StratumParser parser(65536);
  UpstreamSession u(parser, UpstreamOptions{"fuzz", "u", "p", 0x1fffe000, true, "", 65536});
  u.start();
  u.output().clear();
  u.receive(in, 1);
  UpstreamEvent ev;
  while (u.next_event(ev)) {
  }
  u.submit(1, "w", "j", std::span<const uint8_t>(), 0, 0, std::nullopt, 2);
  u.receive("\n", 3);
  while (u.next_event(ev)) {
  }
  // What hashgate says to a pool: requests of its own, each one JSON line,
  // however the pool behaved.
  check_lines(u.output());
  if (u.output().size() > kOutFixed + kOutPerInByte * in.size()) __builtin_trap();
}

void decoders(std::string_view in) {
  static StratumParser parser(8192);
  auto m = parser.parse(in);
  if (!m) return;
  (void)decode_subscribe(*m);
  (void)decode_authorize(*m);
  (void)decode_submit(*m);
  (void)decode_configure(*m);
  (void)decode_difficulty(*m);
  (void)decode_notify(*m);
  (void)decode_version_mask(*m);
  (void)decode_set_extranonce(*m);
  (void)decode_reconnect(*m);
  (void)decode_subscribe_result(*m);
  (void)decode_configure_result(*m);
  (void)decode_bool_result(*m);
  (void)decode_error(*m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: downstream(in); break;
    case 1: upstream(in); break;
    default: decoders(in); break;
  }
  return 0;
}
