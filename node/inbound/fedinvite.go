package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Invites across servers: the inviting side (inviteRemote, through a
// RemoteInviter the app provides) and the invited side (ReceiveInvite,
// answering another server's PUT /invite).

// RemoteInviter asks the server of an invited user to sign the invite (PUT
// /_matrix/federation/v2/invite). The app provides it from its federation
// client (part of Remote). It returns the event as that server signed it.
// Errors wrap ErrForbidden or ErrNotFound when the server answered 403 or
// 404, and ErrUnsupportedRoomVersion when it refused the room's version.
type RemoteInviter interface {
	SendInvite(ctx context.Context, server string, invite gomatrixserverlib.PDU, inviteRoomState []gomatrixserverlib.InviteStrippedState) (json.RawMessage, error)
}

// inviteRemote sends req, an invite of a user of another server. The event
// is built and authorised on the room's current state, then signed by the
// invitee's server, whose signature is checked, and only then input: an
// invite that server refuses is never stored. The room's lock is not held
// while the other server is asked.
func (n *Inbound) inviteRemote(ctx context.Context, req core.SendRequest) (string, error) {
	inviter := n.remoteInviter()
	if inviter == nil {
		return "", fmt.Errorf("%w: inviting users of other servers needs federation", core.ErrForbidden)
	}
	if req.TxnScope.Endpoint == "" {
		req.TxnScope = core.SendTxn(req.RoomID, req.Type)
	}
	if req.TxnID != "" {
		if id, err := n.TxnEvent(req.Sender, req.DeviceID, req.TxnScope, req.TxnID); err == nil {
			return id, nil
		} else if !errors.Is(err, kv.ErrNotFound) {
			return "", err
		}
	}
	target := *req.StateKey
	var (
		ev    gomatrixserverlib.PDU
		state []gomatrixserverlib.InviteStrippedState
	)
	_, err := n.WithRoom(ctx, req.RoomID, func(b *core.Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", req.RoomID, core.ErrNotFound)
		}
		var err error
		ev, err = b.Build(gomatrixserverlib.ProtoEvent{
			SenderID: req.Sender, Type: spec.MRoomMember, StateKey: &target, Content: spec.RawJSON(req.Content),
		}, "")
		if err != nil {
			return err
		}
		state, err = inviteRoomState(b, req.Sender)
		return err // nothing input: nothing committed
	})
	if err != nil {
		return "", err
	}
	server := core.ServerOf(target)
	raw, err := inviter.SendInvite(ctx, server, ev, state)
	if err != nil {
		return "", fmt.Errorf("invite of %s: %w", target, err)
	}
	// Not %w: a bad answer from the other server is not the client's fault.
	signed, redacted, err := n.parseFederatedPDU(ctx, ev.Version(), raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("invite of %s: the event %s returned: %v", target, server, err)
	case redacted || signed.EventID() != ev.EventID():
		return "", fmt.Errorf("invite of %s: %s returned another event", target, server)
	}
	_, err = n.WithRoom(ctx, req.RoomID, func(b *core.Batch) error {
		return b.Input(signed, core.InputOpts{TxnID: req.TxnID, TxnScope: req.TxnScope, DeviceID: req.DeviceID, Sender: req.Sender})
	})
	if err != nil {
		return "", err
	}
	return signed.EventID(), nil
}

// inviteRoomState is the stripped state sent with an invite so the invitee
// can tell what room it is: the room's identifying state and the inviter's
// member event.
func inviteRoomState(b *core.Batch, inviter string) ([]gomatrixserverlib.InviteStrippedState, error) {
	keys := []core.StateKey{
		{EventType: spec.MRoomCreate}, {EventType: spec.MRoomJoinRules}, {EventType: spec.MRoomName},
		{EventType: spec.MRoomAvatar}, {EventType: spec.MRoomCanonicalAlias}, {EventType: spec.MRoomEncryption},
		{EventType: spec.MRoomMember, StateKey: inviter},
	}
	var out []gomatrixserverlib.InviteStrippedState
	for _, k := range keys {
		id, ok := b.Current.Get(k.EventType, k.StateKey)
		if !ok {
			continue
		}
		ev, err := b.PDU(id)
		if err != nil {
			return nil, err
		}
		out = append(out, gomatrixserverlib.NewInviteStrippedState(ev))
	}
	return out, nil
}

// InviteRequest is another server's request to sign an invite of a local
// user (PUT /_matrix/federation/v2/invite/{roomId}/{eventId}).
type InviteRequest struct {
	// Origin is the authenticated requesting server.
	Origin      string
	RoomID      string
	EventID     string
	RoomVersion gomatrixserverlib.RoomVersion
	Event       json.RawMessage
	// InviteRoomState is the stripped state the invitee is to see.
	InviteRoomState []json.RawMessage
}

// maxInviteState caps how many stripped state events an invite may carry.
const maxInviteState = 64

