package app

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

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
