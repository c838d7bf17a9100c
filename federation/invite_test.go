package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

func inviteURI(roomID, eventID string) string {
	return "/_matrix/federation/v2/invite/" + url.PathEscape(roomID) + "/" + url.PathEscape(eventID)
}

// clientOfA is A's client, reaching B (and A) through their test listeners.
func (p pair) clientOfA() *Client {
	return NewClient(p.a.n, p.routes())
}

// inviteEvent builds an invite of target by sender in roomID, signed as
// server with key. B checks only its form and signature, so the prev and
// auth events need not exist.
func inviteEvent(t *testing.T, server string, key ed25519.PrivateKey, sender, target, roomID, membership string) gomatrixserverlib.PDU {
	t.Helper()
	proto := gomatrixserverlib.ProtoEvent{
		SenderID: sender, RoomID: roomID, Type: spec.MRoomMember, StateKey: &target,
		Content:    spec.RawJSON(`{"membership":"` + membership + `"}`),
		PrevEvents: []string{"$prev"}, AuthEvents: []string{"$create"}, Depth: 5,
	}
	ev := testnet.SignPDU(t, gomatrixserverlib.MustGetRoomVersion(core.DefaultRoomVersion), proto, time.Now(), server, key)
	return ev
}

func TestInboundInvite(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	bob := testnet.RegisterWith(ctx, t, p.b.n, node.RegisterRequest{Localpart: "bob", InhibitLogin: true})
	roomID := "!room:" + p.a.name()
	aKey := p.a.n.SigningKey()
	put := func(origin string, key ed25519.PrivateKey, ev gomatrixserverlib.PDU, eventID, version string) result {
		body := map[string]any{
			"room_version": version, "event": json.RawMessage(ev.JSON()),
			"invite_room_state": []any{map[string]any{"type": "m.room.create", "state_key": "", "sender": p.alice, "content": map[string]any{"room_version": version}}},
		}
		return do(t, signed(t, p.b, origin, p.b.name(), key, http.MethodPut, inviteURI(roomID, eventID), body))
	}
	good := inviteEvent(t, p.a.name(), aKey, p.alice, bob.UserID, roomID, "invite")
	v := string(core.DefaultRoomVersion)

	r := put(p.a.name(), aKey, good, good.EventID(), "9")
	expect(t, "unsupported room version", r, http.StatusBadRequest, "M_INCOMPATIBLE_ROOM_VERSION")
	if r.body["room_version"] != "9" {
		t.Fatalf("M_INCOMPATIBLE_ROOM_VERSION without room_version: %v", r.body)
	}
	expect(t, "event ID not the path's", put(p.a.name(), aKey, good, "$other", v), http.StatusBadRequest, "M_INVALID_PARAM")
	notLocal := inviteEvent(t, p.a.name(), aKey, p.alice, p.a.n.UserID("someone"), roomID, "invite")
	expect(t, "invitee not local", put(p.a.name(), aKey, notLocal, notLocal.EventID(), v), http.StatusBadRequest, "M_INVALID_PARAM")
	notInvite := inviteEvent(t, p.a.name(), aKey, p.alice, bob.UserID, roomID, "join")
	expect(t, "not an invite", put(p.a.name(), aKey, notInvite, notInvite.EventID(), v), http.StatusBadRequest, "M_INVALID_PARAM")
	nobody := inviteEvent(t, p.a.name(), aKey, p.alice, p.b.n.UserID("nobody"), roomID, "invite")
	expect(t, "invitee does not exist", put(p.a.name(), aKey, nobody, nobody.EventID(), v), http.StatusForbidden, "M_FORBIDDEN")

	// Signed by another key under A's name.
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := inviteEvent(t, p.a.name(), otherKey, p.alice, bob.UserID, roomID, "invite")
	expect(t, "bad signature", put(p.a.name(), aKey, forged, forged.EventID(), v), http.StatusBadRequest, "M_INVALID_PARAM")

	// Sent by a third server that is not the sender's.
	cPub, cKey, _ := ed25519.GenerateKey(rand.Reader)
	c := identity.ServerNameForKey(cPub)
	p.b.setPeer(c, true)
	expect(t, "sender not of the origin", put(c, cKey, good, good.EventID(), v), http.StatusBadRequest, "M_INVALID_PARAM")
	p.b.setPeer(p.a.name(), true)

	if mi, err := p.b.n.Membership(ctx, roomID, bob.UserID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("bob's membership after refused invites: %+v %v", mi, err)
	}

	// A good one: signed by B and returned; bob is invited out of band.
	r = put(p.a.name(), aKey, good, good.EventID(), v)
	if r.status != http.StatusOK {
		t.Fatalf("invite: %d %v", r.status, r.body)
	}
	raw, _ := json.Marshal(r.body["event"])
	ev, err := gomatrixserverlib.MustGetRoomVersion(core.DefaultRoomVersion).NewEventFromUntrustedJSON(raw)
	if err != nil || ev.EventID() != good.EventID() {
		t.Fatalf("returned event %s: %v", raw, err)
	}
	if err := gomatrixserverlib.VerifyEventSignatures(ctx, ev, identity.KeyRing{}, func(_ spec.RoomID, s spec.SenderID) (*spec.UserID, error) {
		return spec.NewUserID(string(s), true)
	}); err != nil {
		t.Fatalf("returned invite lacks a signature: %v", err)
	}
	mi, err := p.b.n.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != spec.Invite || mi.EventID != good.EventID() {
		t.Fatalf("bob's membership on B: %+v %v", mi, err)
	}
}

