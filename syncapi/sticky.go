package syncapi

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/node"
	"github.com/edgenode/edgenode/node/core"
)

// stickyLimit is how many sticky events one response carries; the rest
// follow in the next responses, oldest first.
const stickyLimit = 100

// syncSticky fills each joined room's msc4354_sticky section (MSC4354): the
// unexpired sticky events the client has not had, whatever the timeline
// limit. It is a stream of its own, with its cursor in the token
// (StreamToken.StickyCursor): every event is delivered once per chain of
// since tokens, and when more than stickyLimit are due the cursor stops at
// the last one sent, so the next response (which a long-poll returns at
// once, having news) carries on from there.
//
// An event in the room's timeline in this response (after the timeline
// filter) is not repeated. The room filter's event filters do not apply (the
// section is neither timeline nor state), but its rooms list does: a room
// the client filtered out is not in the response at all. Ignored users'
// events are left out. History visibility is not applied: the node hands
// joined users every unexpired sticky event of the room, those from before
// their join included.
func (a *api) syncSticky(ctx context.Context, req *syncRequest, to *StreamToken, res *syncResponse) error {
	var after uint64 // an initial sync starts from the beginning
	if req.hasSince {
		after = req.since.StickyCursor()
	}
	inTimeline := map[string]bool{}
	for _, jr := range res.Rooms.Join {
		for _, id := range jr.timeline.ids {
			inTimeline[id] = true
		}
	}
	keep := func(_ string, ev *core.Event) bool {
		return !req.ignored[string(ev.PDU.SenderID())] && !inTimeline[ev.PDU.EventID()]
	}
	if err := a.timelineStickyTTLs(ctx, res); err != nil {
		return err
	}
	evs, next, err := a.n.StickyEvents(ctx, node.StickyQuery{
		UserID: req.dev.UserID, Rooms: req.joinedRooms, After: after, Upto: to.Room, Limit: stickyLimit, Keep: keep,
	})
	if err != nil {
		return err
	}
	*to = to.WithStickyCursor(next)
	if len(evs) == 0 {
		return nil
	}
	r := newRenderer(req.filter, req.dev, true)
	for _, ev := range evs {
		jr := res.Rooms.Join[ev.RoomID]
		if jr == nil {
			// A room with nothing else new: an empty timeline, so the
			// client keeps what it has.
			jr = &joinedRoom{
				roomSection: roomSection{Timeline: timeline{Events: []any{}}},
				Ephemeral:   eventList{Events: []any{}},
				AccountData: eventList{Events: []any{}},
			}
			res.Rooms.Join[ev.RoomID] = jr
		}
		if jr.Sticky == nil {
			jr.Sticky = &eventList{}
		}
		jr.Sticky.Events = append(jr.Sticky.Events, r.stickyEvent(ev, ev.TTLMS))
	}
	return nil
}

// stickyEvent renders a sticky event with the time it has left
// (unsigned.msc4354_sticky_duration_ttl_ms), which spares clients their
// clock skew.
func (r renderer) stickyEvent(ev node.StickyEvent, ttlMS int64) any {
	if r.filter.EventFormat == "federation" {
		return json.RawMessage(ev.PDU.JSON())
	}
	ce := ev.ClientEvent(r.format)
	ce.Unsigned["msc4354_sticky_duration_ttl_ms"] = ttlMS
	if len(r.filter.EventFields) == 0 {
		return ce
	}
	raw, err := json.Marshal(ce)
	if err != nil {
		return ce
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ce
	}
	return ProjectFields(m, r.filter.EventFields)
}

// timelineStickyTTLs gives the sticky events of the response's timelines
// their unsigned.msc4354_sticky_duration_ttl_ms too, as the proposal asks of
// sticky events sent down /sync. Only client-format events are touched
// (their unsigned map is shared with the rendered form); rooms without a
// sticky event in their timeline cost nothing.
func (a *api) timelineStickyTTLs(ctx context.Context, res *syncResponse) error {
	for roomID, jr := range res.Rooms.Join {
		var positions []uint64
		for _, st := range jr.timeline.sticky {
			positions = append(positions, st.pos)
		}
		if len(positions) == 0 || len(jr.Timeline.Events) != len(jr.timeline.ids) {
			continue
		}
		ttls, err := a.n.StickyTTLs(ctx, roomID, positions)
		if err != nil {
			return err
		}
		for _, st := range jr.timeline.sticky {
			ttl, ok := ttls[st.pos]
			if !ok {
				continue
			}
			if ce, ok := jr.Timeline.Events[st.i].(core.ClientEvent); ok && ce.Unsigned != nil {
				ce.Unsigned["msc4354_sticky_duration_ttl_ms"] = ttl
			}
		}
	}
	return nil
}
