#!/usr/bin/env bash
# run.sh: the end-to-end test with a real client. Starts edgenode on a free
# loopback port with a temporary data directory and open registration (as
# scripts/quickstart.sh does), installs matrix-js-sdk from the committed
# package-lock.json, runs sdk.test.mjs with node's built-in test runner
# against the node, and always stops the node.
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
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgenode-e2e-js.XXXXXX")
PID=
LOG=$WORK/node.log
OUT=$WORK/node.out

say() { echo "e2e-js: $*"; }

stop_node() {
	[[ -n $PID ]] || return 0
	if kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 100); do # up to 10 s, then SIGKILL
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$PID" 2>/dev/null && kill -KILL "$PID" 2>/dev/null
	fi
	wait "$PID" 2>/dev/null || true
	PID=
}
show_log() {
	[[ -s $LOG ]] || return 0
	echo "--- node log (last 60 lines of $LOG)" >&2
	tail -n 60 "$LOG" >&2
}
cleanup() {
	stop_node
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
	echo "e2e-js: FAIL: $*" >&2
	show_log
	exit 1
}

command -v node >/dev/null || fail "node not found"
command -v npm >/dev/null || fail "npm not found"

BIN=${EDGENODE_BIN:-}
if [[ -z $BIN ]]; then
	BIN=$WORK/edgenode
	say "building $BIN"
	(cd "$ROOT" && go build -o "$BIN" ./cmd/edgenode)
fi
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
[[ -x $BIN ]] || fail "no binary at $BIN"

# Dependencies first, so a slow install does not eat into the node's life.
cd "$HERE"
if [[ -f package-lock.json ]]; then
	say "npm ci"
	npm ci --no-audit --no-fund --loglevel=error
else
	say "npm install (no package-lock.json)"
	npm install --no-audit --no-fund --loglevel=error
fi

"$BIN" run --open-registration --data "$WORK/data" --client-listen 127.0.0.1:0 \
	--profile phone --no-sync-writes --log-level debug --no-p2p >"$OUT" 2>"$LOG" &
PID=$!
BASE=
for _ in $(seq 300); do # up to 30 s
	BASE=$(sed -n 's/^ *base URL: *//p' "$OUT")
	[[ -n $BASE ]] && break
	kill -0 "$PID" 2>/dev/null || fail "node exited during start-up"
	sleep 0.1
done
[[ -n $BASE ]] || fail "node printed no base URL within 30 s"
say "node started at $BASE"

rc=0
# --test-timeout bounds each test; the test file bounds every wait itself
# (30 s), so this is only a backstop. --test-force-exit: a stray SDK timer
# must not keep the run alive once the tests are done.
EDGENODE_BASE_URL=$BASE node --test --test-force-exit --test-timeout=120000 \
	--test-reporter=spec "$HERE/sdk.test.mjs" "$HERE/slidingsync.test.mjs" || rc=$?

kill -0 "$PID" 2>/dev/null || { rc=1; echo "e2e-js: the node died during the test" >&2; }
[[ $rc -eq 0 ]] || fail "node --test exited $rc"
stop_node
say "passed"
