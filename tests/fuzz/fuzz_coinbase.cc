// libFuzzer: the coinbase parser, whole and as a Stratum job split around
// an extranonce whose place and size come from the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/coinbase.h"

using namespace hashgate;

namespace {

void check(const Coinbase& cb) {
  uint64_t sum = 0;
  for (const auto& o : cb.outputs) sum += o.value;
  if (sum != cb.total_value || cb.total_value > kMaxMoney) __builtin_trap();
  if (cb.script_sig.size() < 2 || cb.script_sig.size() > 100 || cb.outputs.empty()) __builtin_trap();
  if (cb.witness_commitment_output && *cb.witness_commitment_output >= cb.outputs.size()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  auto whole = parse_coinbase(in);
  if (whole) check(*whole);
  if (size < 2) return 0;
  // Split the rest into coinb1 | extranonce1 | coinb2 and parse as a job.
  size_t cut = size > 2 ? data[0] % (size - 2) : 0;
  uint32_t en2_size = data[1] % 9;
  auto rest = in.subspan(2);
  size_t en1 = rest.size() - cut >= 4 ? 4 : 0;
  auto job = parse_job_coinbase(rest.first(cut), rest.subspan(cut, en1), {}, en2_size, rest.subspan(cut + en1));
  if (job) {
    check(job->coinbase);
    if (job->coinbase.size != rest.size() + en2_size) __builtin_trap();
  }
  return 0;
}
