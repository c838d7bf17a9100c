package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
)

// TestGetMissingEvents: B, in A's room, gets the events before one of A's
// messages with its Client; a server not in the room is refused, and a body
// without latest_events is M_BAD_JSON.
func TestGetMissingEvents(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	roomID := testnet.PublicRoom(ctx, t, p.a.n, p.alice)
	c := p.clientB()
	uri := "/_matrix/federation/v1/get_missing_events/" + url.PathEscape(roomID)
	post := func(body any) result {
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), http.MethodPost, uri, body))
	}
	expect(t, "get_missing_events before joining", post(map[string]any{"latest_events": []string{"$x"}}), http.StatusForbidden, "M_FORBIDDEN")

	p.b.n.SetRemote(c)
	bob := testnet.RegisterWith(ctx, t, p.b.n, node.RegisterRequest{Localpart: "bob", InhibitLogin: true})
	if _, err := p.b.n.Join(ctx, bob.UserID, "", roomID); err != nil {
		t.Fatal(err)
	}
	mi, err := p.b.n.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != "join" {
		t.Fatalf("bob's membership: %+v, %v", mi, err)
	}
	joinID := mi.EventID
	var msgs []string
	for _, body := range []string{"one", "two", "three"} {
		id, err := p.a.n.SendEvent(ctx, core.SendRequest{Sender: p.alice, RoomID: roomID, Type: "m.room.message",
			Content: json.RawMessage(`{"msgtype":"m.text","body":"` + body + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, id)
	}
	expect(t, "get_missing_events without latest_events", post(map[string]any{"limit": 5}), http.StatusBadRequest, "M_BAD_JSON")

	evs, err := c.GetMissingEvents(ctx, p.a.name(), roomID, inbound.MissingEventsRequest{
		EarliestEvents: []string{joinID}, LatestEvents: []string{msgs[2]}, Limit: 10,
	})
	if err != nil || len(evs) != 2 {
		t.Fatalf("get_missing_events: %d events, %v; want 2", len(evs), err)
	}
	for i, want := range []string{"one", "two"} {
		var e struct {
			Content struct{ Body string } `json:"content"`
		}
		if err := json.Unmarshal(evs[i], &e); err != nil || e.Content.Body != want {
			t.Fatalf("event %d: %s, want body %q", i, evs[i], want)
		}
	}
	_, err = c.GetMissingEvents(ctx, p.a.name(), "!nope:"+p.a.name(), inbound.MissingEventsRequest{LatestEvents: []string{msgs[2]}})
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "M_NOT_FOUND" {
		t.Fatalf("unknown room: %v, want the remote's M_NOT_FOUND", err)
	}
}
