#!/usr/bin/env bash
# Installs a built hashgate (build/release) under DESTDIR (default: /):
# binary (stripped: the debug info stays in build/release), default config,
# systemd unit, README. The container's build stage uses it; CI runs it into
# a temporary DESTDIR.
#   scripts/install.sh [DESTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-/}
DESTDIR="$dest" cmake --install build/release --prefix /usr/local --strip >/dev/null
test -x "$dest/usr/local/bin/hashgate"
"$dest/usr/local/bin/hashgate" --check-config "$dest/usr/local/etc/hashgate/hashgate.yaml" >/dev/null
echo "installed under $dest"
