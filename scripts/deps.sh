#!/usr/bin/env bash
# Installs everything hashgate needs to build and run on Debian 12; with
# --test, also what only the tests use (headless Chromium for the dashboard;
# Prometheus and promtool for the Grafana dashboard and the alerts; podman,
# buildah, runc, slirp4netns and debootstrap to build and run the image;
# HAProxy in front of hashgate for the PROXY protocol test; litecoind as the
# reference node of the job integrity tests).
# Idempotent: a second run only checks. Must run as root (or under sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev llvm
  libuv1-dev libsimdjson-dev libssl-dev openssl libmimalloc-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev libyaml-cpp-dev doctest-dev zlib1g-dev
  libsqlite3-dev libpq-dev libcurl4-openssl-dev
  python3 curl socat procps
)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium fonts-dejavu-core postgresql)
  packages+=(prometheus podman buildah runc slirp4netns debootstrap)
  packages+=(haproxy litecoind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
