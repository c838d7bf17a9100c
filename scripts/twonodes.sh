#!/usr/bin/env bash
# twonodes.sh: two `edgenode run` processes on this machine, with separate
# data directories, find each other through a static peer address and two
# curl users, one on each, chat in a shared room over libp2p (QUIC on
# loopback). Nothing outside this machine is contacted (mDNS is off).
#
#   scripts/twonodes.sh                         build into a temp dir and test that
#   EDGENODE_BIN=bin/edgenode scripts/twonodes.sh   test a given binary
#
# Needs bash, curl, node (to read JSON) and go (unless EDGENODE_BIN is given).
# Every wait is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edgenode-twonodes.XXXXXX")
PIDS=()
CHECKS=0

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "twonodes: FAIL: $*" >&2
	for f in "$WORK"/*.log; do
		[[ -f $f ]] || continue
		echo "--- $f (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
	exit 1
}
ok() {
	CHECKS=$((CHECKS + 1))
	echo "twonodes: ok: $*"
}

BIN=${EDGENODE_BIN:-}
if [[ -z $BIN ]]; then
	BIN=$WORK/edgenode
	go build -o "$BIN" ./cmd/edgenode
fi

# start NAME [--peer ADDR]: starts a node; sets <NAME>_BASE, <NAME>_SERVER and
# <NAME>_PEER (its first QUIC peer address).
start() {
	local name=$1
	shift
	local out=$WORK/$name.out
	"$BIN" run --open-registration --data "$WORK/$name" --client-listen 127.0.0.1:0 --profile phone \
		--no-sync-writes --mdns=false --p2p-listen /ip4/127.0.0.1/udp/0/quic-v1 "$@" >"$out" 2>"$WORK/$name.log" &
	PIDS+=($!)
	local base=
	for _ in $(seq 300); do # up to 30 s
		base=$(sed -n 's/^ *base URL: *//p' "$out")
		[[ -n $base ]] && grep -q 'peer address:' "$out" && break
		sleep 0.1
	done
	[[ -n $base ]] || fail "$name printed no base URL within 30 s"
	printf -v "${name}_BASE" '%s' "$base"
	printf -v "${name}_SERVER" '%s' "$(sed -n 's/^ *server name: *//p' "$out")"
	printf -v "${name}_PEER" '%s' "$(sed -n 's/^ *peer address: *//p' "$out" | grep quic-v1 | head -n 1)"
	ok "node $name started at $base"
}

# call BASE TOKEN METHOD PATH [BODY]: the reply lands in $REPLY and the status in $STATUS.
call() {
	local args=(-sS -o "$WORK/reply" -w '%{http_code}' --max-time 30 -X "$3" "$1$4")
	[[ -n $2 ]] && args+=(-H "Authorization: Bearer $2")
	[[ $# -ge 5 ]] && args+=(-H 'Content-Type: application/json' -d "$5")
	STATUS=$(curl "${args[@]}") || fail "curl $3 $4 failed"
	REPLY=$(cat "$WORK/reply")
}
expect_200() { [[ $STATUS == 200 ]] || fail "$1: HTTP $STATUS: $REPLY"; }
field() { sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p" <<<"$REPLY"; }
# bodies: the message bodies in a /messages reply, oldest first, comma-separated.
bodies() {
	node -e '
		let s = "";
		process.stdin.on("data", d => s += d).on("end", () => {
			const chunk = (JSON.parse(s).chunk || []).reverse();
			console.log(chunk.filter(e => e.type === "m.room.message").map(e => e.content.body).join(","));
		});' <<<"$REPLY"
}
register() { # BASE NAME -> TOKEN
	call "$1" "" POST /_matrix/client/v3/register \
		"{\"username\":\"$2\",\"password\":\"pw-$2-42\",\"auth\":{\"type\":\"m.login.dummy\"}}"
	expect_200 "register $2"
	field access_token
}
# wait_for BASE TOKEN ROOM WANT: polls /messages (up to 30 s) until the
# message bodies are WANT.
wait_for() {
	local got=
	for _ in $(seq 300); do
		call "$1" "$2" GET "/_matrix/client/v3/rooms/$3/messages?dir=b&limit=50"
		[[ $STATUS == 200 ]] && got=$(bodies) && [[ $got == "$4" ]] && return 0
		sleep 0.1
	done
	fail "messages on $1 are [$got], want [$4]"
}

start A
start B --peer "$A_PEER"

ALICE=$(register "$A_BASE" alice)
BOB=$(register "$B_BASE" bob)
ok "alice registered on A, bob on B"

call "$A_BASE" "$ALICE" POST /_matrix/client/v3/createRoom '{"preset":"public_chat","name":"two nodes"}'
expect_200 "createRoom on A"
ROOM=$(field room_id)
ok "alice created $ROOM on A"

call "$B_BASE" "$BOB" POST "/_matrix/client/v3/join/$ROOM?server_name=$A_SERVER" '{}'
expect_200 "bob joins through A"
ok "bob joined the room on A from B"

call "$A_BASE" "$ALICE" PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/t1" '{"msgtype":"m.text","body":"hello from A"}'
expect_200 "alice sends"
wait_for "$B_BASE" "$BOB" "$ROOM" "hello from A"
ok "alice's message reached bob on B"

call "$B_BASE" "$BOB" PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/t1" '{"msgtype":"m.text","body":"hello from B"}'
expect_200 "bob sends"
wait_for "$A_BASE" "$ALICE" "$ROOM" "hello from A,hello from B"
ok "bob's message reached alice on A"
wait_for "$B_BASE" "$BOB" "$ROOM" "hello from A,hello from B"
ok "both nodes hold the same conversation"

echo "twonodes: $CHECKS passed, 0 failed"
