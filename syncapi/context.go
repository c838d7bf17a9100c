package syncapi

import (
	"context"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// contextResponse is the body of GET /rooms/{roomId}/context/{eventId}.
type contextResponse struct {
	Start        string             `json:"start"`
	End          string             `json:"end"`
	EventsBefore []core.ClientEvent `json:"events_before"`
	Event        core.ClientEvent   `json:"event"`
	EventsAfter  []core.ClientEvent `json:"events_after"`
	State        []core.ClientEvent `json:"state"`
}

// eventContext serves GET /rooms/{roomId}/context/{eventId}: an event with the
// events around it, tokens to paginate on either side, and the room state at
// the last event returned.
func (a *api) eventContext(w http.ResponseWriter, r *http.Request) error {
	ctx, dev := r.Context(), mxhttp.DeviceFrom(r)
	roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	q := r.URL.Query()
	limit, filter, err := queryLimitAndFilter(q)
	if err != nil {
		return err
	}
	if err := a.checkRoomReadable(ctx, dev.UserID, roomID); err != nil {
		return err
	}
	// core.Event answers ErrNotFound (404) for events the user may not see.
	ev, err := a.n.Event(ctx, dev.UserID, eventID)
	if err != nil {
		return err
	}
	if ev.PDU.RoomID().String() != roomID {
		return mxhttp.NotFound("event %s is not in room %s", eventID, roomID)
	}

	ignored, err := a.ignoredUsers(ctx, dev.UserID)
	if err != nil {
		return err
	}
	keep := withoutIgnored(ignored, a.keepFor(ctx, filter))

	// Pin "now" first, so that end is exact when everything after the
	// event up to now has been read.
	now := a.n.StreamPosition()
	// Split the limit as Synapse does: the smaller half before.
	nBefore := limit / 2
	before, err := a.paginate(ctx, dev.UserID, roomID, span{from: ev.Pos - 1, backwards: true, history: true}, nBefore, keep)
	if err != nil {
		return err
	}
	after, err := a.paginate(ctx, dev.UserID, roomID, span{from: ev.Pos, to: now, hasTo: true, history: true}, limit-nBefore, keep)
	if err != nil {
		return err
	}

	start := ev.Pos - 1
	if n := len(before.events); n > 0 {
		start = before.events[n-1].Pos - 1
	}
	if before.more {
		start = before.end
	}
	end := max(now, ev.Pos)
	if after.more {
		end = after.end
	}

	last := ev
	if n := len(after.events); n > 0 {
		last = after.events[n-1]
	}
	returned := append(append(append([]*core.Event{}, before.events...), ev), after.events...)
	state, err := a.contextState(ctx, last, filter, returned)
	if err != nil {
		return err
	}

	bundles, err := a.bundles(ctx, dev.UserID, returned)
	if err != nil {
		return err
	}
	format := core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID, Bundles: bundles}
	mxhttp.WriteJSON(w, http.StatusOK, contextResponse{
		Start:        StreamToken{Room: start}.String(),
		End:          StreamToken{Room: end}.String(),
		EventsBefore: clientEvents(before.events, format),
		Event:        ev.ClientEvent(format),
		EventsAfter:  clientEvents(after.events, format),
		State:        clientEvents(state, format),
	})
	return nil
}

// contextState is the room state after last, the last event /context
// returns (as the spec and Synapse have it). With lazy_load_members it is
// only the member events of the senders of the returned events. The filter
// applies to the state too, as the spec says.
func (a *api) contextState(ctx context.Context, last *core.Event, f *RoomEventFilter, returned []*core.Event) ([]*core.Event, error) {
	var keys []core.StateKey // nil: all of the state
	if f != nil && f.LazyLoadMembers {
		keys = []core.StateKey{}
		seen := map[string]bool{}
		for _, ev := range returned {
			if s := string(ev.PDU.SenderID()); !seen[s] {
				seen[s] = true
				keys = append(keys, core.StateKey{EventType: spec.MRoomMember, StateKey: s})
			}
		}
	}
	state, err := a.n.StateAfterEvent(ctx, last.PDU.EventID(), keys)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return state, nil
	}
	out := state[:0]
	for _, ev := range state {
		if f.MatchEvent(ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}
