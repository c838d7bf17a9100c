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
# shellcheck source=SCRIPTDIR/lib.sh
source scripts/lib.sh
lib_init twonodes

need curl node
find_bin

# start NAME [--peer ADDR]: starts a node; sets <NAME>_BASE, <NAME>_SERVER and
# <NAME>_PEER (its first QUIC peer address).
start() {
	local name=$1
	shift
	launch_node "$name" --want-peer --open-registration --data "$WORK/$name" --client-listen 127.0.0.1:0 --profile phone \
		--no-sync-writes --mdns=false --p2p-listen /ip4/127.0.0.1/udp/0/quic-v1 "$@"
	printf -v "${name}_BASE" '%s' "$NODE_BASE"
	printf -v "${name}_SERVER" '%s' "$NODE_SERVER"
	printf -v "${name}_PEER" '%s' "$NODE_PEER"
	ok "node $name started at $NODE_BASE"
}

register() { # BASE NAME -> TOKEN
	call_at "$1" "" POST /_matrix/client/v3/register \
		"{\"username\":\"$2\",\"password\":\"pw-$2-42\",\"auth\":{\"type\":\"m.login.dummy\"}}"
	expect_200 "register $2"
	field access_token
}
# wait_for BASE TOKEN ROOM WANT: polls /messages (up to 30 s) until the
# message bodies are WANT.
wait_for() {
	local got=
	for _ in $(seq 300); do
		call_at "$1" "$2" GET "/_matrix/client/v3/rooms/$3/messages?dir=b&limit=50"
		[[ $STATUS == 200 ]] && got=$(bodies_reversed) && [[ $got == "$4" ]] && return 0
		sleep 0.1
	done
	fail "messages on $1 are [$got], want [$4]"
}

start A
start B --peer "$A_PEER"

ALICE=$(register "$A_BASE" alice)
BOB=$(register "$B_BASE" bob)
ok "alice registered on A, bob on B"

call_at "$A_BASE" "$ALICE" POST /_matrix/client/v3/createRoom '{"preset":"public_chat","name":"two nodes"}'
expect_200 "createRoom on A"
ROOM=$(field room_id)
ok "alice created $ROOM on A"

call_at "$B_BASE" "$BOB" POST "/_matrix/client/v3/join/$ROOM?server_name=$A_SERVER" '{}'
expect_200 "bob joins through A"
ok "bob joined the room on A from B"

call_at "$A_BASE" "$ALICE" PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/t1" '{"msgtype":"m.text","body":"hello from A"}'
expect_200 "alice sends"
wait_for "$B_BASE" "$BOB" "$ROOM" "hello from A"
ok "alice's message reached bob on B"

call_at "$B_BASE" "$BOB" PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/t1" '{"msgtype":"m.text","body":"hello from B"}'
expect_200 "bob sends"
wait_for "$A_BASE" "$ALICE" "$ROOM" "hello from A,hello from B"
ok "bob's message reached alice on A"
wait_for "$B_BASE" "$BOB" "$ROOM" "hello from A,hello from B"
ok "both nodes hold the same conversation"

echo "twonodes: $CHECKS passed, 0 failed"
