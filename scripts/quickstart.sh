#!/usr/bin/env bash
# quickstart.sh: runs README.md's curl walkthrough against a freshly built
# edgenode and checks its answers, then checks a restart keeps everything.
#
#   scripts/quickstart.sh              build into a temp dir and test that
#   EDGENODE_BIN=bin/edgenode scripts/quickstart.sh   test a given binary
#   EDGENODE_WRAPPER=qemu-arm EDGENODE_BIN=bin/edgenode-linux-armv7 ...
#                                      run it under an emulator (make e2e-arm)
#
# It needs only bash, curl, node (to read JSON) and go (unless EDGENODE_BIN
# is given): what a fresh machine has. The node listens on a free loopback
# port with a temporary data directory; nothing outside this machine is
# contacted. Every wait is bounded.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/lib.sh
source scripts/lib.sh
lib_init quickstart
DATA=$WORK/data
PID=

need curl node
find_bin

# start_node N: start the node on $DATA on a free port; sets PID, BASE and
# SERVER_NAME from what it prints.
start_node() {
	launch_node "node$1" --open-registration --data "$DATA" --client-listen 127.0.0.1:0 --profile phone --mdns=false --p2p-listen /ip4/127.0.0.1/udp/0/quic-v1
	PID=$NODE_PID BASE=$NODE_BASE SERVER_NAME=$NODE_SERVER
	ok "node $1 started at $BASE (server name ${SERVER_NAME:0:12}...)"
}

# stop_node: SIGTERM, then the node must exit 0 within 40 s (its shutdown
# timeout is 30 s).
stop_node() {
	term_node "$PID" 40 || fail "node did not exit within 40 s of SIGTERM"
	PID=
	[[ $NODE_RC -eq 0 ]] || fail "node exited $NODE_RC after SIGTERM, want 0"
	ok "node stopped on SIGTERM with exit 0"
}

# call METHOD PATH [BODY]: a client API request on this node with $TOKEN when
# set; the reply lands in $REPLY_BODY and the status in $STATUS.
call() { call_at "$BASE" "${TOKEN:-}" "$@"; }

# --- first run: the README walkthrough ---
start_node 1
FIRST_SERVER_NAME=$SERVER_NAME

call GET /_matrix/client/versions
expect_200 "GET /versions"
ok "/versions answers"

call POST /_matrix/client/v3/register \
	'{"username":"alice","password":"wonderland-42","auth":{"type":"m.login.dummy"}}'
expect_200 "register"
TOKEN=$(field access_token)
USER_ID=$(field user_id)
[[ -n $TOKEN && $USER_ID == "@alice:$SERVER_NAME" ]] || fail "register reply lacks access_token or user_id: $REPLY_BODY"
ok "registered $USER_ID"

call POST /_matrix/client/v3/createRoom '{"name":"hello"}'
expect_200 "createRoom"
ROOM=$(field room_id)
[[ $ROOM == '!'* ]] || fail "createRoom reply lacks room_id: $REPLY_BODY"
ok "created room $ROOM"

for i in 1 2 3; do
	call PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/txn$i" \
		"{\"msgtype\":\"m.text\",\"body\":\"hello $i\"}"
	expect_200 "send message $i"
	[[ -n $(field event_id) ]] || fail "send reply lacks event_id: $REPLY_BODY"
done
ok "sent three messages"

call GET "/_matrix/client/v3/rooms/$ROOM/messages?dir=b&limit=10"
expect_200 "messages"
got=$(bodies)
[[ $got == "hello 3,hello 2,hello 1" ]] || fail "messages dir=b gave bodies [$got], want [hello 3,hello 2,hello 1]"
ok "read the three messages back, newest first"

stop_node

# --- second run on the same data directory: nothing may be lost ---
start_node 2
[[ $SERVER_NAME == "$FIRST_SERVER_NAME" ]] || fail "server name changed across restart: $FIRST_SERVER_NAME -> $SERVER_NAME"
ok "identity kept across restart"

call GET "/_matrix/client/v3/rooms/$ROOM/messages?dir=b&limit=10"
expect_200 "messages after restart (old access token)"
got=$(bodies)
[[ $got == "hello 3,hello 2,hello 1" ]] || fail "after restart, messages gave [$got], want [hello 3,hello 2,hello 1]"
ok "access token, room and messages kept across restart"

call PUT "/_matrix/client/v3/rooms/$ROOM/send/m.room.message/txn4" '{"msgtype":"m.text","body":"hello 4"}'
expect_200 "send after restart"
call GET "/_matrix/client/v3/rooms/$ROOM/messages?dir=b&limit=10"
expect_200 "messages after restart"
got=$(bodies)
[[ $got == "hello 4,hello 3,hello 2,hello 1" ]] || fail "after a send on the restarted node, messages gave [$got]"
ok "room state kept: sending after restart works"

TOKEN=
call POST /_matrix/client/v3/register \
	'{"username":"alice","password":"other","auth":{"type":"m.login.dummy"}}'
[[ $STATUS == 400 && $REPLY_BODY == *M_USER_IN_USE* ]] || fail "re-registering alice after restart: HTTP $STATUS $REPLY_BODY, want 400 M_USER_IN_USE"
ok "account kept across restart"

stop_node
echo "quickstart: $CHECKS passed, 0 failed"
