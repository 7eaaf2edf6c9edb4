#!/usr/bin/env bash
# Installs only what the hashgate binary needs at run time on Debian 12
# (the container's runtime stage). CI runs it too, and checks that the
# built binary's shared libraries all come from these packages
# (tests/deploy/test_deploy.py).
set -euo pipefail

packages=(
  libuv1 libsimdjson14 libssl3 libmimalloc2.0 libspdlog1.10 libfmt9
  libprometheus-cpp-core1.0 libyaml-cpp0.7 libsqlite3-0 libpq5 libcurl4
  ca-certificates tini
)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # No package files or lists left in the image's layer (Debian's own
  # images clean with an apt hook; this also covers bases without it).
  apt-get clean
  rm -rf /var/lib/apt/lists/*
fi
