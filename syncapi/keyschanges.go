package syncapi

import (
	"net/http"
	"sort"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// keysChanges serves GET /keys/changes: users whose device keys changed
// between two sync tokens, and users the caller stopped sharing every room
// with because the caller left rooms in that span.
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
	changed, err := a.n.DeviceListChangesSince(ctx, user, from.DeviceList, to.DeviceList)
	if err != nil {
		return err
	}
	memberships, err := a.n.Memberships(ctx, user)
	if err != nil {
		return err
	}
	candidates := map[string]bool{}
	for _, m := range memberships {
		if m.Pos <= from.Room || m.Pos > to.Room || (m.Membership != spec.Leave && m.Membership != spec.Ban) {
			continue
		}
		s, err := a.n.RoomStateAt(ctx, m.RoomID, m.Pos)
		if err != nil {
			return err
		}
		s.Each(func(k node.StateKey, _ string) {
			if k.EventType == spec.MRoomMember && k.StateKey != user {
				candidates[k.StateKey] = true
			}
		})
	}
	left := []string{}
	for u := range candidates {
		shares, err := a.n.SharesRoom(ctx, user, u)
		if err != nil {
			return err
		}
		if !shares {
			left = append(left, u)
		}
	}
	sort.Strings(left)
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"changed": changed, "left": left})
	return nil
}
