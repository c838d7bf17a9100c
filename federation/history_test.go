package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
)

// TestHistoryEndpoints: /state, /state_ids, /event, /event_auth and
// /backfill answer a server in the room in the spec's shapes (through
// Client, and raw), refuse a server that is not in the room with 403 and
// answer 404 for an unknown event.
func TestHistoryEndpoints(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	roomID := testnet.PublicRoom(ctx, t, p.a.n, p.alice)
	msg := testnet.SendText(ctx, t, p.a.n, p.alice, "", roomID, "hello")
	room := url.PathEscape(roomID)
	get := func(uri string) result {
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), http.MethodGet, uri, nil))
	}
	uris := map[string]string{
		"state":      "/_matrix/federation/v1/state/" + room + "?event_id=" + url.QueryEscape(msg),
		"state_ids":  "/_matrix/federation/v1/state_ids/" + room + "?event_id=" + url.QueryEscape(msg),
		"event":      "/_matrix/federation/v1/event/" + url.PathEscape(msg),
		"event_auth": "/_matrix/federation/v1/event_auth/" + room + "/" + url.PathEscape(msg),
		"backfill":   "/_matrix/federation/v1/backfill/" + room + "?limit=10&v=" + url.QueryEscape(msg),
	}
	for name, uri := range uris {
		expect(t, name+" from a server not in the room", get(uri), http.StatusForbidden, "M_FORBIDDEN")
	}

	c := p.clientB()
	p.b.n.SetRemote(c)
	bob := testnet.RegisterWith(ctx, t, p.b.n, node.RegisterRequest{Localpart: "bob", InhibitLogin: true})
	if _, err := p.b.n.Join(ctx, bob.UserID, "", roomID); err != nil {
		t.Fatal(err)
	}

	// Raw shapes.
	for name, keys := range map[string][]string{
		"state": {"pdus", "auth_chain"}, "state_ids": {"pdu_ids", "auth_chain_ids"},
		"event": {"origin", "origin_server_ts", "pdus"}, "event_auth": {"auth_chain"},
		"backfill": {"origin", "origin_server_ts", "pdus"},
	} {
		r := get(uris[name])
		expect(t, name, r, http.StatusOK, "")
		for _, k := range keys {
			if _, ok := r.body[k]; !ok {
				t.Fatalf("%s: no %q in %v", name, k, r.body)
			}
		}
	}
	unknown := "$unknown"
	expect(t, "event unknown", get("/_matrix/federation/v1/event/"+url.PathEscape(unknown)), http.StatusNotFound, "M_NOT_FOUND")
	expect(t, "state_ids at an unknown event", get("/_matrix/federation/v1/state_ids/"+room+"?event_id="+url.QueryEscape(unknown)), http.StatusNotFound, "M_NOT_FOUND")
	expect(t, "event_auth unknown", get("/_matrix/federation/v1/event_auth/"+room+"/"+url.PathEscape(unknown)), http.StatusNotFound, "M_NOT_FOUND")
	expect(t, "state in an unknown room", get("/_matrix/federation/v1/state/"+url.PathEscape("!nope:"+p.a.name())+"?event_id="+url.QueryEscape(msg)), http.StatusNotFound, "M_NOT_FOUND")
	expect(t, "state without event_id", get("/_matrix/federation/v1/state/"+room), http.StatusBadRequest, "M_MISSING_PARAM")
	expect(t, "backfill without v", get("/_matrix/federation/v1/backfill/"+room+"?limit=5"), http.StatusBadRequest, "M_MISSING_PARAM")

	// Through the client.
	ids, err := c.StateIDs(ctx, p.a.name(), roomID, msg)
	if err != nil || len(ids.StateIDs) == 0 || len(ids.AuthChainIDs) == 0 {
		t.Fatalf("state_ids: %+v, %v", ids, err)
	}
	st, err := c.State(ctx, p.a.name(), roomID, msg)
	if err != nil || len(st.State) != len(ids.StateIDs) || len(st.AuthChain) != len(ids.AuthChainIDs) {
		t.Fatalf("state: %d state, %d auth chain, %v; want %d, %d", len(st.State), len(st.AuthChain), err, len(ids.StateIDs), len(ids.AuthChainIDs))
	}
	ev, err := c.Event(ctx, p.a.name(), msg)
	if err != nil || bodiesOfRaw(ev) != "hello" {
		t.Fatalf("event: %s, %v", ev, err)
	}
	chain, err := c.EventAuth(ctx, p.a.name(), roomID, msg)
	if err != nil || len(chain) < 3 { // create, power levels, alice's join
		t.Fatalf("event_auth: %d events, %v", len(chain), err)
	}
	back, err := c.Backfill(ctx, p.a.name(), roomID, []string{msg}, 3)
	if err != nil || len(back) != 3 || bodiesOfRaw(back[0]) != "hello" {
		t.Fatalf("backfill: %d events, %v; want 3, newest (the message) first", len(back), err)
	}
	all, err := c.Backfill(ctx, p.a.name(), roomID, []string{msg}, 1000)
	if err != nil || !slices.ContainsFunc(all, func(j json.RawMessage) bool { return typeOfRaw(j) == "m.room.create" }) {
		t.Fatalf("backfill to the start: %d events, %v; want the create event among them", len(all), err)
	}
	_, err = c.Event(ctx, p.a.name(), unknown)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "M_NOT_FOUND" {
		t.Fatalf("unknown event through the client: %v, want the remote's M_NOT_FOUND", err)
	}
}

// bodiesOfRaw is an event's content body.
func bodiesOfRaw(j json.RawMessage) string {
	var e struct {
		Content struct{ Body string } `json:"content"`
	}
	_ = json.Unmarshal(j, &e)
	return e.Content.Body
}

// typeOfRaw is an event's type.
func typeOfRaw(j json.RawMessage) string {
	var e struct{ Type string }
	_ = json.Unmarshal(j, &e)
	return e.Type
}
