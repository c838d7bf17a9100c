package syncapi

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// checkRoomReadable lets a user read a room's history if they have any
// membership in it (joined, invited, left or banned, and not forgotten) or
// the room is world_readable. Which events they then see is decided per
// event by node.RoomEvents. Everyone else, including for rooms the node does
// not know, gets 403 M_FORBIDDEN as Synapse answers, so the answer does not
// reveal whether a room exists.
func (a *api) checkRoomReadable(ctx context.Context, userID, roomID string) error {
	mi, err := a.n.Membership(ctx, roomID, userID)
	if errors.Is(err, core.ErrNotFound) {
		return mxhttp.Forbidden("you are not a member of %s", roomID)
	}
	if err != nil {
		return err
	}
	if mi.Membership != "" && !mi.Forgotten {
		return nil
	}
	ev, err := a.n.CurrentStateEvent(ctx, roomID, spec.MRoomHistoryVisibility, "")
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return err
	}
	if ev != nil {
		var c struct {
			HV string `json:"history_visibility"`
		}
		if json.Unmarshal(ev.PDU.Content(), &c) == nil && c.HV == "world_readable" {
			return nil
		}
	}
	return mxhttp.Forbidden("you are not a member of %s", roomID)
}
