#!/usr/bin/env bash
# Installs what the tests need (Debian packages, Chromium, Helm and the
# Kubernetes schemas), builds the normal and the ASan+UBSan configurations,
# and runs every test (ctest) in both; the deployment checks run once; then
# each libFuzzer target runs for 30 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
bash scripts/deploy-tools.sh
bash scripts/build.sh release
bash scripts/build.sh asan

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
status=0
echo "== release build =="
ctest --test-dir build/release --output-on-failure -j 2 || status=1
echo "== ASan+UBSan build =="
ctest --test-dir build/asan --output-on-failure -j 2 -LE deploy || status=1
echo "== libFuzzer targets, 30 s each =="
bash scripts/fuzz.sh 30 || status=1
exit $status
