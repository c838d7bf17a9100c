#!/usr/bin/env bash
# idle.sh: does an idle node go quiet after a large load? (issue 14,
# acceptance 0; BENCHMARKS.md). A pi-profile node (the built binary as its
# own process, `edgenode run` defaults, loopback, mDNS off) gets 1,000 rooms
# x 20 events from one user, who then makes three initial syncs; then the
# node's CPU-seconds and garbage collections (GODEBUG=gctrace=1) are counted
# over 60 s of idle. Fails unless idle CPU < 0.6 CPU-seconds, collections
# < 20 and RSS after the load < 100 MB. A few minutes; not part of
# `make test`.
#
# Extra arguments go to the measuring program (cmd/footprint -idle),
# e.g. -syncs 0 for a send-only load, -idle-for 2m.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${EDGENODE_BIN:-bin/edgenode}
args=(-idle -bin "$BIN" -rooms 1000 -events 20 -syncs 3 -idle-for 60s)
echo "# go run ./cmd/footprint ${args[*]} $*" >&2
exec go run ./cmd/footprint "${args[@]}" "$@"
