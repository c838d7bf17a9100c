#!/usr/bin/env bash
# footprint.sh: measures edgenode's small-device footprint (BENCHMARKS.md,
# "Footprint") with cmd/footprint: binary sizes, idle RSS, RSS after
# 100 rooms x 100 events with 10 peers connected, start-up time to /versions
# on the loaded database, disk per 10,000 events, and disk by storage
# profile at 1,000 / 10,000 / 100,000 events (about 3 minutes a profile;
# -disk-steps 1000,10000 for a shorter run, -disk-only for that table alone). `make footprint` builds
# the binaries first. Takes a few minutes; prints Markdown tables.
#
# Extra arguments go to the measuring program (e.g. -rooms 10 -events 10).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${EDGENODE_BIN:-bin/edgenode}
args=(-bin "$BIN")
[ -f "$BIN-linux-arm64" ] && args+=(-arm64 "$BIN-linux-arm64")
[ -f "$BIN-linux-armv7" ] && args+=(-armv7 "$BIN-linux-armv7")
echo "# go run ./cmd/footprint ${args[*]} $*" >&2
exec go run ./cmd/footprint "${args[@]}" "$@"
