package app

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// bigRoomMembers is the size of the room TestJoinBigRoom joins: its state,
// auth chain and membership index are several times what Badger takes in
// one transaction on the phone profile (about 300 KiB).
const bigRoomMembers = 2000

// TestJoinBigRoom: bob on B (phone profile) joins, through A's server name,
// a public room on A with bigRoomMembers members. The join is 200,
// bob's client sees every member through B's /joined_members and the
// member state through /state, B indexes the remote members, and messages
// flow both ways afterwards. Before the join stored the send_join answer in
// bounded transactions, it was 500 M_UNKNOWN (Badger: "Txn is too big to
// fit into one request").
func TestJoinBigRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := startP2P(t, nil)
	b := startP2P(t, quicAddrs(a))
	alice := testnet.Register(ctx, t, a.node, "alice")
	bob := testnet.Register(ctx, t, b.node, "bob")
	roomID := testnet.PublicRoom(ctx, t, a.node, alice.UserID)
	// The members are users of a third server, a rogue peer that joins one
	// of its users through A's make_join and send_join and then sends the
	// joins of the others over /send (50 a transaction): as fast as local
	// joins are slow, and the room's state is as a big room's is.
	start := time.Now()
	r := newRogue(t, a)
	rs := r.join(ctx, roomID, "m")
	var batch []gomatrixserverlib.PDU
	flush := func() {
		for id, e := range r.send(ctx, batch, nil) {
			if e != "" {
				t.Fatalf("A refused join %s: %s", id, e)
			}
		}
		batch = batch[:0]
	}
	for i := range bigRoomMembers - 1 {
		u := r.userID(fmt.Sprintf("u%04d", i))
		ev := r.sign(rs.version, gomatrixserverlib.ProtoEvent{SenderID: u, RoomID: roomID, Type: spec.MRoomMember, StateKey: &u,
			PrevEvents: []string{rs.last.EventID()}, Depth: rs.last.Depth() + 1, Content: spec.RawJSON(`{"membership":"join"}`),
			AuthEvents: []string{rs.auth["m.room.create|"], rs.auth["m.room.power_levels|"], rs.auth["m.room.join_rules|"]}})
		rs.last = ev
		if batch = append(batch, ev); len(batch) == 50 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	waitForEvent(ctx, t, a, alice.UserID, roomID, rs.last.EventID())
	t.Logf("%d members joined on A: %v", bigRoomMembers, time.Since(start))

	start = time.Now()
	status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName())
	if status != http.StatusOK || body["room_id"] != roomID {
		t.Fatalf("join of a room of %d members: %d %v", bigRoomMembers, status, body)
	}
	t.Logf("remote join of %d members: %v", bigRoomMembers, time.Since(start))

	room := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID)
	jm := mustCall(t, b, http.MethodGet, room+"/joined_members", bob.AccessToken, nil)
	joined, _ := jm["joined"].(map[string]any)
	if want := bigRoomMembers + 2; len(joined) != want { // alice and bob too
		t.Fatalf("B's /joined_members: %d members, want %d", len(joined), want)
	}
	for _, u := range []string{alice.UserID, bob.UserID, r.userID("m"), r.userID("u0000"), r.userID(fmt.Sprintf("u%04d", bigRoomMembers-2))} {
		if _, ok := joined[u]; !ok {
			t.Fatalf("B's /joined_members lacks %s", u)
		}
	}
	status, body = call(t, b, http.MethodGet, room+"/state/m.room.member/"+url.PathEscape(r.userID(fmt.Sprintf("u%04d", bigRoomMembers/2))), bob.AccessToken, nil)
	if status != http.StatusOK || body["membership"] != "join" {
		t.Fatalf("B's /state of a member: %d %v", status, body)
	}
	// B's membership index has the remote members (written before the
	// join's commit, in chunks).
	mi, err := b.node.Membership(ctx, roomID, r.userID("u0042"))
	if err != nil || mi.Membership != "join" {
		t.Fatalf("a remote member's membership on B: %+v, %v", mi, err)
	}

	// B's user directory has them too (indexed from the state after the
	// join's commit, in chunks: node/userdir/catchup.go).
	found := mustCall(t, b, http.MethodPost, "/_matrix/client/v3/user_directory/search", bob.AccessToken, map[string]any{"search_term": "u1234"})
	if res, _ := found["results"].([]any); len(res) != 1 {
		t.Fatalf("B's user directory for u1234: %v", found)
	}

	send := func(app *App, token, txnID, text string) string {
		t.Helper()
		body := mustCall(t, app, http.MethodPut, room+"/send/m.room.message/"+txnID, token, map[string]any{"msgtype": "m.text", "body": text})
		id, _ := body["event_id"].(string)
		if id == "" {
			t.Fatalf("send: %v", body)
		}
		return id
	}
	fromBob := send(b, bob.AccessToken, "b1", "hi all")
	waitForEvent(ctx, t, a, alice.UserID, roomID, fromBob)
	fromAlice := send(a, alice.AccessToken, "a1", "hi bob")
	waitForEvent(ctx, t, b, bob.UserID, roomID, fromAlice)
}

// TestCatchUpLongGap: a peer sends A only the newest of 450 messages A has
// not seen; A fetches the others with get_missing_events (its walk takes up
// to 500) and takes them all in: /send is 200 with no per-PDU error and
// every message is in alice's room. A input them all in one transaction
// before, and answered 500 M_UNKNOWN (Badger: "Txn is too big") from about
// 300 on the phone profile, so the sender would have retried forever.
func TestCatchUpLongGap(t *testing.T) {
	const gap = 450
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rr := startRogueRoom(ctx, t, core.PresetPublicChat)
	chain := rr.r.chain(rr.rs, "m", gap)
	tip := chain[len(chain)-1]
	if res := rr.r.send(ctx, []gomatrixserverlib.PDU{tip}, nil); res[tip.EventID()] != "" {
		t.Fatalf("A refused the newest message: %s", res[tip.EventID()])
	}
	page, err := rr.a.node.RoomEvents(ctx, rr.alice.UserID, rr.roomID, core.Range{Backwards: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ev := range page.Events {
		have[ev.PDU.EventID()] = true
	}
	for i, ev := range chain {
		if !have[ev.EventID()] {
			t.Fatalf("message %d of %d is not in alice's room on A", i, gap)
		}
	}
	rr.say(ctx, t, "after the gap")
}
