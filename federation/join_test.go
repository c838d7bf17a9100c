package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

func makeJoinURI(roomID, userID, query string) string {
	return "/_matrix/federation/v1/make_join/" + url.PathEscape(roomID) + "/" + url.PathEscape(userID) + query
}

// buildJoin completes a make_join template as B would, signed with B's key.
func buildJoin(t *testing.T, p pair, tmpl gomatrixserverlib.ProtoEvent, version gomatrixserverlib.RoomVersion) gomatrixserverlib.PDU {
	t.Helper()
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	return testnet.SignPDU(t, verImpl, tmpl, time.Now(), p.b.name(), p.b.n.SigningKey())
}

func TestMakeJoinAndSendJoin(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	public := testnet.PublicRoom(ctx, t, p.a.n, p.alice)
	private := testnet.CreateRoom(ctx, t, p.a.n, core.CreateRoomRequest{Creator: p.alice, Preset: core.PresetPrivateChat})
	bob := "@bob:" + p.b.name()
	get := func(uri string) result {
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), http.MethodGet, uri, nil))
	}
	expect(t, "make_join for another server's user", get(makeJoinURI(public, p.alice, "?ver=10&ver=11")), http.StatusForbidden, "M_FORBIDDEN")
	expect(t, "make_join without the room's version", get(makeJoinURI(public, bob, "?ver=9")), http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION")
	if r := get(makeJoinURI(public, bob, "?ver=9")); r.body["room_version"] != string(core.DefaultRoomVersion) {
		t.Fatalf("M_INCOMPATIBLE_ROOM_VERSION without room_version: %v", r.body)
	}
	expect(t, "make_join without ver (v1 only)", get(makeJoinURI(public, bob, "")), http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION")
	expect(t, "make_join of an unknown room", get(makeJoinURI("!nope:"+p.a.name(), bob, "?ver=10&ver=11")), http.StatusNotFound, "M_NOT_FOUND")
	expect(t, "make_join of a private room", get(makeJoinURI(private, bob, "?ver=10&ver=11")), http.StatusForbidden, "M_FORBIDDEN")
	ok := get(makeJoinURI(public, bob, "?ver=10&ver=11"))
	if ok.status != http.StatusOK || ok.body["room_version"] != string(core.DefaultRoomVersion) {
		t.Fatalf("make_join: %d %v", ok.status, ok.body)
	}

	c := p.clientB()
	tmpl, version, err := c.MakeJoin(ctx, p.a.name(), public, bob)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.RoomID != public || tmpl.SenderID != bob || tmpl.StateKey == nil || *tmpl.StateKey != bob {
		t.Fatalf("template %+v", tmpl)
	}
	join := buildJoin(t, p, tmpl, version)

	// The path must name the event; the sender must be the origin's.
	put := func(roomID, eventID string, ev gomatrixserverlib.PDU) result {
		uri := "/_matrix/federation/v2/send_join/" + url.PathEscape(roomID) + "/" + url.PathEscape(eventID)
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), p.b.n.SigningKey(), http.MethodPut, uri, json.RawMessage(ev.JSON())))
	}
	expect(t, "send_join naming another event", put(public, "$other", join), http.StatusBadRequest, "M_BAD_JSON")
	aliceTmpl := tmpl
	aliceTmpl.SenderID, aliceTmpl.StateKey = p.alice, &p.alice
	expect(t, "send_join of another server's user", put(public, buildJoin(t, p, aliceTmpl, version).EventID(), buildJoin(t, p, aliceTmpl, version)), http.StatusForbidden, "M_FORBIDDEN")

	res, err := c.SendJoin(ctx, p.a.name(), join)
	if err != nil {
		t.Fatalf("send_join: %v", err)
	}
	if len(res.State) == 0 || len(res.AuthChain) == 0 {
		t.Fatalf("send_join: %d state events, %d in the auth chain", len(res.State), len(res.AuthChain))
	}
	var hasCreate bool
	for _, raw := range res.State {
		var h struct{ Type string }
		_ = json.Unmarshal(raw, &h)
		hasCreate = hasCreate || h.Type == spec.MRoomCreate
	}
	if !hasCreate {
		t.Fatal("send_join state has no create event")
	}
	mi, err := p.a.n.Membership(ctx, public, bob)
	if err != nil || mi.Membership != spec.Join {
		t.Fatalf("bob on A: %+v %v", mi, err)
	}
	servers, err := p.a.n.JoinedServers(ctx, public)
	if err != nil || !slices.Contains(servers, p.b.name()) {
		t.Fatalf("joined servers %v %v", servers, err)
	}
	// A retried send_join is answered again.
	if _, err := c.SendJoin(ctx, p.a.name(), join); err != nil {
		t.Fatalf("send_join again: %v", err)
	}

	// A join the private room's rules refuse (built by hand: make_join will
	// not give a template) is 403, with the reason.
	var authIDs []string
	for _, typ := range []string{spec.MRoomCreate, spec.MRoomPowerLevels, spec.MRoomJoinRules} {
		ev, err := p.a.n.CurrentStateEvent(ctx, private, typ, "")
		if err != nil {
			t.Fatal(err)
		}
		authIDs = append(authIDs, ev.PDU.EventID())
	}
	privTmpl := gomatrixserverlib.ProtoEvent{
		SenderID: bob, RoomID: private, Type: spec.MRoomMember, StateKey: &bob,
		PrevEvents: []string{authIDs[2]}, AuthEvents: authIDs, Depth: 10,
		Content: spec.RawJSON(`{"membership":"join"}`),
	}
	_, err = c.SendJoin(ctx, p.a.name(), buildJoin(t, p, privTmpl, version))
	if !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("send_join to a private room: %v, want forbidden", err)
	}
	if mi, err := p.a.n.Membership(ctx, private, bob); err != nil || mi.Membership != "" {
		t.Fatalf("bob in the private room on A: %+v %v", mi, err)
	}
}
