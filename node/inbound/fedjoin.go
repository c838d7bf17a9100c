package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Joining rooms over federation: the resident side (MakeJoin, SendJoin,
// answering another server's make_join and send_join) and the joining side
// (joinRemote, through a RemoteJoiner the app provides).

// ErrIncompatibleRoomVersion: the room's version is not one the joining
// server said it supports (make_join's ver parameters).
var ErrIncompatibleRoomVersion = errors.New("incompatible room version")

// IncompatibleRoomVersionError is MakeJoin's ErrIncompatibleRoomVersion,
// naming the room's version (the spec's error carries it).
type IncompatibleRoomVersionError struct {
	RoomID, RoomVersion string
}

func (e *IncompatibleRoomVersionError) Error() string {
	return fmt.Sprintf("%v: room %s is version %s", ErrIncompatibleRoomVersion, e.RoomID, e.RoomVersion)
}

func (e *IncompatibleRoomVersionError) Unwrap() error { return ErrIncompatibleRoomVersion }

// JoinTemplate is the answer to make_join: an unsigned join event for the
// joining server to complete, sign and send back with send_join.
type JoinTemplate struct {
	Event       gomatrixserverlib.ProtoEvent
	RoomVersion gomatrixserverlib.RoomVersion
}

// MakeJoin builds the join template for userID (a user of another server)
// on top of the room's current state. The room must exist here (else
// ErrNotFound), its version must be in versions (else
// ErrIncompatibleRoomVersion), and the auth rules must allow the join now:
// a public room, or an invited user (else ErrForbidden).
func (n *Inbound) MakeJoin(ctx context.Context, roomID, userID string, versions []string) (*JoinTemplate, error) {
	if _, err := spec.NewUserID(userID, true); err != nil {
		return nil, fmt.Errorf("%w: user ID %q", core.ErrInvalidParam, userID)
	}
	var out *JoinTemplate
	_, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		if b.Room == nil {
			return fmt.Errorf("room %s: %w", roomID, core.ErrNotFound)
		}
		if !slices.Contains(versions, string(b.Room.Version)) {
			return &IncompatibleRoomVersionError{RoomID: roomID, RoomVersion: string(b.Room.Version)}
		}
		sk := userID
		ev, err := b.Build(gomatrixserverlib.ProtoEvent{
			SenderID: userID, Type: spec.MRoomMember, StateKey: &sk,
			Content: spec.RawJSON(`{"membership":"join"}`),
		}, "")
		if err != nil {
			return err
		}
		out = &JoinTemplate{RoomVersion: b.Room.Version, Event: gomatrixserverlib.ProtoEvent{
			SenderID: userID, RoomID: roomID, Type: spec.MRoomMember, StateKey: &sk,
			PrevEvents: ev.PrevEventIDs(), AuthEvents: ev.AuthEventIDs(), Depth: ev.Depth(),
			Content: spec.RawJSON(`{"membership":"join"}`),
		}}
		return nil // nothing input: nothing committed
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SendJoinResult is the answer to send_join: the room's state before the
// join and its auth chain (full event JSON), and the join event itself.
type SendJoinResult struct {
	State     []json.RawMessage
	AuthChain []json.RawMessage
	Event     json.RawMessage
}

// SendJoin checks and inputs a join signed by another server (origin, the
// authenticated requester): it must be a join of one of origin's users,
// carry valid signatures and hashes, and have the event ID the request
// names. It goes through the room pipeline like any PDU and must be
// accepted (else ErrForbidden with the reason). A join already accepted is
// answered again. The result is the state before the join and its auth
// chain.
func (n *Inbound) SendJoin(ctx context.Context, origin, roomID, eventID string, raw json.RawMessage) (*SendJoinResult, error) {
	version, err := n.RoomVersion(roomID)
	if err != nil {
		return nil, err
	}
	// Whose join it is comes before the signature work: only the origin's
	// users may be joined by it.
	var hdr struct {
		Sender string `json:"sender"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return nil, fmt.Errorf("%w: join event: %v", core.ErrBadInput, err)
	}
	if core.ServerOf(hdr.Sender) != origin {
		return nil, fmt.Errorf("%w: sender %q is not a user of %s", core.ErrForbidden, hdr.Sender, origin)
	}
	ev, redacted, err := n.parseFederatedPDU(ctx, version, raw)
	if err != nil {
		return nil, err
	}
	switch {
	case redacted:
		return nil, fmt.Errorf("%w: join event fails its content hash", core.ErrBadInput)
	case ev.EventID() != eventID:
		return nil, fmt.Errorf("%w: event ID is %s, not %s", core.ErrBadInput, ev.EventID(), eventID)
	case ev.RoomID().String() != roomID:
		return nil, fmt.Errorf("%w: event is for room %s, not %s", core.ErrBadInput, ev.RoomID().String(), roomID)
	case ev.Type() != spec.MRoomMember || !ev.StateKeyEquals(string(ev.SenderID())):
		return nil, fmt.Errorf("%w: not a membership event of its sender", core.ErrBadInput)
	case core.ServerOf(string(ev.SenderID())) != origin:
		return nil, fmt.Errorf("%w: sender %s is not a user of %s", core.ErrForbidden, ev.SenderID(), origin)
	}
	if m, err := ev.Membership(); err != nil || m != spec.Join {
		return nil, fmt.Errorf("%w: membership is %q, not join", core.ErrBadInput, m)
	}
	var inputErr error
	if _, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
		inputErr = inputFederated(b, ev)
		return nil
	}); err != nil {
		return nil, err
	}
	if inputErr != nil {
		if errors.Is(inputErr, ErrMissingEvents) {
			return nil, fmt.Errorf("%w: %v", core.ErrForbidden, inputErr)
		}
		return nil, inputErr
	}
	out := &SendJoinResult{Event: ev.JSON()}
	err = n.DB.View(func(tx *kv.Txn) error {
		rec, err := core.LoadEventRecord(tx, eventID)
		if err != nil {
			return err
		}
		switch {
		case rec.Rejected != "":
			return fmt.Errorf("%w: join %s was rejected: %s", core.ErrForbidden, eventID, rec.Rejected)
		case rec.SoftFailed:
			return fmt.Errorf("%w: join %s is not allowed by the room's current state", core.ErrForbidden, eventID)
		}
		ids, err := n.stateAndAuthChainIDs(tx, rec.StateBefore)
		if err != nil {
			return err
		}
		rs, err := n.roomStateJSON(tx, ids)
		if err != nil {
			return err
		}
		out.State, out.AuthChain = rs.State, rs.AuthChain
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eventJSON is a stored event's JSON (redacted form if redacted).
func (n *Inbound) eventJSON(tx *kv.Txn, id string) (json.RawMessage, error) {
	rec, err := core.LoadEventRecord(tx, id)
	if err != nil {
		return nil, err
	}
	return rec.ReadJSON(tx, id)
}

// RemoteJoiner asks a resident server to let a local user join a room the
// node does not have (make_join, then send_join). The app provides it from
// its federation client (part of Remote). Errors wrap ErrForbidden or
// ErrNotFound when the remote server answered 403 or 404, and
// ErrUnsupportedRoomVersion when it refused the room versions offered.
type RemoteJoiner interface {
	MakeJoin(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error)
	SendJoin(ctx context.Context, server string, join gomatrixserverlib.PDU) (RemoteJoinState, error)
}

// RemoteJoinState is what send_join returns: the state before the join and
// its auth chain, as full event JSON.
type RemoteJoinState struct {
	State     []json.RawMessage
	AuthChain []json.RawMessage
}

// joinRemote joins mc.Sender to a room the node does not have, asking each of
// servers in turn (when none are given: the server of whoever invited the
// user, then the room ID's server). The last server's error is returned
// when none lets the user in.
func (n *Inbound) joinRemote(ctx context.Context, mc core.MembershipChange, servers []string) (string, error) {
	j := n.remoteJoiner()
	if j == nil {
		return "", fmt.Errorf("room %s: %w (and joining over federation is off)", mc.RoomID, core.ErrNotFound)
	}
	rid, err := spec.NewRoomID(mc.RoomID)
	if err != nil {
		return "", fmt.Errorf("%w: room ID %q", core.ErrInvalidParam, mc.RoomID)
	}
	if len(servers) == 0 {
		servers = append(n.InviterServers(mc.Sender, mc.RoomID), string(rid.Domain()))
	}
	var lastErr error
	tried := map[string]bool{}
	for _, s := range servers {
		if s == "" || s == n.ServerName() || tried[s] {
			continue
		}
		tried[s] = true
		id, err := n.joinVia(ctx, j, s, mc)
		if err == nil {
			return id, nil
		}
		n.Logger().Debug("remote join failed", "room_id", mc.RoomID, "server", s, "error", err)
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("room %s: %w (no server to join through)", mc.RoomID, core.ErrNotFound)
	}
	return "", lastErr
}

// joinVia runs make_join and send_join against one server, checks what it
// returns and stores the room.
func (n *Inbound) joinVia(ctx context.Context, j RemoteJoiner, server string, mc core.MembershipChange) (string, error) {
	userID := mc.Sender
	proto, version, err := j.MakeJoin(ctx, server, mc.RoomID, userID)
	if err != nil {
		return "", err
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil || !core.RoomVersionSupported(version) {
		return "", fmt.Errorf("room version %q: %w", version, core.ErrUnsupportedRoomVersion)
	}
	var content map[string]any
	switch {
	case proto.RoomID != mc.RoomID:
		return "", fmt.Errorf("%w: make_join template is for room %q", core.ErrBadInput, proto.RoomID)
	case proto.SenderID != userID || proto.StateKey == nil || *proto.StateKey != userID:
		return "", fmt.Errorf("%w: make_join template is not for %s", core.ErrBadInput, userID)
	case proto.Type != spec.MRoomMember:
		return "", fmt.Errorf("%w: make_join template has type %q", core.ErrBadInput, proto.Type)
	case json.Unmarshal(proto.Content, &content) != nil || content["membership"] != spec.Join:
		return "", fmt.Errorf("%w: make_join template is not a join", core.ErrBadInput)
	}
	if mc.Reason != "" {
		content["reason"] = mc.Reason
	}
	if p, err := n.Profile(ctx, userID); err == nil {
		core.SetOrDelete(content, "displayname", p.DisplayName)
		core.SetOrDelete(content, "avatar_url", p.AvatarURL)
	}
	if proto.Content, err = json.Marshal(content); err != nil {
		return "", err
	}
	proto.Redacts, proto.Signature, proto.Unsigned = "", nil, nil
	join, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(n.Now(), spec.ServerName(n.ServerName()), identity.KeyID, n.SigningKey())
	if err != nil {
		return "", fmt.Errorf("%w: building the join: %v", core.ErrBadInput, err)
	}
	join.EventID()
	// The resident may send the room's events as soon as it has the join:
	// they wait for the room to be stored (joining.go).
	defer n.joining.begin(mc.RoomID)()
	resp, err := j.SendJoin(ctx, server, join)
	if err != nil {
		return "", err
	}
	state, outliers, err := n.checkJoinState(ctx, version, join, resp)
	if err != nil {
		return "", fmt.Errorf("send_join response from %s: %w", server, err)
	}
	before := core.StateFromMap(state)
	after := before.With(spec.MRoomMember, userID, join.EventID())
	// The state and auth chain go in first, in bounded transactions
	// (fedjoin_chunks.go); one join of the room at a time, so that one
	// attempt's cleanup never meets another's writes.
	unlock, err := n.JoinLocks.Lock(ctx, mc.RoomID)
	if err != nil {
		return "", err
	}
	defer unlock()
	pre, err := n.prewriteJoin(ctx, mc.RoomID, version, before, after, outliers)
	if err != nil {
		return "", err
	}
	_, err = n.WithRoom(ctx, mc.RoomID, func(b *core.Batch) error {
		if b.Room != nil {
			return fmt.Errorf("room %s appeared while joining it: %w", mc.RoomID, core.ErrRoomInUse)
		}
		// The remote members' index entries are written: the commit
		// writes what differs from them.
		b.Start = pre
		for _, ev := range outliers {
			if ok, err := b.Tx.Has(core.EventKey(ev.EventID())); err != nil {
				return err
			} else if ok {
				continue
			}
			p := &core.PendingEvent{PDU: ev, Outlier: true, Record: core.EventRecord{
				RoomID: mc.RoomID, Version: string(version), JSON: ev.JSON(),
				StateBefore: before.ID(), StateAfter: before.ID(),
			}}
			b.Events = append(b.Events, p)
			b.ByID[ev.EventID()] = p
		}
		p := &core.PendingEvent{PDU: join, Before: before, After: after, Current: after, Accepted: true, Record: core.EventRecord{
			RoomID: mc.RoomID, Version: string(version), JSON: join.JSON(), DeviceID: mc.DeviceID,
			StateBefore: before.ID(), StateAfter: after.ID(),
		}}
		b.Events = append(b.Events, p)
		b.ByID[join.EventID()] = p
		b.Room = &core.RoomRecord{Version: version, Extremities: []string{join.EventID()}, State: after.ID(), Depth: join.Depth()}
		b.Current = after
		b.Extra = append(b.Extra, dropOutOfBand(userID, mc.RoomID), endPendingJoin(mc.RoomID)) // the room is here now
		return nil
	})
	if err != nil {
		return "", err
	}
	return join.EventID(), nil
}

// checkJoinState verifies a send_join answer: every event parses in the
// room's version, is in the room, is signed by its sender's server with a
// matching content hash, and is allowed by its own auth events, which must
// all be in the answer; the state has one create event and lets the join in.
// It returns the state before the join and every event to store as an
// outlier (auth chain and state, in depth order).
func (n *Inbound) checkJoinState(ctx context.Context, version gomatrixserverlib.RoomVersion, join gomatrixserverlib.PDU, resp RemoteJoinState) (map[core.StateKey]string, []gomatrixserverlib.PDU, error) {
	all := map[string]gomatrixserverlib.PDU{}
	parse := func(raws []json.RawMessage) ([]gomatrixserverlib.PDU, error) {
		out := make([]gomatrixserverlib.PDU, 0, len(raws))
		for _, raw := range raws {
			ev, redacted, err := n.parseFederatedPDU(ctx, version, raw)
			if err != nil {
				return nil, err
			}
			if redacted {
				return nil, fmt.Errorf("%w: event %s fails its content hash", core.ErrBadInput, ev.EventID())
			}
			if ev.RoomID().String() != join.RoomID().String() {
				return nil, fmt.Errorf("%w: event %s is in another room", core.ErrBadInput, ev.EventID())
			}
			all[ev.EventID()] = ev
			out = append(out, ev)
		}
		return out, nil
	}
	if _, err := parse(resp.AuthChain); err != nil {
		return nil, nil, err
	}
	stateEvs, err := parse(resp.State)
	if err != nil {
		return nil, nil, err
	}
	delete(all, join.EventID())
	events := make([]gomatrixserverlib.PDU, 0, len(all))
	for _, ev := range all {
		events = append(events, ev)
	}
	slices.SortFunc(events, func(a, b gomatrixserverlib.PDU) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return strings.Compare(a.EventID(), b.EventID())
	})
	for _, ev := range events {
		authEvs := make([]gomatrixserverlib.PDU, 0, len(ev.AuthEventIDs()))
		for _, id := range ev.AuthEventIDs() {
			a, ok := all[id]
			if !ok {
				return nil, nil, fmt.Errorf("%w: auth event %s of %s is not in the auth chain", core.ErrBadInput, id, ev.EventID())
			}
			authEvs = append(authEvs, a)
		}
		provider, err := gomatrixserverlib.NewAuthEvents(authEvs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: auth events of %s: %v", core.ErrBadInput, ev.EventID(), err)
		}
		if err := gomatrixserverlib.Allowed(ev, provider, core.UserIDForSender); err != nil {
			return nil, nil, fmt.Errorf("%w: event %s is not allowed by its auth events: %v", core.ErrForbidden, ev.EventID(), err)
		}
	}
	state := map[core.StateKey]string{}
	for _, ev := range stateEvs {
		sk := ev.StateKey()
		if sk == nil || ev.EventID() == join.EventID() {
			continue
		}
		k := core.StateKey{EventType: ev.Type(), StateKey: *sk}
		if old, dup := state[k]; dup && old != ev.EventID() {
			return nil, nil, fmt.Errorf("%w: two state events for (%s, %s)", core.ErrBadInput, k.EventType, k.StateKey)
		}
		state[k] = ev.EventID()
	}
	if _, ok := state[core.StateKey{EventType: spec.MRoomCreate}]; !ok {
		return nil, nil, fmt.Errorf("%w: state has no create event", core.ErrBadInput)
	}
	var atState []gomatrixserverlib.PDU
	for _, id := range state {
		atState = append(atState, all[id])
	}
	provider, err := gomatrixserverlib.NewAuthEvents(atState)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: state: %v", core.ErrBadInput, err)
	}
	if err := gomatrixserverlib.Allowed(join, provider, core.UserIDForSender); err != nil {
		return nil, nil, fmt.Errorf("%w: the returned state does not allow the join: %v", core.ErrForbidden, err)
	}
	return state, events, nil
}
