package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// What a rogue member of alice's public room builds by hand: messages with
// the DAG links and depth it chooses (hostile_depth_test.go,
// hostile_forks_test.go).

// stateID is the event ID of a current state event of the room on A.
func (rr rogueRoom) stateID(ctx context.Context, t *testing.T, evType, stateKey string) string {
	t.Helper()
	ev, err := rr.a.node.CurrentStateEvent(ctx, rr.roomID, evType, stateKey)
	if err != nil {
		t.Fatalf("state %s/%s: %v", evType, stateKey, err)
	}
	return ev.PDU.EventID()
}

// authIDs are the auth events of a message from the rogue's user: the
// create event, the power levels and its membership.
func (rr rogueRoom) authIDs(ctx context.Context, t *testing.T) []string {
	t.Helper()
	return []string{
		rr.stateID(ctx, t, spec.MRoomCreate, ""),
		rr.stateID(ctx, t, spec.MRoomPowerLevels, ""),
		rr.stateID(ctx, t, spec.MRoomMember, rr.r.userID("m")),
	}
}

// pdu builds a message from the rogue's user with the given DAG links and
// depth, signed with the rogue's key.
func (rr rogueRoom) pdu(t *testing.T, prevs, auth []string, depth int64, body string) gomatrixserverlib.PDU {
	t.Helper()
	content, err := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	if err != nil {
		t.Fatal(err)
	}
	return rr.r.sign(rr.rs.version, gomatrixserverlib.ProtoEvent{SenderID: rr.r.userID("m"), RoomID: rr.roomID,
		Type: "m.room.message", PrevEvents: prevs, AuthEvents: auth, Depth: depth, Content: content})
}

// latest is the newest event of the room alice sees on A.
func (rr rogueRoom) latest(ctx context.Context, t *testing.T) gomatrixserverlib.PDU {
	t.Helper()
	page, err := rr.a.node.RoomEvents(ctx, rr.alice.UserID, rr.roomID, core.Range{Backwards: true, Limit: 1})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("room events: %v", err)
	}
	return page.Events[0].PDU
}

// clientSend sends a message as holder of token through A's client API and
// returns the status, the errcode and the event ID.
func clientSend(t *testing.T, a *App, token, roomID, txnID, body string) (int, string, string) {
	t.Helper()
	status, out := call(t, a, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+txnID, token,
		map[string]string{"msgtype": "m.text", "body": body})
	errcode, _ := out["errcode"].(string)
	id, _ := out["event_id"].(string)
	return status, errcode, id
}
