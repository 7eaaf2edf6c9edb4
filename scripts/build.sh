#!/usr/bin/env bash
# Configures and builds one configuration: release (default) or asan.
#   scripts/build.sh [release|asan] [TARGET...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  # -O1 keeps the sanitized scrypt fast enough for the integration tests.
  asan) flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHASHGATE_SANITIZE=ON "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g") ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "build/$kind" -G Ninja "${flags[@]}" >/dev/null
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "build/$kind" -j "$(nproc)" "${targets[@]}"
