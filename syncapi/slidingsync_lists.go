package syncapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ssRoom is a room of the user's server-side room list.
type ssRoom struct {
	m    core.RoomMembership
	bump uint64
}

// roomList is the user's rooms a sliding sync list may show, most recently
// active first: joined, invited and knocked rooms, rooms the user was kicked
// or banned from, and rooms they left that this connection has had. It is
// read in order from the node's per-user index: no room's timeline, state
// or membership record is read, so ordering 2,000 rooms costs little more
// than 100. Each room's membership has only Membership set; fillMembership
// reads the rest for the rooms a response renders.
func (a *api) roomList(ctx context.Context, user string, prev *connState) ([]ssRoom, error) {
	bumps, err := a.n.RoomsByBump(ctx, user)
	if err != nil {
		return nil, err
	}
	rooms := make([]ssRoom, 0, len(bumps))
	for _, b := range bumps {
		switch b.Membership {
		case spec.Join, spec.Invite, spec.Knock, spec.Ban:
		case spec.Leave:
			// A leave of the user's own is left out unless the connection
			// had the room; a kick is not.
			if _, had := prev.rooms[b.RoomID]; !had && !b.Kicked {
				continue
			}
		default:
			continue
		}
		m := core.RoomMembership{RoomID: b.RoomID}
		m.Membership = b.Membership
		rooms = append(rooms, ssRoom{m: m, bump: b.Bump})
	}
	return rooms, nil
}

// fillMembership reads the user's whole membership record of a room the
// response renders (its event and position).
func (a *api) fillMembership(ctx context.Context, user string, r *ssRoom) error {
	mi, err := a.n.Membership(ctx, r.m.RoomID, user)
	if err != nil {
		return err
	}
	r.m.MembershipInfo = mi
	return nil
}

// roomFacts caches, for one request, what filters and responses need to
// know of rooms beyond the membership: read only when a filter asks.
type roomFacts struct {
	a    *api
	user string
	dms  map[string]bool
	// encrypted and types are per room; spaceChildren per space.
	encrypted     map[string]bool
	types         map[string]*string
	spaceChildren map[string]map[string]bool
}

func newRoomFacts(ctx context.Context, a *api, user string) (*roomFacts, error) {
	f := &roomFacts{a: a, user: user, dms: map[string]bool{}, encrypted: map[string]bool{},
		types: map[string]*string{}, spaceChildren: map[string]map[string]bool{}}
	raw, err := a.n.AccountData(ctx, user, "", "m.direct")
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return nil, err
	}
	var direct map[string][]string
	if len(raw) > 0 && json.Unmarshal(raw, &direct) == nil {
		for _, rooms := range direct {
			for _, r := range rooms {
				f.dms[r] = true
			}
		}
	}
	return f, nil
}

func (f *roomFacts) isEncrypted(ctx context.Context, roomID string) (bool, error) {
	if v, ok := f.encrypted[roomID]; ok {
		return v, nil
	}
	_, err := f.a.n.CurrentStateEvent(ctx, roomID, "m.room.encryption", "")
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return false, err
	}
	f.encrypted[roomID] = err == nil
	return err == nil, nil
}

func (f *roomFacts) roomType(ctx context.Context, roomID string) (*string, error) {
	if v, ok := f.types[roomID]; ok {
		return v, nil
	}
	ev, err := f.a.n.CurrentStateEvent(ctx, roomID, spec.MRoomCreate, "")
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return nil, err
	}
	var t *string
	if ev != nil {
		var c struct {
			Type *string `json:"type"`
		}
		if json.Unmarshal(ev.PDU.Content(), &c) == nil {
			t = c.Type
		}
	}
	f.types[roomID] = t
	return t, nil
}

// inSpaces says whether the room is an m.space.child of any of the spaces
// the user is joined to (subspaces are not followed, as the MSC says).
func (f *roomFacts) inSpaces(ctx context.Context, roomID string, spaces []string, joined map[string]bool) (bool, error) {
	for _, sp := range spaces {
		if !joined[sp] {
			continue
		}
		children, ok := f.spaceChildren[sp]
		if !ok {
			children = map[string]bool{}
			evs, err := f.a.n.CurrentState(ctx, sp)
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				return false, err
			}
			for _, ev := range evs {
				if ev.PDU.Type() == "m.space.child" && ev.PDU.StateKey() != nil && len(ev.PDU.Content()) > 2 {
					children[*ev.PDU.StateKey()] = true
				}
			}
			f.spaceChildren[sp] = children
		}
		if children[roomID] {
			return true, nil
		}
	}
	return false, nil
}

func (f *roomFacts) tags(ctx context.Context, roomID string) (map[string]json.RawMessage, error) {
	raw, err := f.a.n.Tags(ctx, f.user, roomID)
	if err != nil {
		return nil, err
	}
	var c struct {
		Tags map[string]json.RawMessage `json:"tags"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Tags, nil
}

// filterRooms keeps the rooms a list's filters let through, in order.
func (f *roomFacts) filterRooms(ctx context.Context, rooms []ssRoom, flt *ssFilters, joined map[string]bool) ([]ssRoom, error) {
	if flt == nil {
		return rooms, nil
	}
	out := make([]ssRoom, 0, len(rooms))
	for _, r := range rooms {
		ok, err := f.match(ctx, r, flt, joined)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *roomFacts) match(ctx context.Context, r ssRoom, flt *ssFilters, joined map[string]bool) (bool, error) {
	id := r.m.RoomID
	if flt.IsDM != nil && f.dms[id] != *flt.IsDM {
		return false, nil
	}
	if inv := flt.invited(); inv != nil && (r.m.Membership == spec.Invite) != *inv {
		return false, nil
	}
	if flt.IsEncrypted != nil {
		enc, err := f.isEncrypted(ctx, id)
		if err != nil || enc != *flt.IsEncrypted {
			return false, err
		}
	}
	if flt.RoomTypes != nil || len(flt.NotRoomTypes) > 0 {
		t, err := f.roomType(ctx, id)
		if err != nil {
			return false, err
		}
		same := func(x *string) bool { return (x == nil && t == nil) || (x != nil && t != nil && *x == *t) }
		if slices.ContainsFunc(flt.NotRoomTypes, same) {
			return false, nil
		}
		if flt.RoomTypes != nil && !slices.ContainsFunc(flt.RoomTypes, same) {
			return false, nil
		}
	}
	if len(flt.Spaces) > 0 {
		in, err := f.inSpaces(ctx, id, flt.Spaces, joined)
		if err != nil || !in {
			return false, err
		}
	}
	if len(flt.Tags) > 0 || len(flt.NotTags) > 0 {
		tags, err := f.tags(ctx, id)
		if err != nil {
			return false, err
		}
		for _, t := range flt.NotTags {
			if _, ok := tags[t]; ok {
				return false, nil
			}
		}
		if len(flt.Tags) > 0 && !slices.ContainsFunc(flt.Tags, func(t string) bool { _, ok := tags[t]; return ok }) {
			return false, nil
		}
	}
	return true, nil
}

// listWindow picks the rooms a list's ranges cover (all when it has none).
func listWindow(rooms []ssRoom, ranges [][2]int) []ssRoom {
	if len(ranges) == 0 {
		return rooms
	}
	seen := map[int]bool{}
	var out []ssRoom
	for _, rg := range ranges {
		for i := rg[0]; i <= rg[1] && i < len(rooms); i++ {
			if !seen[i] {
				seen[i] = true
				out = append(out, rooms[i])
			}
		}
	}
	return out
}
