package node

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// directInviter is a RemoteInviter that calls the invitee's node
// in-process, with a hook to tamper with its answer.
type directInviter struct {
	inviting, invited *Node
	tamper            func(json.RawMessage) json.RawMessage
}

func (d directInviter) SendInvite(ctx context.Context, server string, invite gomatrixserverlib.PDU, state []gomatrixserverlib.InviteStrippedState) (json.RawMessage, error) {
	var raws []json.RawMessage
	for _, s := range state {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		raws = append(raws, b)
	}
	signed, err := d.invited.ReceiveInvite(ctx, inbound.InviteRequest{
		Origin: d.inviting.ServerName(), RoomID: invite.RoomID().String(), EventID: invite.EventID(),
		RoomVersion: invite.Version(), Event: invite.JSON(), InviteRoomState: raws,
	})
	if err != nil || d.tamper == nil {
		return signed, err
	}
	return d.tamper(signed), nil
}

// directLeaver is a RemoteLeaver that calls a resident node in-process.
type directLeaver struct{ leaving, resident *Node }

func (d directLeaver) MakeLeave(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	tmpl, err := d.resident.MakeLeave(ctx, roomID, userID)
	if err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", err
	}
	return tmpl.Event, tmpl.RoomVersion, nil
}

func (d directLeaver) SendLeave(ctx context.Context, server string, leave gomatrixserverlib.PDU) error {
	return d.resident.SendLeave(ctx, d.leaving.ServerName(), leave.RoomID().String(), leave.EventID(), leave.JSON())
}

// invitedPair is A with @alice and her private room, and B with @bob,
// invited to it through a directInviter; B can join and leave through A.
func invitedPair(t *testing.T) (a, b *Node, alice, bob Session, roomID string) {
	t.Helper()
	ctx := context.Background()
	a, b = newTestNode(t), newTestNode(t)
	alice, bob = session(a, "alice"), register(t, b, "bob")
	setRemoteInviter(a, directInviter{inviting: a, invited: b})
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	name := "Secret"
	var err error
	roomID, err = a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	membership(t, a, alice, roomID, bob.UserID, spec.Invite)
	return a, b, alice, bob, roomID
}

func TestInviteOutOfBand(t *testing.T) {
	ctx := context.Background()
	a, b, _, bob, roomID := invitedPair(t)

	// A stored the invite with both servers' signatures.
	onA, err := a.Membership(ctx, roomID, bob.UserID)
	if err != nil || onA.Membership != spec.Invite {
		t.Fatalf("bob on A: %+v %v", onA, err)
	}
	evs, err := a.Events(ctx, []string{onA.EventID})
	if err != nil || len(evs) != 1 {
		t.Fatalf("invite on A: %v", err)
	}
	if err := gomatrixserverlib.VerifyEventSignatures(ctx, evs[0].PDU, identity.KeyRing{}, core.UserIDForSender); err != nil {
		t.Fatalf("invite on A is not signed by both servers: %v", err)
	}

	// B has it out of band, with the stripped state.
	onB, err := b.Membership(ctx, roomID, bob.UserID)
	if err != nil || onB.Membership != spec.Invite || !onB.OutOfBand || onB.EventID != onA.EventID || onB.Pos == 0 {
		t.Fatalf("bob on B: %+v %v", onB, err)
	}
	oob, err := b.OutOfBandRoom(ctx, bob.UserID, roomID)
	if err != nil || oob.Event.PDU.EventID() != onA.EventID || oob.Event.Pos != onB.Pos {
		t.Fatalf("out-of-band room on B: %+v %v", oob, err)
	}
	// Sliding sync's room list has it too.
	if list, err := b.RoomsByBump(ctx, bob.UserID); err != nil || len(list) != 1 ||
		list[0] != (core.RoomBump{RoomID: roomID, Bump: onB.Pos, Membership: spec.Invite}) {
		t.Fatalf("bob's room list on B: %+v %v", list, err)
	}
	var types []string
	for _, raw := range oob.InviteState {
		var s struct{ Type, Sender string }
		_ = json.Unmarshal(raw, &s)
		types = append(types, s.Type)
	}
	for _, want := range []string{spec.MRoomCreate, spec.MRoomJoinRules, spec.MRoomName, spec.MRoomMember} {
		if !slices.Contains(types, want) {
			t.Fatalf("invite state %v lacks %s", types, want)
		}
	}
	if rooms, err := b.RoomExists(ctx, roomID); err != nil || rooms {
		t.Fatalf("B has the room itself: %v %v", rooms, err)
	}

	// The same invite again takes no new position.
	pos := b.StreamPosition()
	if _, err := b.ReceiveInvite(ctx, inbound.InviteRequest{
		Origin: a.ServerName(), RoomID: roomID, EventID: onA.EventID, RoomVersion: evs[0].PDU.Version(), Event: evs[0].PDU.JSON(),
	}); err != nil {
		t.Fatalf("invite again: %v", err)
	}
	if b.StreamPosition() != pos {
		t.Fatal("a repeated invite took a new stream position")
	}

	if got := b.InviterServers(bob.UserID, roomID); !slices.Equal(got, []string{a.ServerName()}) {
		t.Fatalf("servers to join through: %v, want the inviter's", got)
	}
	// Joining with no servers goes through the inviter's server; the room
	// replaces the out-of-band record.
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatalf("join after the invite: %v", err)
	}
	onB, err = b.Membership(ctx, roomID, bob.UserID)
	if err != nil || onB.Membership != spec.Join || onB.OutOfBand {
		t.Fatalf("bob on B after joining: %+v %v", onB, err)
	}
	if _, err := b.OutOfBandRoom(ctx, bob.UserID, roomID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("out-of-band record after joining: %v", err)
	}
	if n := countKeys(t, b, core.TableOutOfBand); n != 0 {
		t.Fatalf("%d out-of-band records left", n)
	}
	if mi, err := a.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != spec.Join {
		t.Fatalf("bob on A after joining: %+v %v", mi, err)
	}
}