// ReceiveInvite checks an invite of a local user sent by another server,
// signs it with the node's key and returns the signed event JSON. The
// version must be one the node supports (else *IncompatibleRoomVersionError);
// the event must be an m.room.member invite with the ID and room the request
// names, sent by a user of the origin, for a user of this server, with a
// valid content hash and signature (else ErrInvalidParam, the spec's
// M_INVALID_PARAM); the invitee must exist (else ErrForbidden).
//
// For a room the node does not have, the invite is stored out of band and
// the invitee sees it in /sync (OutOfBandRoom). For a room it has, nothing
// is stored: the invite comes through the room like any event.
func (n *Inbound) ReceiveInvite(ctx context.Context, req InviteRequest) (json.RawMessage, error) {
	verImpl, err := gomatrixserverlib.GetRoomVersion(req.RoomVersion)
	if err != nil || !core.RoomVersionSupported(req.RoomVersion) {
		return nil, &IncompatibleRoomVersionError{RoomID: req.RoomID, RoomVersion: string(req.RoomVersion)}
	}
	if len(req.Event) > core.MaxEventSize {
		return nil, fmt.Errorf("invite is %d bytes: %w", len(req.Event), core.ErrTooLarge)
	}
	if err := jsontext.Check(req.Event); err != nil {
		return nil, fmt.Errorf("%w: invite event %v", core.ErrInvalidParam, err) // stored and served as it came
	}
	ev, err := verImpl.NewEventFromUntrustedJSON(req.Event)
	if err != nil {
		return nil, fmt.Errorf("%w: invite event: %v", core.ErrInvalidParam, err)
	}
	if err := jsontext.DuplicateKey(req.Event); err != nil {
		return nil, fmt.Errorf("%w: invite event: %v", core.ErrInvalidParam, err)
	}
	ev.EventID()
	target := ev.StateKey()
	switch {
	case ev.EventID() != req.EventID:
		return nil, fmt.Errorf("%w: event ID is %s, not %s", core.ErrInvalidParam, ev.EventID(), req.EventID)
	case ev.RoomID().String() != req.RoomID:
		return nil, fmt.Errorf("%w: event is for room %s, not %s", core.ErrInvalidParam, ev.RoomID().String(), req.RoomID)
	case ev.Type() != spec.MRoomMember || target == nil:
		return nil, fmt.Errorf("%w: not an m.room.member event", core.ErrInvalidParam)
	case core.ServerOf(string(ev.SenderID())) != req.Origin:
		return nil, fmt.Errorf("%w: sender %s is not a user of %s", core.ErrInvalidParam, ev.SenderID(), req.Origin)
	case !n.IsLocalUser(*target):
		return nil, fmt.Errorf("%w: %s is not a user of this server", core.ErrInvalidParam, *target)
	case ev.Redacted():
		return nil, fmt.Errorf("%w: invite event fails its content hash", core.ErrInvalidParam)
	}
	if m, err := ev.Membership(); err != nil || m != spec.Invite {
		return nil, fmt.Errorf("%w: membership is %q, not invite", core.ErrInvalidParam, m)
	}
	if ok, err := n.accountExists(*target); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%w: no user %s here", core.ErrForbidden, *target)
	}
	// Signed first: an invite needs the invitee's server's signature as well
	// as the sender's, and this checks both.
	signed := ev.Sign(n.ServerName(), identity.KeyID, n.SigningKey())
	if err := gomatrixserverlib.VerifyEventSignatures(ctx, signed, identity.KeyRing{}, core.UserIDForSender); err != nil {
		return nil, fmt.Errorf("%w: invite signature: %v", core.ErrInvalidParam, err)
	}
	rec := outOfBandRecord{Version: req.RoomVersion, Event: signed.JSON(), InviteState: strippedState(req.InviteRoomState, *target)}
	err = n.storeOutOfBand(ctx, *target, req.RoomID, spec.Invite, signed, rec)
	if err != nil && !errors.Is(err, errRoomKnown) && !errors.Is(err, errSameMembership) {
		return nil, err
	}
	return signed.JSON(), nil
}

// strippedState keeps the well-formed entries of an invite's stripped
// state, in the spec's four fields, leaving out the invitee's own member
// event (the invite itself stands for it).
func strippedState(in []json.RawMessage, invitee string) []json.RawMessage {
	var out []json.RawMessage
	for _, raw := range in {
		var e struct {
			Type     string          `json:"type"`
			StateKey *string         `json:"state_key"`
			Sender   string          `json:"sender"`
			Content  json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Type == "" || e.StateKey == nil || len(e.Content) == 0 || e.Content[0] != '{' {
			continue
		}
		if e.Type == spec.MRoomMember && *e.StateKey == invitee {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			continue
		}
		if out = append(out, b); len(out) == maxInviteState {
			break
		}
	}
	return out
}

// accountExists reports whether a local user has an account.
func (n *Inbound) accountExists(userID string) (bool, error) {
	lp, err := n.LocalpartOf(userID)
	if err != nil {
		return false, nil
	}
	var ok bool
	err = n.DB.View(func(tx *kv.Txn) error {
		ok, err = tx.Has(core.AccountKey(lp))
		return err
	})
	return ok, err
}
