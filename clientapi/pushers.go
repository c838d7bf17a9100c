package clientapi

import (
	"net/http"
	"strconv"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/push"
)

// Pushers and the notifications list (node/push keeps both).

// maxPusherBody bounds POST /pushers/set: the pusher's data plus its
// strings.
const maxPusherBody = push.MaxPusherDataBytes + 4<<10

// Bounds of GET /notifications' limit.
const (
	defaultNotificationsLimit = 20
	maxNotificationsLimit     = 100
)

// getPushers answers GET /pushers.
func (a *api) getPushers(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.n.Pushers(r.Context(), mxhttp.DeviceFrom(r).UserID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"pushers": ps})
	return nil
}

// setPusher answers POST /pushers/set.
func (a *api) setPusher(w http.ResponseWriter, r *http.Request) error {
	var body push.PusherRequest
	if err := mxhttp.DecodeJSON(r, maxPusherBody, &body); err != nil {
		return err
	}
	dev := mxhttp.DeviceFrom(r)
	if err := a.n.SetPusher(r.Context(), dev.UserID, dev.DeviceID, body); err != nil {
		return err
	}
	return writeOK(w)
}

// notificationJSON is one entry of GET /notifications.
type notificationJSON struct {
	Actions any              `json:"actions"`
	Event   core.ClientEvent `json:"event"`
	Read    bool             `json:"read"`
	RoomID  string           `json:"room_id"`
	TS      int64            `json:"ts"`
}

// getNotifications answers GET /notifications.
func (a *api) getNotifications(w http.ResponseWriter, r *http.Request) error {
	dev := mxhttp.DeviceFrom(r)
	q := r.URL.Query()
	limit := defaultNotificationsLimit
	if s := q.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 1 {
			return mxhttp.InvalidParam("limit must be a positive integer")
		}
		limit = min(l, maxNotificationsLimit)
	}
	ns, next, err := a.n.Notifications(r.Context(), dev.UserID, q.Get("from"), limit, q.Get("only") == "highlight")
	if err != nil {
		return err
	}
	out := make([]notificationJSON, 0, len(ns))
	for _, x := range ns {
		ev, err := a.n.Event(r.Context(), dev.UserID, x.EventID)
		if err != nil {
			continue // no longer visible (or redacted away): left out
		}
		actions := any(x.Actions)
		if x.Actions == nil {
			actions = []any{}
		}
		out = append(out, notificationJSON{Actions: actions, Event: clientEvent(ev, dev), Read: x.Read,
			RoomID: x.RoomID, TS: x.TS.UnixMilli()})
	}
	res := map[string]any{"notifications": out}
	if next != "" {
		res["next_token"] = next
	}
	mxhttp.WriteJSON(w, http.StatusOK, res)
	return nil
}
