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
	NextBatch   string        `json:"next_batch"`
	Rooms       roomsResponse `json:"rooms"`
	AccountData *eventList    `json:"account_data,omitempty"`
	Presence    *eventList    `json:"presence,omitempty"`
	ToDevice    *toDeviceList `json:"to_device,omitempty"`
	DeviceLists *deviceLists  `json:"device_lists,omitempty"`
	// Key counts are always sent: clients top up their keys from them.
	OTKCounts                map[string]int `json:"device_one_time_keys_count"`
	FallbackKeyTypes         []string       `json:"device_unused_fallback_key_types"`
	FallbackKeyTypesUnstable []string       `json:"org.matrix.msc2732.device_unused_fallback_key_types"`
}

type roomsResponse struct {
	Join   map[string]*joinedRoom  `json:"join"`
	Invite map[string]*invitedRoom `json:"invite"`
	Leave  map[string]*leftRoom    `json:"leave"`
}

// empty reports whether the response has no news (key counts are not news),
// so a long-poll should keep waiting.
func (r *syncResponse) empty() bool {
	return len(r.Rooms.Join) == 0 && len(r.Rooms.Invite) == 0 && len(r.Rooms.Leave) == 0 &&
		r.AccountData == nil && r.Presence == nil && r.ToDevice == nil && r.DeviceLists == nil
}

// sync serves GET /sync. With a since token and nothing new it long-polls:
// it listens for changes concerning the user before looking, so nothing
// committed in between is missed, and it wakes only for this user's changes.
func (a *api) sync(w http.ResponseWriter, r *http.Request) error {
	req, err := a.parseSyncRequest(r.Context(), r)
	if err != nil {
		return err
	}
	// Syncing marks the user present unless the client says otherwise, and
	// keeps them so while the request is open: the node takes a user offline
	// only once no sync of theirs has been in flight for a while. It writes
	// only real changes, so this is cheap every time.
	end, err := a.n.BeginSync(r.Context(), req.dev.UserID, req.setPresence)
	if err != nil {
		return err
	}
	defer end()
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
			end() // the offline timeout counts from the answer, which the client may have before a deferred end ran
			mxhttp.WriteJSON(w, http.StatusOK, res)
			return nil
		}
	}
}

// buildSync computes the response for everything up to the node's current
// positions.
func (a *api) buildSync(ctx context.Context, req *syncRequest) (*syncResponse, error) {
	to := a.currentToken()
	res := &syncResponse{
		Rooms: roomsResponse{
			Join: map[string]*joinedRoom{}, Invite: map[string]*invitedRoom{}, Leave: map[string]*leftRoom{},
		},
	}
	var err error
	if req.ignored, err = a.ignoredUsers(ctx, req.dev.UserID); err != nil {
		return nil, err
	}
	req.joinedRooms = nil
	req.members = memberChanges{joined: map[string]bool{}, left: map[string]bool{}}
	if err := a.syncRooms(ctx, req, to, res); err != nil {
		return nil, err
	}
	if err := a.syncSticky(ctx, req, &to, res); err != nil {
		return nil, err
	}
	if err := a.syncUserData(ctx, req, &to, res); err != nil {
		return nil, err
	}
	if err := a.syncUnread(ctx, req, res); err != nil {
		return nil, err
	}
	res.NextBatch = to.String()
	return res, nil
}
