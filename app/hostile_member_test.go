package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// hostileMember is a hostile peer M (a real node with its own key, over
// libp2p QUIC on 127.0.0.1) whose user mallory has joined alice's public
// room on A through the real make_join/send_join. M then hand-builds PDUs
// signed with its key and sends them through A's real /send.
type hostileMember struct {
	a, m           *App
	alice, mallory node.Session
	roomID         string
	h              hostile
	client         *http.Client
	txns           int
}

// joinHostile starts M, dialling A, and has mallory join alice's new public
// room on A.
func joinHostile(ctx context.Context, t *testing.T, a *App) *hostileMember {
	t.Helper()
	m := startP2P(t, quicAddrs(a))
	r := sharedRoom(ctx, t, a, m)
	return &hostileMember{
		a: a, m: m, alice: r.alice, mallory: r.bob, roomID: r.roomID,
		h:      hostile{m: m.Node.ServerName(), a: a.Node.ServerName(), key: m.Node.SigningKey()},
		client: &http.Client{Transport: m.P2P.RoundTripper(), Timeout: 60 * time.Second},
	}
}

// stateID is the event ID of a current state event of the room on A.
func (hm *hostileMember) stateID(ctx context.Context, t *testing.T, evType, stateKey string) string {
	t.Helper()
	ev, err := hm.a.Node.CurrentStateEvent(ctx, hm.roomID, evType, stateKey)
	if err != nil {
		t.Fatalf("state %s/%s: %v", evType, stateKey, err)
	}
	return ev.PDU.EventID()
}

// authIDs are the auth events of a message from mallory: the create event,
// the power levels and mallory's membership.
func (hm *hostileMember) authIDs(ctx context.Context, t *testing.T) []string {
	t.Helper()
	return []string{
		hm.stateID(ctx, t, spec.MRoomCreate, ""),
		hm.stateID(ctx, t, spec.MRoomPowerLevels, ""),
		hm.stateID(ctx, t, spec.MRoomMember, hm.mallory.UserID),
	}
}

// pdu builds a message from mallory with the given DAG links and depth,
// signed with M's key, as M would send it.
func (hm *hostileMember) pdu(t *testing.T, prevs, auth []string, depth int64, body string) gomatrixserverlib.PDU {
	t.Helper()
	content, err := json.Marshal(map[string]string{"msgtype": "m.text", "body": body})
	if err != nil {
		t.Fatal(err)
	}
	proto := gomatrixserverlib.ProtoEvent{SenderID: hm.mallory.UserID, RoomID: hm.roomID, Type: "m.room.message",
		PrevEvents: prevs, AuthEvents: auth, Depth: depth, Content: content}
	verImpl, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersionV10)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(time.Now(), spec.ServerName(hm.h.m), node.KeyID, hm.h.key)
	if err != nil {
		t.Fatalf("build PDU: %v", err)
	}
	return ev
}

// send sends one transaction of raw PDUs from M to A's /send and returns
// A's answer per event ID ("" for accepted, else the error). Anything but
// 200 fails the test.
func (hm *hostileMember) send(ctx context.Context, t *testing.T, pdus ...json.RawMessage) map[string]string {
	t.Helper()
	hm.txns++
	body := map[string]any{"origin": hm.h.m, "origin_server_ts": time.Now().UnixMilli(), "pdus": pdus}
	req, err := hm.h.signed(hm.h.m, hm.h.key, http.MethodPut, fmt.Sprintf("/_matrix/federation/v1/send/hostile%d", hm.txns), body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := hm.client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("/send: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/send: %d %s", res.StatusCode, raw)
	}
	var out struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("/send answer %s: %v", raw, err)
	}
	results := map[string]string{}
	for id, r := range out.PDUs {
		results[id] = r.Error
	}
	return results
}

// latest is the newest event of the room alice sees on A.
func (hm *hostileMember) latest(ctx context.Context, t *testing.T) gomatrixserverlib.PDU {
	t.Helper()
	page, err := hm.a.Node.RoomEvents(ctx, hm.alice.UserID, hm.roomID, node.Range{Backwards: true, Limit: 1})
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
