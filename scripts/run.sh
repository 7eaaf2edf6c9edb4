#!/usr/bin/env bash
# Installs what hashgate needs, builds it, and runs it on the default config
# (conf/hashgate.yaml: the built-in test pool, Stratum on port 3333).
#   scripts/run.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh release
exec build/release/proxy/hashgate --config "${1:-conf/hashgate.yaml}"
