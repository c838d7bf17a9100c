package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Leaving rooms over federation: the resident side (MakeLeave, SendLeave,
// answering another server's make_leave and send_leave) and the leaving
// side (rejectOutOfBand: declining an invite to a room the node does not
// have, through a RemoteLeaver the app provides).

// LeaveTemplate is the answer to make_leave: an unsigned leave event for
// the leaving server to complete, sign and send back with send_leave.
type LeaveTemplate struct {
	Event       gomatrixserverlib.ProtoEvent
	RoomVersion gomatrixserverlib.RoomVersion
}

// MakeLeave builds the leave template for userID (a user of another server)
// on top of the room's current state. The room must exist here (else
// ErrNotFound) and the user must be invited to it or joined (else
// ErrForbidden).
func (n *Inbound) MakeLeave(ctx context.Context, roomID, userID string) (*LeaveTemplate, error) {
	if _, err := spec.NewUserID(userID, true); err != nil {
		return nil, fmt.Errorf("%w: user ID %q", core.ErrInvalidParam, userID)
	}
	var out *LeaveTemplate
	_, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", roomID, core.ErrNotFound)
		}
		if err := mayLeave(b, userID); err != nil {
			return err
		}
		sk := userID
		content := spec.RawJSON(`{"membership":"leave"}`)
		ev, err := b.Build(gomatrixserverlib.ProtoEvent{SenderID: userID, Type: spec.MRoomMember, StateKey: &sk, Content: content}, "")
		if err != nil {
			return err
		}
		out = &LeaveTemplate{RoomVersion: b.Room.Version, Event: gomatrixserverlib.ProtoEvent{
			SenderID: userID, RoomID: roomID, Type: spec.MRoomMember, StateKey: &sk,
			PrevEvents: ev.PrevEventIDs(), AuthEvents: ev.AuthEventIDs(), Depth: ev.Depth(), Content: content,
		}}
		return nil // nothing input: nothing committed
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// mayLeave is ErrForbidden unless userID is invited to the room or joined
// now: the auth rules let anyone "leave" again, which would let a server put
// pointless leave events into any room it knows the ID of.
func mayLeave(b *core.Batch, userID string) error {
	m := ""
	if id, ok := b.Current.Get(spec.MRoomMember, userID); ok {
		ev, err := b.PDU(id)
		if err != nil {
			return err
		}
		m, _ = ev.Membership()
	}
	if m != spec.Invite && m != spec.Join {
		return fmt.Errorf("%w: %s is not in room %s", core.ErrForbidden, userID, b.RoomID)
	}
	return nil
}

// SendLeave checks and inputs a leave signed by another server (origin, the
// authenticated requester). The spec's checks (valid signature, an
// m.room.member leave whose state key is its sender, a user of origin, the
// event ID the request names) are ErrInvalidParam; JSON that is no event
// is ErrBadInput; a user not in the room, or a leave the room's auth rules
// refuse, is ErrForbidden. A leave already accepted is accepted again.
func (n *Inbound) SendLeave(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) error {
	version, err := n.RoomVersion(roomID)
	if err != nil {
		return err
	}
	ev, redacted, err := n.parseFederatedPDU(ctx, version, raw)
	if errors.Is(err, core.ErrInvalidSignature) {
		return fmt.Errorf("%w: %w", core.ErrInvalidParam, err)
	}
	if err != nil {
		return err
	}
	switch {
	case redacted:
		return fmt.Errorf("%w: leave event fails its content hash", core.ErrInvalidParam)
	case ev.EventID() != eventID:
		return fmt.Errorf("%w: event ID is %s, not %s", core.ErrInvalidParam, ev.EventID(), eventID)
	case ev.RoomID().String() != roomID:
		return fmt.Errorf("%w: event is for room %s, not %s", core.ErrInvalidParam, ev.RoomID().String(), roomID)
	case ev.Type() != spec.MRoomMember || !ev.StateKeyEquals(string(ev.SenderID())):
		return fmt.Errorf("%w: not a membership event of its sender", core.ErrInvalidParam)
	case core.ServerOf(string(ev.SenderID())) != origin:
		return fmt.Errorf("%w: sender %s is not a user of %s", core.ErrInvalidParam, ev.SenderID(), origin)
	}
	if m, err := ev.Membership(); err != nil || m != spec.Leave {
		return fmt.Errorf("%w: membership is %q, not leave", core.ErrInvalidParam, m)
	}
	_, err = n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		if ok, err := known(b, eventID); err != nil || ok {
			return err // a retry: answered from the stored record below
		}
		if err := mayLeave(b, string(ev.SenderID())); err != nil {
			return err
		}
		return inputFederated(b, ev)
	})
	if errors.Is(err, ErrMissingEvents) {
		return fmt.Errorf("%w: %v", core.ErrForbidden, err)
	}
	if err != nil {
		return err
	}
	return n.DB.View(func(tx *kv.Txn) error {
		rec, err := core.LoadEventRecord(tx, eventID)
		switch {
		case err != nil:
			return err
		case rec.Rejected != "":
			return fmt.Errorf("%w: leave %s was rejected: %s", core.ErrForbidden, eventID, rec.Rejected)
		case rec.SoftFailed:
			return fmt.Errorf("%w: leave %s is not allowed by the room's current state", core.ErrForbidden, eventID)
		}
		return nil
	})
}

