package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// TestRelationsOverFederation: alice on A edits her message, reacts to it
// and replies to it in a thread; bob on B, whose node got the events over
// libp2p, is served them aggregated by his own node (GET /relations,
// /threads, and the bundled m.replace and m.thread on /event). Redacting
// the edit on A takes it out of B's aggregation too.
func TestRelationsOverFederation(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := sharedRoom(ctx, t, a, b)
	send := func(evType string, content map[string]any) string {
		t.Helper()
		raw, _ := json.Marshal(content)
		id, err := a.node.SendEvent(ctx, core.SendRequest{Sender: r.alice.UserID, DeviceID: r.alice.DeviceID, RoomID: r.roomID, Type: evType, Content: raw})
		if err != nil {
			t.Fatalf("send %s: %v", evType, err)
		}
		return id
	}
	rel := func(relType, parent string) map[string]any {
		return map[string]any{"rel_type": relType, "event_id": parent}
	}
	root := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "root"})
	edit := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "* edited",
		"m.new_content": map[string]any{"msgtype": "m.text", "body": "edited"}, "m.relates_to": rel("m.replace", root)})
	reaction := send("m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}})
	reply := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "in thread", "m.relates_to": rel("m.thread", root)})
	waitForEvent(ctx, t, b, r.bob.UserID, r.roomID, reply)

	token := r.bob.AccessToken
	room := url.PathEscape(r.roomID)
	relations := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/relations/"+url.PathEscape(root), token, nil)
	if got := chunkIDs(relations); len(got) != 3 || got[0] != reply || got[1] != reaction || got[2] != edit {
		t.Fatalf("B's /relations: %v, want [%s %s %s]", got, reply, reaction, edit)
	}
	threads := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/threads", token, nil)
	if got := chunkIDs(threads); len(got) != 1 || got[0] != root {
		t.Fatalf("B's /threads: %v", got)
	}
	ev := mustCall(t, b, "GET", "/_matrix/client/v3/rooms/"+room+"/event/"+url.PathEscape(root), token, nil)
	bundled := relationsField(ev)
	if e, _ := bundled["m.replace"].(map[string]any); e["event_id"] != edit {
		t.Fatalf("B's bundled m.replace: %v", bundled["m.replace"])
	}
	if th, _ := bundled["m.thread"].(map[string]any); th["count"] != float64(1) {
		t.Fatalf("B's bundled m.thread: %v", bundled["m.thread"])
	}

	red, err := a.node.Redact(ctx, core.RedactRequest{Sender: r.alice.UserID, DeviceID: r.alice.DeviceID, RoomID: r.roomID, EventID: edit})
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(ctx, t, b, r.bob.UserID, r.roomID, red)
	ev = mustCall(t, b, "GET", "/_matrix/client/v3/rooms/"+room+"/event/"+url.PathEscape(root), token, nil)
	if e := relationsField(ev)["m.replace"]; e != nil {
		t.Fatalf("B's bundled m.replace after the edit's redaction: %v", e)
	}
}

func chunkIDs(body map[string]any) []string {
	chunk, _ := body["chunk"].([]any)
	var out []string
	for _, c := range chunk {
		ev, _ := c.(map[string]any)
		id, _ := ev["event_id"].(string)
		out = append(out, id)
	}
	return out
}

func relationsField(ev map[string]any) map[string]any {
	u, _ := ev["unsigned"].(map[string]any)
	r, _ := u["m.relations"].(map[string]any)
	return r
}

// TestRelationsInBackfilledHistory: bob on B joins a room whose thread,
// edit and reaction came before his join; once paging /messages has
// backfilled that history from A, B's /relations lists it in timeline
// order (the reply sent after the join, in B's stream, first), its
// /threads has the thread with every reply counted and the post-join reply
// latest, and the root carries its edit.
func TestRelationsInBackfilledHistory(t *testing.T) {
	a, b := startPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := testnet.RegisterWith(ctx, t, a.node, node.RegisterRequest{Localpart: "alice", Admin: true, InhibitLogin: true})
	bob := testnet.Register(ctx, t, b.node, "bob")
	roomID := testnet.CreateRoom(ctx, t, a.node, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	send := func(evType string, content map[string]any) string {
		t.Helper()
		raw, _ := json.Marshal(content)
		id, err := a.node.SendEvent(ctx, core.SendRequest{Sender: alice.UserID, RoomID: roomID, Type: evType, Content: raw})
		if err != nil {
			t.Fatalf("send %s: %v", evType, err)
		}
		return id
	}
	rel := func(relType, parent string) map[string]any {
		return map[string]any{"rel_type": relType, "event_id": parent}
	}
	root := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "root"})
	reply1 := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "r1", "m.relates_to": rel("m.thread", root)})
	edit := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "* edited",
		"m.new_content": map[string]any{"msgtype": "m.text", "body": "edited"}, "m.relates_to": rel("m.replace", root)})
	reply2 := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "r2", "m.relates_to": rel("m.thread", root)})
	reaction := send("m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": root, "key": "👍"}})
	if status, body := clientJoin(t, b, bob.AccessToken, roomID, a.node.ServerName()); status != http.StatusOK {
		t.Fatalf("join: %d %v", status, body)
	}
	reply3 := send("m.room.message", map[string]any{"msgtype": "m.text", "body": "r3", "m.relates_to": rel("m.thread", root)})
	waitForEvent(ctx, t, b, bob.UserID, roomID, reply3)

	_, prevBatch, _ := roomSync(t, b, bob.AccessToken, roomID, "")
	messagesBack(t, b, bob.AccessToken, roomID, prevBatch, 20, 20) // backfills the history

	room := url.PathEscape(roomID)
	relations := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/relations/"+url.PathEscape(root), bob.AccessToken, nil)
	want := []string{reply3, reaction, reply2, edit, reply1}
	if got := chunkIDs(relations); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("B's /relations after backfill: %v, want %v", got, want)
	}
	forward := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/relations/"+url.PathEscape(root)+"?dir=f&limit=2", bob.AccessToken, nil)
	next, _ := forward["next_batch"].(string)
	rest := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/relations/"+url.PathEscape(root)+"?dir=f&from="+url.QueryEscape(next), bob.AccessToken, nil)
	if got := append(chunkIDs(forward), chunkIDs(rest)...); fmt.Sprint(got) != fmt.Sprint([]string{reply1, edit, reply2, reaction, reply3}) {
		t.Fatalf("B's /relations forwards, across history and stream: %v", got)
	}
	threads := mustCall(t, b, "GET", "/_matrix/client/v1/rooms/"+room+"/threads", bob.AccessToken, nil)
	if got := chunkIDs(threads); len(got) != 1 || got[0] != root {
		t.Fatalf("B's /threads: %v", got)
	}
	chunk, _ := threads["chunk"].([]any)
	bundled := relationsField(chunk[0].(map[string]any))
	th, _ := bundled["m.thread"].(map[string]any)
	latest, _ := th["latest_event"].(map[string]any)
	if th["count"] != float64(3) || latest["event_id"] != reply3 {
		t.Fatalf("B's m.thread: count %v, latest %v; want 3, %s", th["count"], latest["event_id"], reply3)
	}
	if e, _ := bundled["m.replace"].(map[string]any); e["event_id"] != edit {
		t.Fatalf("B's m.replace: %v", bundled["m.replace"])
	}
}
