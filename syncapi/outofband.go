package syncapi

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// outOfBandRoom works out the entry of a room the node does not have, where
// the user was invited over federation: under rooms.invite the stripped
// state that came with the invite and the invite itself, as for a room the
// node has; under rooms.leave, once the invite is rejected, a timeline of
// the one leave event (what Synapse sends for a rejected remote invite).
func (a *api) outOfBandRoom(ctx context.Context, req *syncRequest, to StreamToken, m core.RoomMembership) (roomEntry, error) {
	var e roomEntry
	if m.Pos > to.Room {
		// Newer than this response: the next sync (since to) has it. A
		// room with no events here loses nothing by waiting.
		return e, nil
	}
	changed := !req.hasSince || m.Pos > req.since.Room
	switch m.Membership {
	case spec.Invite:
		if !changed && !req.fullState {
			return e, nil
		}
	case spec.Leave:
		show := req.hasSince && changed || (!req.hasSince || req.fullState) && req.filter.Room.IncludeLeave
		if m.Forgotten || !show {
			return e, nil
		}
	default:
		return e, nil
	}
	oob, err := a.n.OutOfBandRoom(ctx, req.dev.UserID, m.RoomID)
	if errors.Is(err, core.ErrNotFound) {
		return e, nil // the room arrived meanwhile: the next sync has it
	}
	if err != nil {
		return e, err
	}
	ev := oob.Event
	if m.Membership == spec.Invite {
		if req.ignored[string(ev.PDU.SenderID())] {
			return e, nil // invites from ignored users are not shown
		}
		e.invite = &invitedRoom{InviteState: eventList{Events: outOfBandInviteState(oob)}}
		return e, nil
	}
	r := newRenderer(req.filter, req.dev, true)
	var evs []*core.Event
	if req.filter.Room.Timeline.MatchEvent(ev) {
		evs = append(evs, ev)
	}
	sec := roomSection{Timeline: timeline{Events: r.events(evs)}}
	sec.State, sec.StateAfter, sec.StateAfterU = stateSection(req.stateAfterKey, &eventList{Events: []any{}})
	e.leave = &leftRoom{roomSection: sec, AccountData: eventList{Events: []any{}}}
	return e, nil
}

// outOfBandInviteState is the stripped state of an invite to a room the
// node does not have: what came with the invite, and the invite itself
// (for /sync and sliding sync alike).
func outOfBandInviteState(oob *core.OutOfBandRoom) []any {
	ev := oob.Event
	out := make([]any, 0, len(oob.InviteState)+1)
	for _, raw := range oob.InviteState {
		var s struct {
			Type     string          `json:"type"`
			StateKey string          `json:"state_key"`
			Sender   string          `json:"sender"`
			Content  json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, strippedEvent{Type: s.Type, StateKey: s.StateKey, Sender: s.Sender, Content: rawJSON(s.Content)})
		}
	}
	return append(out, strippedEvent{
		Type: ev.PDU.Type(), StateKey: *ev.PDU.StateKey(), Sender: string(ev.PDU.SenderID()), Content: ev.PDU.Content(),
	})
}
