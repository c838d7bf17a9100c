package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// maxCanonicalInt is the largest depth canonical JSON can carry (2^53-1).
const maxCanonicalInt = 1<<53 - 1

// TestHostileDepth: A rogue (a stranger's libp2p host), a member of alice's public room on A, sends through
// /send a message at depth 2^53-1, the largest canonical JSON allows. A
// takes it (it is in range) but refuses, per PDU, one at a negative depth
// and one beyond the range. Then every kind of local event in the room
// still succeeds through A's client API (a message, a state change, an
// invite, a join and a leave) and the room's new events stay at the cap
// instead of overflowing it; and again after A restarts on its data
// directory, with the room's depth still at the cap. Before the
// fix, every local event answered 400 M_BAD_JSON "value is outside of safe
// range", for good.
func TestHostileDepth(t *testing.T) {
	dir := t.TempDir()
	a := startP2PAt(t, dir, nil)
	defer func() { closeApp(t, a) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rr := rogueRoomOn(ctx, t, a, core.PresetPublicChat)
	carol := testnet.Register(ctx, t, a.node, "carol")

	latest := rr.latest(ctx, t)
	auth := rr.authIDs(ctx, t)
	huge := rr.pdu(t, []string{latest.EventID()}, auth, maxCanonicalInt, "deepest")
	negative := rr.pdu(t, []string{latest.EventID()}, auth, -5, "negative")
	// The library will not build an event beyond the range: the rogue writes the
	// depth into one by hand (its signature no longer matters, A must
	// refuse it before looking).
	beyond := strings.Replace(string(rr.pdu(t, []string{latest.EventID()}, auth, 7, "beyond").JSON()), `"depth":7`, `"depth":9007199254740992`, 1)
	res := rr.r.sendRaw(ctx, []json.RawMessage{huge.JSON(), negative.JSON(), json.RawMessage(beyond)}, nil)
	for id, e := range res {
		switch {
		case id == huge.EventID() && e != "":
			t.Fatalf("PDU at depth 2^53-1: answer %q, want accepted", e)
		case id == negative.EventID() && !strings.Contains(e, "depth"):
			t.Errorf("PDU at depth -5: answer %q, want a per-PDU error about its depth", e)
		case id != huge.EventID() && e == "":
			t.Errorf("PDU %s accepted; only the one at depth 2^53-1 may be", id)
		}
	}
	if _, ok := res[huge.EventID()]; !ok {
		t.Fatalf("no answer for the PDU at depth 2^53-1: %v", res)
	}
	if _, ok := res[negative.EventID()]; !ok {
		t.Errorf("no answer for the PDU at depth -5: %v", res)
	}
	if _, err := a.node.Event(ctx, rr.alice.UserID, negative.EventID()); err == nil {
		t.Errorf("the PDU at depth -5 is served")
	}
	if _, err := a.node.Event(ctx, rr.alice.UserID, huge.EventID()); err != nil {
		t.Fatalf("the PDU at depth 2^53-1 is not served: %v", err)
	}

	localEvents(ctx, t, a, rr.alice, carol, rr.roomID, "before restart")
	closeApp(t, a)
	a = startP2PAt(t, dir, nil)
	localEvents(ctx, t, a, rr.alice, carol, rr.roomID, "after restart")
}

// localEvents makes alice send a message and change the topic, invite
// carol, carol join and leave, each through A's client API and each
// answered 200; the message's depth must be the cap, not beyond it.
func localEvents(ctx context.Context, t *testing.T, a *App, alice, carol node.Session, roomID, when string) {
	t.Helper()
	room := "/_matrix/client/v3/rooms/" + url.PathEscape(roomID)
	steps := []struct {
		name, method, path, token string
		body                      any
	}{
		{"message", http.MethodPut, room + "/send/m.room.message/m-" + when[:1], alice.AccessToken, map[string]string{"msgtype": "m.text", "body": "still here " + when}},
		{"topic", http.MethodPut, room + "/state/m.room.topic", alice.AccessToken, map[string]string{"topic": "topic " + when}},
		{"invite", http.MethodPost, room + "/invite", alice.AccessToken, map[string]string{"user_id": carol.UserID}},
		{"join", http.MethodPost, room + "/join", carol.AccessToken, map[string]string{}},
		{"leave", http.MethodPost, room + "/leave", carol.AccessToken, map[string]string{}},
	}
	for _, s := range steps {
		status, out := call(t, a, s.method, s.path, s.token, s.body)
		if status != http.StatusOK {
			t.Fatalf("%s %s: %d %v, want 200", when, s.name, status, out)
		}
		id, _ := out["event_id"].(string)
		if s.name != "message" {
			continue
		}
		ev, err := a.node.Event(ctx, alice.UserID, id)
		if err != nil {
			t.Fatalf("%s: message %s: %v", when, id, err)
		}
		if d := ev.PDU.Depth(); d != maxCanonicalInt {
			t.Errorf("%s: message depth %d, want the cap %d", when, d, int64(maxCanonicalInt))
		}
	}
	topic, err := a.node.CurrentStateEvent(ctx, roomID, spec.MRoomTopic, "")
	if err != nil {
		t.Fatalf("%s: topic: %v", when, err)
	}
	var c struct {
		Topic string `json:"topic"`
	}
	if err := json.Unmarshal(topic.PDU.Content(), &c); err != nil || c.Topic != "topic "+when {
		t.Errorf("%s: topic %s, want %q", when, topic.PDU.Content(), "topic "+when)
	}
}