func TestInviteRefused(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := session(a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	if err != nil {
		t.Fatal(err)
	}
	invite := func(target string) error {
		_, err := a.ChangeMembership(ctx, core.MembershipChange{Sender: alice.UserID, RoomID: roomID, Target: target, Membership: spec.Invite})
		return err
	}
	pos := a.StreamPosition()

	// Without federation, users of other servers cannot be invited.
	if err := invite(bob.UserID); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("invite without an inviter: %v, want ErrForbidden", err)
	}
	// B has no such user.
	setRemoteInviter(a, directInviter{inviting: a, invited: b})
	if err := invite(b.UserID("nobody")); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("invite of an unknown user: %v, want ErrForbidden", err)
	}
	// B's answer lacks its signature, or is another event.
	setRemoteInviter(a, directInviter{inviting: a, invited: b, tamper: func(raw json.RawMessage) json.RawMessage {
		var ev map[string]any
		_ = json.Unmarshal(raw, &ev)
		delete(ev["signatures"].(map[string]any), b.ServerName())
		out, _ := json.Marshal(ev)
		return out
	}})
	if err := invite(bob.UserID); err == nil {
		t.Fatal("invite without the invitee's signature accepted")
	}
	setRemoteInviter(a, directInviter{inviting: a, invited: b, tamper: func(raw json.RawMessage) json.RawMessage {
		var ev map[string]any
		_ = json.Unmarshal(raw, &ev)
		ev["content"] = map[string]any{"membership": "invite", "displayname": "changed"}
		out, _ := json.Marshal(ev)
		return out
	}})
	if err := invite(bob.UserID); err == nil {
		t.Fatal("a changed invite accepted")
	}
	if a.StreamPosition() != pos {
		t.Fatal("a refused invite was stored")
	}
	if mi, err := a.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != "" {
		t.Fatalf("bob on A: %+v %v", mi, err)
	}
}

func TestInviteToKnownRoom(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob, carol := session(a, "alice"), register(t, b, "bob"), register(t, b, "carol")
	setRemoteInviter(a, directInviter{inviting: a, invited: b})
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatal(err)
	}
	// B has the room: it signs the invite and stores nothing (the invite
	// comes through the room).
	pos := b.StreamPosition()
	membership(t, a, alice, roomID, carol.UserID, spec.Invite)
	if b.StreamPosition() != pos || countKeys(t, b, core.TableOutOfBand) != 0 {
		t.Fatal("B stored an invite to a room it has")
	}
	if mi, err := b.Membership(ctx, roomID, carol.UserID); err != nil || mi.Membership != "" {
		t.Fatalf("carol on B: %+v %v", mi, err)
	}
}

