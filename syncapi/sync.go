package syncapi

import (
	"context"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
)

// syncResponse is the body of GET /sync. Sections with nothing in them are
// omitted, as Synapse does; rooms.join, invite and leave are always present
// so clients can rely on them.
type syncResponse struct {
	NextBatch string        `json:"next_batch"`
	Rooms     roomsResponse `json:"rooms"`
}

type roomsResponse struct {
	Join   map[string]*joinedRoom  `json:"join"`
	Invite map[string]*invitedRoom `json:"invite"`
	Leave  map[string]*leftRoom    `json:"leave"`
}

func (r *syncResponse) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Leave) == 0
}

// sync serves GET /sync. With a since token and nothing new it long-polls:
// it listens for changes concerning the user before looking, so nothing
// committed in between is missed, and it wakes only for this user's changes.
func (a *api) sync(w http.ResponseWriter, r *http.Request) error {
	req, err := a.parseSyncRequest(r.Context(), r)
	if err != nil {
		return err
	}
	l := a.n.Listen(req.dev.UserID)
	defer l.Close()
	ctx, cancel := context.WithTimeout(r.Context(), req.timeout)
	defer cancel()
	for {
		res, err := a.buildSync(r.Context(), req)
		if err != nil {
			return err
		}
		if !res.empty() || !req.hasSince || req.fullState || !l.Wait(ctx) {
			if err := r.Context().Err(); err != nil {
				return err // the client went away
			}
			mxhttp.WriteJSON(w, http.StatusOK, res)
			return nil
		}
	}
}

// buildSync computes the response for everything up to the node's current
// positions.
func (a *api) buildSync(ctx context.Context, req *syncRequest) (*syncResponse, error) {
	to := StreamToken{Room: a.n.StreamPosition()}
	res := &syncResponse{
		NextBatch: to.String(),
		Rooms: roomsResponse{
			Join: map[string]*joinedRoom{}, Invite: map[string]*invitedRoom{}, Leave: map[string]*leftRoom{},
		},
	}
	if err := a.syncRooms(ctx, req, to, res); err != nil {
		return nil, err
	}
	return res, nil
}