// RemoteLeaver asks a resident server to let a local user leave a room the
// node does not have (make_leave, then send_leave): how an invite received
// over federation is declined. The app provides it from its federation
// client (part of Remote). Errors wrap ErrForbidden or ErrNotFound when the
// remote server answered 403 or 404.
type RemoteLeaver interface {
	MakeLeave(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error)
	SendLeave(ctx context.Context, server string, leave gomatrixserverlib.PDU) error
}

// rejectOutOfBand declines mc.Sender's invite to a room the node does not
// have: a leave through the inviter's server, else the room ID's server.
// When neither takes it, the invite is still rejected here (with a leave
// event of the node's own making, as Synapse does) so that a user is never
// stuck with an invite; the failure is logged. Rejecting twice is a no-op.
func (n *Inbound) rejectOutOfBand(ctx context.Context, mc core.MembershipChange) (string, error) {
	oob, err := n.OutOfBandRoom(ctx, mc.Sender, mc.RoomID)
	if err != nil {
		return "", err
	}
	invite := oob.Event.PDU
	if m, _ := invite.Membership(); m != spec.Invite {
		return invite.EventID(), nil
	}
	servers := []string{core.ServerOf(string(invite.SenderID()))}
	if rid, err := spec.NewRoomID(mc.RoomID); err == nil {
		servers = append(servers, string(rid.Domain()))
	}
	var leave gomatrixserverlib.PDU
	lastErr := errors.New("leaving over federation is off")
	if l := n.remoteLeaver(); l != nil {
		tried := map[string]bool{}
		for _, s := range servers {
			if s == "" || s == n.ServerName() || tried[s] || ctx.Err() != nil {
				continue
			}
			tried[s] = true
			if leave, lastErr = n.leaveVia(ctx, l, s, mc, invite.Version()); lastErr == nil {
				break
			}
		}
	}
	if leave == nil {
		n.Logger().Warn("invite rejected here only: no server in the room took the leave",
			"room_id", mc.RoomID, "user_id", mc.Sender, "error", lastErr)
		if leave, err = n.localRejection(mc, invite); err != nil {
			return "", err
		}
	}
	err = n.storeOutOfBand(ctx, mc.Sender, mc.RoomID, spec.Leave, leave, outOfBandRecord{Version: invite.Version(), Event: leave.JSON()})
	if errors.Is(err, errRoomKnown) {
		return "", fmt.Errorf("room %s arrived while the invite was being rejected: leave it again", mc.RoomID)
	}
	if err != nil && !errors.Is(err, errSameMembership) {
		return "", err
	}
	return leave.EventID(), nil
}

// leaveVia runs make_leave and send_leave against one server and returns
// the leave it accepted.
func (n *Inbound) leaveVia(ctx context.Context, l RemoteLeaver, server string, mc core.MembershipChange, version gomatrixserverlib.RoomVersion) (gomatrixserverlib.PDU, error) {
	userID := mc.Sender
	proto, got, err := l.MakeLeave(ctx, server, mc.RoomID, userID)
	if err != nil {
		return nil, err
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(got)
	if err != nil || got != version {
		return nil, fmt.Errorf("make_leave from %s: room version %q, the invite's is %q", server, got, version)
	}
	var content map[string]any
	switch {
	case proto.RoomID != mc.RoomID:
		return nil, fmt.Errorf("make_leave from %s: template is for room %q", server, proto.RoomID)
	case proto.SenderID != userID || proto.StateKey == nil || *proto.StateKey != userID:
		return nil, fmt.Errorf("make_leave from %s: template is not for %s", server, userID)
	case proto.Type != spec.MRoomMember:
		return nil, fmt.Errorf("make_leave from %s: template has type %q", server, proto.Type)
	case json.Unmarshal(proto.Content, &content) != nil || content["membership"] != spec.Leave:
		return nil, fmt.Errorf("make_leave from %s: template is not a leave", server)
	}
	if mc.Reason != "" {
		content["reason"] = mc.Reason
	}
	if proto.Content, err = json.Marshal(content); err != nil {
		return nil, err
	}
	proto.Redacts, proto.Signature, proto.Unsigned = "", nil, nil
	leave, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(n.Now(), spec.ServerName(n.ServerName()), identity.KeyID, n.SigningKey())
	if err != nil {
		return nil, fmt.Errorf("make_leave from %s: building the leave: %w", server, err)
	}
	leave.EventID()
	if err := l.SendLeave(ctx, server, leave); err != nil {
		return nil, err
	}
	return leave, nil
}

// localRejection is a leave that follows the invite directly (its only prev
// and auth event), for a rejection no server in the room heard of.
func (n *Inbound) localRejection(mc core.MembershipChange, invite gomatrixserverlib.PDU) (gomatrixserverlib.PDU, error) {
	verImpl, err := gomatrixserverlib.GetRoomVersion(invite.Version())
	if err != nil {
		return nil, err
	}
	content := map[string]any{"membership": spec.Leave}
	if mc.Reason != "" {
		content["reason"] = mc.Reason
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	sk := mc.Sender
	// The inviter chose the invite's depth: one at the cap keeps the cap.
	proto := gomatrixserverlib.ProtoEvent{
		SenderID: mc.Sender, RoomID: mc.RoomID, Type: spec.MRoomMember, StateKey: &sk, Content: raw,
		PrevEvents: []string{invite.EventID()}, AuthEvents: []string{invite.EventID()}, Depth: min(invite.Depth(), core.MaxDepth-1) + 1,
	}
	leave, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(n.Now(), spec.ServerName(n.ServerName()), identity.KeyID, n.SigningKey())
	if err != nil {
		return nil, fmt.Errorf("building a local rejection: %w", err)
	}
	leave.EventID()
	return leave, nil
}
