# shellcheck shell=bash
# shellcheck disable=SC2034 # the helpers set variables for the sourcing script
# lib.sh: the helpers the end-to-end scripts share (scripts/quickstart.sh,
# scripts/twonodes.sh, e2e/js/run.sh): a temporary work directory removed on
# exit, ok/fail reporting under the script's own prefix, the binary to test
# (EDGENODE_BIN or a fresh build), starting a node and waiting (bounded) for
# what it prints, stopping it (SIGTERM, then SIGKILL), client API requests
# with curl and reading their JSON replies (sed for the README's one-field
# reads, node for the rest). Sourced, never run; each script keeps its own
# steps and checks.
#
#   set -euo pipefail
#   cd "$(dirname "$0")/.."
#   source scripts/lib.sh
#   lib_init quickstart     # prefix of every line, part of the work dir's name
#
# Variables the helpers set: ROOT (the repository), WORK (the work
# directory), BIN (the binary), CHECKS (ok count), NODE_PID, NODE_BASE,
# NODE_SERVER, NODE_PEER (from launch_node), NODE_RC (from term_node),
# STATUS and REPLY_BODY (from call_at). LOG_TAIL (40 unless the script
# changes it) is how many lines of each node log fail shows.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB_NAME=
WORK=
BIN=
CHECKS=0
LOG_TAIL=40
# The nodes started and not yet reaped, for cleanup; a reaped pid is dropped
# so that cleanup never signals a process that has since reused the number.
NODE_PIDS=()

# lib_init NAME: NAME prefixes every line the helpers print; makes $WORK and
# arranges for cleanup on exit.
lib_init() {
	LIB_NAME=$1
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgenode-$1.XXXXXX")
	trap cleanup EXIT
}

# cleanup: SIGKILL every node still running, then remove $WORK. Runs on exit,
# after fail has shown the logs.
cleanup() {
	local pid
	for pid in "${NODE_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	NODE_PIDS=()
	[[ -n $WORK ]] && rm -rf "$WORK"
}

say() { echo "$LIB_NAME: $*"; }
ok() {
	CHECKS=$((CHECKS + 1))
	echo "$LIB_NAME: ok: $*"
}
# fail MESSAGE: says what failed, shows the tail of every node log and exits 1.
fail() {
	echo "$LIB_NAME: FAIL: $*" >&2
	local f
	for f in "$WORK"/*.log; do
		[[ -f $f ]] || continue
		echo "--- $f (last $LOG_TAIL lines)" >&2
		tail -n "$LOG_TAIL" "$f" >&2
	done
	exit 1
}

# need TOOL...: fails unless every TOOL is on PATH.
need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || fail "$t not found"
	done
}

# find_bin: sets BIN to $EDGENODE_BIN (a relative path is taken from the
# repository root) or, without it, to a fresh build in $WORK.
find_bin() {
	BIN=${EDGENODE_BIN:-}
	if [[ -z $BIN ]]; then
		need go
		BIN=$WORK/edgenode
		say "building $BIN"
		(cd "$ROOT" && go build -o "$BIN" ./cmd/edgenode) || fail "go build ./cmd/edgenode failed"
	fi
	[[ $BIN == /* ]] || BIN=$ROOT/$BIN
	[[ -f $BIN && -x $BIN ]] || fail "no binary at $BIN"
}

# launch_node NAME [--want-peer] ARG...: runs `$BIN run ARG...` (under
# $EDGENODE_WRAPPER when set, e.g. qemu-arm) with stdout in $WORK/NAME.out and
# stderr in $WORK/NAME.log, and waits up to 30 s for its "base URL:" line (and
# with --want-peer also a "peer address:" line). Fails if it exits first.
# Sets NODE_PID, NODE_BASE, NODE_SERVER and NODE_PEER (its first QUIC peer
# address, or empty).
launch_node() {
	local name=$1 want_peer=
	shift
	if [[ ${1:-} == --want-peer ]]; then
		want_peer=1
		shift
	fi
	local out=$WORK/$name.out
	# Made here, not only by the background job's redirection, which may come
	# after the first read below.
	: >"$out"
	# shellcheck disable=SC2086 # the wrapper may be a command with arguments
	${EDGENODE_WRAPPER:-} "$BIN" run "$@" >"$out" 2>"$WORK/$name.log" &
	NODE_PID=$!
	NODE_PIDS+=("$NODE_PID")
	NODE_BASE=
	NODE_PEER=
	local _
	for _ in $(seq 300); do # up to 30 s
		NODE_BASE=$(sed -n 's/^ *base URL: *//p' "$out")
		NODE_PEER=$(sed -n 's/^ *peer address: *//p' "$out" | grep quic-v1 | head -n 1 || true)
		[[ -n $NODE_BASE && (-z $want_peer || -n $NODE_PEER) ]] && break
		kill -0 "$NODE_PID" 2>/dev/null || fail "$name exited during start-up"
		sleep 0.1
	done
	[[ -n $NODE_BASE ]] || fail "$name printed no base URL within 30 s"
	[[ -z $want_peer || -n $NODE_PEER ]] || fail "$name printed no QUIC peer address within 30 s"
	NODE_SERVER=$(sed -n 's/^ *server name: *//p' "$out")
}

