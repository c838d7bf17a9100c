package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// directJoiner is a RemoteJoiner that calls a resident node in-process, with
// a hook to tamper with its answer.
type directJoiner struct {
	joining, resident *Node
	tamper            func(*inbound.RemoteJoinState)
}

func (d directJoiner) MakeJoin(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	tmpl, err := d.resident.MakeJoin(ctx, roomID, userID, []string{"10", "11"})
	if err != nil {
		return gomatrixserverlib.ProtoEvent{}, "", err
	}
	return tmpl.Event, tmpl.RoomVersion, nil
}

func (d directJoiner) SendJoin(ctx context.Context, server string, join gomatrixserverlib.PDU) (inbound.RemoteJoinState, error) {
	res, err := d.resident.SendJoin(ctx, d.joining.ServerName(), join.RoomID().String(), join.EventID(), join.JSON())
	if err != nil {
		return inbound.RemoteJoinState{}, err
	}
	st := inbound.RemoteJoinState{State: res.State, AuthChain: res.AuthChain}
	if d.tamper != nil {
		d.tamper(&st)
	}
	return st, nil
}

func TestJoinRemoteChecksTheAnswer(t *testing.T) {
	ctx := context.Background()
	a, b := newTestNode(t), newTestNode(t)
	alice, bob := register(t, a, "alice"), register(t, b, "bob")
	roomID, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPublicChat})
	if err != nil {
		t.Fatal(err)
	}

	// Unknown room and no joiner: not found, as before federation.
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("join without a joiner: %v", err)
	}

	// An auth chain with an event missing does not authorise the state.
	setRemoteJoiner(b, directJoiner{joining: b, resident: a, tamper: func(st *inbound.RemoteJoinState) {
		st.AuthChain = nil
		var kept []json.RawMessage
		for _, raw := range st.State {
			var h struct{ Type string }
			_ = json.Unmarshal(raw, &h)
			if h.Type != spec.MRoomCreate {
				kept = append(kept, raw)
			}
		}
		st.State = kept
	}})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); !errors.Is(err, core.ErrBadInput) {
		t.Fatalf("join with a broken auth chain: %v, want ErrBadInput", err)
	}
	if _, err := b.Membership(ctx, roomID, bob.UserID); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("room stored after a bad answer: %v", err)
	}

	// A tampered event fails its signature check.
	setRemoteJoiner(b, directJoiner{joining: b, resident: a, tamper: func(st *inbound.RemoteJoinState) {
		var ev map[string]any
		_ = json.Unmarshal(st.State[0], &ev)
		ev["origin_server_ts"] = 1
		st.State[0], _ = json.Marshal(ev)
	}})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); !errors.Is(err, core.ErrInvalidSignature) {
		t.Fatalf("join with a tampered state event: %v, want ErrInvalidSignature", err)
	}

	// An honest answer: the room is stored with A's state, the join heads it.
	setRemoteJoiner(b, directJoiner{joining: b, resident: a})
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatalf("join: %v", err)
	}
	sameStateSize(ctx, t, a, b, roomID)
	head := roomHead(t, b, roomID)
	mi, err := b.Membership(ctx, roomID, bob.UserID)
	if err != nil || mi.Membership != spec.Join || len(head.Extremities) != 1 || head.Extremities[0] != mi.EventID {
		t.Fatalf("B's head %+v, bob %+v %v", head, mi, err)
	}
	page, err := b.RoomEvents(ctx, bob.UserID, roomID, core.Range{Backwards: true, Limit: 50})
	if err != nil || len(page.Events) != 1 || page.Events[0].PDU.EventID() != mi.EventID {
		t.Fatalf("B's timeline %d events, %v", len(page.Events), err)
	}
	// Joining again is a local no-op.
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, roomID); err != nil {
		t.Fatalf("join again: %v", err)
	}

	// A private room: refused until bob is invited, then allowed.
	private, err := a.CreateRoom(ctx, core.CreateRoomRequest{Creator: alice.UserID, Preset: core.PresetPrivateChat})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, private); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("join of a private room without invite: %v, want ErrForbidden", err)
	}
	// Once invited (B countersigns the invite), bob may join.
	setRemoteInviter(a, directInviter{inviting: a, invited: b})
	membership(t, a, alice, private, bob.UserID, spec.Invite)
	if _, err := b.Join(ctx, bob.UserID, bob.DeviceID, private); err != nil {
		t.Fatalf("join of a private room once invited: %v", err)
	}
}

// sameStateSize fails t unless nodes a and b hold as many current state
// events of roomID.
func sameStateSize(ctx context.Context, t *testing.T, a, b *Node, roomID string) {
	t.Helper()
	aState, err := a.CurrentState(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	bState, err := b.CurrentState(ctx, roomID)
	if err != nil {
		t.Fatal(err)
	}
	if len(aState) != len(bState) {
		t.Fatalf("A has %d state events, B %d", len(aState), len(bState))
	}
}