func TestRejectOutOfBandInvite(t *testing.T) {
	ctx := context.Background()
	t.Run("through the inviter", func(t *testing.T) {
		a, b, _, bob, roomID := invitedPair(t)
		setRemoteLeaver(b, directLeaver{leaving: b, resident: a})
		pos := b.StreamPosition()
		id, err := b.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: roomID, Target: bob.UserID, Membership: spec.Leave})
		if err != nil {
			t.Fatalf("reject: %v", err)
		}
		onA, err := a.Membership(ctx, roomID, bob.UserID)
		if err != nil || onA.Membership != spec.Leave || onA.EventID != id {
			t.Fatalf("bob on A: %+v %v (leave %s)", onA, err, id)
		}
		onB, err := b.Membership(ctx, roomID, bob.UserID)
		if err != nil || onB.Membership != spec.Leave || !onB.OutOfBand || onB.EventID != id || onB.Pos <= pos {
			t.Fatalf("bob on B: %+v %v", onB, err)
		}
		oob, err := b.OutOfBandRoom(ctx, bob.UserID, roomID)
		if err != nil || oob.Event.PDU.EventID() != id || oob.InviteState != nil {
			t.Fatalf("out-of-band room after rejecting: %+v %v", oob, err)
		}
		// Again: a no-op.
		pos = b.StreamPosition()
		if again, err := b.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: roomID, Target: bob.UserID, Membership: spec.Leave}); err != nil || again != id {
			t.Fatalf("reject again: %s %v", again, err)
		}
		if b.StreamPosition() != pos {
			t.Fatal("rejecting again took a new position")
		}
	})
	t.Run("inviter unreachable", func(t *testing.T) {
		a, b, _, bob, roomID := invitedPair(t)
		// No RemoteLeaver: no server can be reached. The invite is still
		// rejected here.
		id, err := b.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: roomID, Target: bob.UserID, Membership: spec.Leave})
		if err != nil {
			t.Fatalf("reject: %v", err)
		}
		onB, err := b.Membership(ctx, roomID, bob.UserID)
		if err != nil || onB.Membership != spec.Leave || onB.EventID != id {
			t.Fatalf("bob on B: %+v %v", onB, err)
		}
		if onA, err := a.Membership(ctx, roomID, bob.UserID); err != nil || onA.Membership != spec.Invite {
			t.Fatalf("bob on A: %+v %v", onA, err)
		}
	})
	t.Run("no invite", func(t *testing.T) {
		b := newTestNode(t)
		bob := session(b, "bob")
		_, err := b.ChangeMembership(ctx, core.MembershipChange{Sender: bob.UserID, RoomID: "!nope:" + b.ServerName(), Target: bob.UserID, Membership: spec.Leave})
		if !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("leave of an unknown room: %v, want ErrNotFound", err)
		}
	})
}

func TestMakeLeaveSendLeave(t *testing.T) {
	ctx := context.Background()
	a, b, _, bob, roomID := invitedPair(t)
	carol := b.UserID("carol")
	if _, err := a.MakeLeave(ctx, roomID, carol); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("make_leave for a user not in the room: %v", err)
	}
	if _, err := a.MakeLeave(ctx, "!nope:"+a.ServerName(), bob.UserID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("make_leave in an unknown room: %v", err)
	}
	tmpl, err := a.MakeLeave(ctx, roomID, bob.UserID)
	if err != nil {
		t.Fatal(err)
	}
	verImpl := gomatrixserverlib.MustGetRoomVersion(tmpl.RoomVersion)
	build := func(p gomatrixserverlib.ProtoEvent) gomatrixserverlib.PDU {
		ev, err := verImpl.NewEventBuilderFromProtoEvent(&p).Build(b.Now(), spec.ServerName(b.ServerName()), identity.KeyID, b.SigningKey())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	leave := build(tmpl.Event)
	send := func(origin string, ev gomatrixserverlib.PDU) error {
		return a.SendLeave(ctx, origin, roomID, ev.EventID(), ev.JSON())
	}
	if err := send(a.ServerName(), leave); !errors.Is(err, core.ErrInvalidParam) {
		t.Fatalf("send_leave from another origin: %v, want ErrInvalidParam", err)
	}
	if err := a.SendLeave(ctx, b.ServerName(), roomID, "$other", leave.JSON()); !errors.Is(err, core.ErrInvalidParam) {
		t.Fatalf("send_leave naming another event: %v, want ErrInvalidParam", err)
	}
	carolTmpl := tmpl.Event
	carolTmpl.SenderID, carolTmpl.StateKey = carol, &carol
	if err := send(b.ServerName(), build(carolTmpl)); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("send_leave of a user not in the room: %v, want ErrForbidden", err)
	}
	joinTmpl := tmpl.Event
	joinTmpl.Content = spec.RawJSON(`{"membership":"join"}`)
	if err := send(b.ServerName(), build(joinTmpl)); !errors.Is(err, core.ErrInvalidParam) {
		t.Fatalf("send_leave of a join: %v, want ErrInvalidParam", err)
	}
	if err := send(b.ServerName(), leave); err != nil {
		t.Fatalf("send_leave: %v", err)
	}
	if mi, err := a.Membership(ctx, roomID, bob.UserID); err != nil || mi.Membership != spec.Leave || mi.EventID != leave.EventID() {
		t.Fatalf("bob on A: %+v %v", mi, err)
	}
	if err := send(b.ServerName(), leave); err != nil {
		t.Fatalf("send_leave again: %v", err)
	}
	if _, err := a.MakeLeave(ctx, roomID, bob.UserID); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("make_leave after leaving: %v", err)
	}
}
