package syncapi

import (
	"context"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// keysChanges serves GET /keys/changes: what /sync's device_lists would
// have said over the span between two sync tokens. changed: users whose
// device keys changed, and users who came to share a room with the caller
// (they joined a room of the caller's, or the caller joined theirs). left:
// users who no longer share any room with the caller, because the caller
// left rooms in that span or they left the caller's rooms.
func (a *api) keysChanges(w http.ResponseWriter, r *http.Request) error {
	ctx, user := r.Context(), mxhttp.DeviceFrom(r).UserID
	q := r.URL.Query()
	from, ok, err := queryToken(q, "from")
	if err != nil {
		return err
	}
	if !ok {
		return mxhttp.MissingParam("from is required")
	}
	to, ok, err := queryToken(q, "to")
	if err != nil {
		return err
	}
	if !ok {
		return mxhttp.MissingParam("to is required")
	}
	memberships, err := a.n.Memberships(ctx, user)
	if err != nil {
		return err
	}
	mc := memberChanges{joined: map[string]bool{}, left: map[string]bool{}}
	for _, m := range memberships {
		if m.Pos > to.Room {
			continue // the caller's membership is newer than the span
		}
		switch m.Membership {
		case spec.Join:
			// Member events that changed in the span, or every member when
			// the caller joined in it, as /sync notes them.
			ids, err := a.memberDelta(ctx, m.RoomID, user, from.Room, to.Room)
			if err != nil {
				return err
			}
			evs, err := a.n.Events(ctx, ids)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				mc.note(ev, user)
			}
		case spec.Leave, spec.Ban:
			if m.Pos <= from.Room {
				continue
			}
			s, err := a.n.RoomStateAt(ctx, m.RoomID, m.Pos)
			if err != nil {
				return err
			}
			s.Each(func(k core.StateKey, _ string) {
				if k.EventType == spec.MRoomMember && k.StateKey != user {
					mc.left[k.StateKey] = true
				}
			})
		}
	}
	dl, err := a.deviceListDelta(ctx, user, from.DeviceList, to.DeviceList, mc)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, dl)
	return nil
}

// memberDelta lists the IDs of a room's member events that changed between
// two positions, or of all its member events at to when the user was not
// joined at from.
func (a *api) memberDelta(ctx context.Context, roomID, user string, from, to uint64) ([]string, error) {
	fromState, err := a.n.RoomStateAt(ctx, roomID, from)
	if err != nil {
		return nil, err
	}
	toState, err := a.n.RoomStateAt(ctx, roomID, to)
	if err != nil {
		return nil, err
	}
	var ids []string
	self := false
	core.DiffState(fromState, toState, func(k core.StateKey, _, newID string) {
		if k.EventType == spec.MRoomMember && newID != "" {
			ids = append(ids, newID)
			self = self || k.StateKey == user
		}
	})
	if !self {
		return ids, nil
	}
	if was, err := a.membershipAt(ctx, roomID, user, from); err != nil || was == spec.Join {
		return ids, err
	}
	ids = ids[:0]
	toState.Each(func(k core.StateKey, id string) {
		if k.EventType == spec.MRoomMember {
			ids = append(ids, id)
		}
	})
	return ids, nil
}