// TestInviteThroughClient: A's node invites B's user through the real
// client and B's handler; A stores the doubly signed invite.
func TestInviteThroughClient(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	bob := testnet.RegisterWith(ctx, t, p.b.n, node.RegisterRequest{Localpart: "bob", InhibitLogin: true})
	p.a.n.SetRemote(p.clientOfA())
	roomID := testnet.CreateRoom(ctx, t, p.a.n, core.CreateRoomRequest{Creator: p.alice, Preset: core.PresetPrivateChat})
	invite := func(target string) error {
		_, err := p.a.n.ChangeMembership(ctx, core.MembershipChange{Sender: p.alice, RoomID: roomID, Target: target, Membership: spec.Invite})
		return err
	}
	if err := invite(p.b.n.UserID("nobody")); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("invite of an unknown remote user: %v, want ErrForbidden", err)
	}
	var re *RemoteError
	if err := invite(p.b.n.UserID("nobody")); !errors.As(err, &re) || re.Code != "M_FORBIDDEN" {
		t.Fatalf("invite of an unknown remote user: %v, want the remote's M_FORBIDDEN", err)
	}
	if err := invite(bob.UserID); err != nil {
		t.Fatalf("invite: %v", err)
	}
	onA, err := p.a.n.Membership(ctx, roomID, bob.UserID)
	if err != nil || onA.Membership != spec.Invite {
		t.Fatalf("bob on A: %+v %v", onA, err)
	}
	onB, err := p.b.n.Membership(ctx, roomID, bob.UserID)
	if err != nil || onB.Membership != spec.Invite || onB.EventID != onA.EventID {
		t.Fatalf("bob on B: %+v %v", onB, err)
	}
}

func makeLeaveURI(roomID, userID string) string {
	return "/_matrix/federation/v1/make_leave/" + url.PathEscape(roomID) + "/" + url.PathEscape(userID)
}

func TestMakeLeaveAndSendLeave(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	bob := testnet.RegisterWith(ctx, t, p.b.n, node.RegisterRequest{Localpart: "bob", InhibitLogin: true})
	p.a.n.SetRemote(p.clientOfA())
	roomID := testnet.CreateRoom(ctx, t, p.a.n, core.CreateRoomRequest{Creator: p.alice, Preset: core.PresetPrivateChat})
	if _, err := p.a.n.ChangeMembership(ctx, core.MembershipChange{Sender: p.alice, RoomID: roomID, Target: bob.UserID, Membership: spec.Invite}); err != nil {
		t.Fatal(err)
	}
	bKey := p.b.n.SigningKey()
	get := func(uri string) result {
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), bKey, http.MethodGet, uri, nil))
	}
	expect(t, "make_leave for another server's user", get(makeLeaveURI(roomID, p.alice)), http.StatusForbidden, "M_FORBIDDEN")
	expect(t, "make_leave for a user not in the room", get(makeLeaveURI(roomID, p.b.n.UserID("carol"))), http.StatusForbidden, "M_FORBIDDEN")
	expect(t, "make_leave in an unknown room", get(makeLeaveURI("!nope:"+p.a.name(), bob.UserID)), http.StatusNotFound, "M_NOT_FOUND")
	r := get(makeLeaveURI(roomID, bob.UserID))
	if r.status != http.StatusOK || r.body["room_version"] != string(core.DefaultRoomVersion) {
		t.Fatalf("make_leave: %d %v", r.status, r.body)
	}

	c := p.clientB()
	tmpl, version, err := c.MakeLeave(ctx, p.a.name(), roomID, bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.RoomID != roomID || tmpl.SenderID != bob.UserID || tmpl.StateKey == nil || *tmpl.StateKey != bob.UserID {
		t.Fatalf("template %+v", tmpl)
	}
	leave := buildJoin(t, p, tmpl, version) // built and signed as B, like a join
	put := func(roomID, eventID string, body any) result {
		uri := "/_matrix/federation/v2/send_leave/" + url.PathEscape(roomID) + "/" + url.PathEscape(eventID)
		return do(t, signed(t, p.a, p.b.name(), p.a.name(), bKey, http.MethodPut, uri, body))
	}
	expect(t, "send_leave naming another event", put(roomID, "$other", json.RawMessage(leave.JSON())), http.StatusBadRequest, "M_INVALID_PARAM")
	expect(t, "send_leave of no event", put(roomID, leave.EventID(), map[string]any{"type": 1}), http.StatusBadRequest, "M_BAD_JSON")
	expect(t, "send_leave in an unknown room", put("!nope:"+p.a.name(), leave.EventID(), json.RawMessage(leave.JSON())), http.StatusNotFound, "M_NOT_FOUND")
	joinTmpl := tmpl
	joinTmpl.Content = spec.RawJSON(`{"membership":"join"}`)
	join := buildJoin(t, p, joinTmpl, version)
	expect(t, "send_leave of a join", put(roomID, join.EventID(), json.RawMessage(join.JSON())), http.StatusBadRequest, "M_INVALID_PARAM")

	if err := c.SendLeave(ctx, p.a.name(), leave); err != nil {
		t.Fatalf("send_leave: %v", err)
	}
	mi, err := p.a.n.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != spec.Leave || mi.EventID != leave.EventID() {
		t.Fatalf("bob on A: %+v %v", mi, err)
	}
	r = put(roomID, leave.EventID(), json.RawMessage(leave.JSON()))
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("send_leave again: %d %v, want 200 {}", r.status, r.body)
	}
	// No longer in the room: no template, and the client maps the refusal.
	if _, _, err := c.MakeLeave(ctx, p.a.name(), roomID, bob.UserID); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("make_leave after leaving: %v, want ErrForbidden", err)
	}
}
