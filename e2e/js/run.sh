#!/usr/bin/env bash
# run.sh: the end-to-end test with a real client. Starts edgenode on a free
# loopback port with a temporary data directory and open registration (as
# scripts/quickstart.sh does), installs matrix-js-sdk from the committed
# package-lock.json, runs sdk.test.mjs, slidingsync.test.mjs and
# keybackup.test.mjs (Rust crypto) with node's built-in test runner
# against the node, and always stops the node. Two more nodes, A and B
# (B dialling A over libp2p QUIC on loopback), serve media.test.mjs.
#
#   e2e/js/run.sh                                 build into a temp dir and test that
#   EDGENODE_BIN=bin/edgenode e2e/js/run.sh       test a given binary (make e2e-js)
#   E2E_SDK_LOG=debug e2e/js/run.sh               show matrix-js-sdk's own log
#   E2E_HTTP_LOG=1 e2e/js/run.sh                  print every request the clients make
#
# Needs bash, go (unless EDGENODE_BIN is given), node and npm. Nothing outside
# this machine is contacted except the npm registry by `npm ci`. Every wait
# is bounded.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$HERE/../../scripts/lib.sh"
lib_init e2e-js
LOG_TAIL=60
PID=

# stop_node [PID]: SIGTERM, up to 10 s for the exit, then SIGKILL ($PID
# unless given).
stop_node() {
	local pid=${1:-$PID}
	[[ -n $pid ]] || return 0
	term_node "$pid" 10 || kill_node "$pid"
	[[ -n ${1:-} ]] || PID=
}

need node npm
find_bin

# Dependencies first, so a slow install does not eat into the node's life.
cd "$HERE"
if [[ -f package-lock.json ]]; then
	say "npm ci"
	npm ci --no-audit --no-fund --loglevel=error
else
	say "npm install (no package-lock.json)"
	npm install --no-audit --no-fund --loglevel=error
fi

launch_node node --open-registration --data "$WORK/data" --client-listen 127.0.0.1:0 \
	--profile phone --no-sync-writes --log-level debug --no-p2p
PID=$NODE_PID BASE=$NODE_BASE
say "node started at $BASE"

# Two more nodes for media.test.mjs: A, and B dialling A over QUIC on
# loopback (mDNS and the DHT off: nothing beyond this machine).
p2p_node() { # NAME ARG...
	local name=$1
	shift
	launch_node "$name" --want-peer --open-registration --data "$WORK/$name" --client-listen 127.0.0.1:0 \
		--profile phone --no-sync-writes --log-level debug --mdns=false --dht=false \
		--p2p-listen /ip4/127.0.0.1/udp/0/quic-v1 "$@"
}
p2p_node nodeA
A_PID=$NODE_PID A_BASE=$NODE_BASE A_SERVER=$NODE_SERVER A_PEER=$NODE_PEER
p2p_node nodeB --peer "$A_PEER"
B_PID=$NODE_PID B_BASE=$NODE_BASE
say "nodes A ($A_BASE) and B ($B_BASE) started, B dialling A"

rc=0
# --test-timeout bounds each test; the test file bounds every wait itself
# (30 s), so this is only a backstop. --test-force-exit: a stray SDK timer
# must not keep the run alive once the tests are done.
EDGENODE_BASE_URL=$BASE EDGENODE_A_URL=$A_BASE EDGENODE_A_SERVER=$A_SERVER EDGENODE_B_URL=$B_BASE \
	node --test --test-force-exit --test-timeout=120000 \
	--test-reporter=spec "$HERE/sdk.test.mjs" "$HERE/slidingsync.test.mjs" "$HERE/keybackup.test.mjs" "$HERE/media.test.mjs" || rc=$?

for p in "$PID" "$A_PID" "$B_PID"; do
	kill -0 "$p" 2>/dev/null || { rc=1; echo "e2e-js: a node died during the test" >&2; }
done
[[ $rc -eq 0 ]] || fail "node --test exited $rc"
stop_node
stop_node "$A_PID"
stop_node "$B_PID"
say "passed"