# term_node PID SECONDS: SIGTERM, then waits up to SECONDS for the exit. On
# exit it reaps the node, sets NODE_RC to its exit status and returns 0;
# returns 1 if the node is still running.
term_node() {
	local pid=$1 _
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && return 1
	NODE_RC=0
	wait "$pid" || NODE_RC=$?
	forget_node "$pid"
	return 0
}

# kill_node PID: SIGKILL and reap.
kill_node() {
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_node "$1"
}

# forget_node PID: drops a reaped PID from what cleanup kills.
forget_node() {
	local keep=() pid
	for pid in "${NODE_PIDS[@]}"; do
		[[ $pid == "$1" ]] || keep+=("$pid")
	done
	NODE_PIDS=("${keep[@]}")
}

# call_at BASE TOKEN METHOD PATH [BODY]: a client API request (with the access
# token unless TOKEN is empty, with a JSON body when BODY is given); the reply
# lands in $REPLY_BODY and the status in $STATUS.
call_at() {
	local args=(-sS -o "$WORK/reply" -w '%{http_code}' --max-time 30 -X "$3" "$1$4")
	[[ -n $2 ]] && args+=(-H "Authorization: Bearer $2")
	[[ $# -ge 5 ]] && args+=(-H 'Content-Type: application/json' -d "$5")
	STATUS=$(curl "${args[@]}") || fail "curl $3 $4 failed"
	REPLY_BODY=$(cat "$WORK/reply")
}
# expect_200 WHAT: fails unless the last reply was HTTP 200.
expect_200() {
	[[ $STATUS == 200 ]] || fail "$1: HTTP $STATUS: $REPLY_BODY"
}
# field NAME: a top-level string field of the reply (the same sed as README.md).
field() {
	sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" <<<"$REPLY_BODY"
}
# bodies: the m.room.message bodies in a /messages reply's chunk, in the
# chunk's order (newest first for dir=b), comma-separated.
bodies() { message_bodies chunk-order; }
# bodies_reversed: the same the other way round (oldest first for dir=b).
bodies_reversed() { message_bodies reversed; }
message_bodies() {
	node -e '
		const reversed = process.argv[1] === "reversed";
		let s = "";
		process.stdin.on("data", d => s += d).on("end", () => {
			const chunk = JSON.parse(s).chunk || [];
			if (reversed) chunk.reverse();
			console.log(chunk.filter(e => e.type === "m.room.message").map(e => e.content.body).join(","));
		});' -- "$1" <<<"$REPLY_BODY"
}
