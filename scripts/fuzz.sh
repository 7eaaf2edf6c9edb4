#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build/fuzz) and runs each for a
# bounded time on a copy of its seed corpus (tests/fuzz/corpus/TARGET).
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 30; stratum connect config hw coinbase proxy_header integrity http_head ledger_query)
# Exits non-zero if a target crashes, leaks or trips a sanitizer; the crash
# input is left in build/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(stratum connect config hw coinbase proxy_header integrity http_head ledger_query)

CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHASHGATE_FUZZ=ON >/dev/null
cmake --build build/fuzz -j "$(nproc)" >/dev/null
mkdir -p build/fuzz/artifacts
status=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$t/." "$work/"
  echo "== fuzz_$t for ${seconds}s =="
  if ! build/fuzz/tests/fuzz/fuzz_"$t" "$work" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/ 2>build/fuzz/fuzz_"$t".log; then
    status=1
    tail -40 build/fuzz/fuzz_"$t".log
  fi
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" build/fuzz/fuzz_"$t".log || true
  grep -E "cov: [0-9]+" build/fuzz/fuzz_"$t".log | tail -1 || true
  rm -rf "$work"
done
exit $status
