package syncapi

import (
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
)

// messagesResponse is the body of GET /rooms/{roomId}/messages.
type messagesResponse struct {
	Chunk []core.ClientEvent `json:"chunk"`
	Start string             `json:"start"`
	// End is omitted when there is nothing more in that direction.
	End   string             `json:"end,omitempty"`
	State []core.ClientEvent `json:"state,omitempty"`
}

// messages serves GET /rooms/{roomId}/messages: a page of the room's
// timeline from a token, backwards or forwards.
func (a *api) messages(w http.ResponseWriter, r *http.Request) error {
	ctx, dev, roomID := r.Context(), mxhttp.DeviceFrom(r), r.PathValue("roomId")
	q := r.URL.Query()
	var backwards bool
	switch q.Get("dir") {
	case "b":
		backwards = true
	case "f":
	case "":
		return mxhttp.MissingParam("dir is required (b or f)")
	default:
		return mxhttp.InvalidParam("dir must be b or f")
	}
	from, hasFrom, err := queryToken(q, "from")
	if err != nil {
		return err
	}
	to, hasTo, err := queryToken(q, "to")
	if err != nil {
		return err
	}
	limit, filter, err := queryLimitAndFilter(q)
	if err != nil {
		return err
	}
	if err := a.checkRoomReadable(ctx, dev.UserID, roomID); err != nil {
		return err
	}
	ignored, err := a.ignoredUsers(ctx, dev.UserID)
	if err != nil {
		return err
	}

	start := q.Get("from") // the spec: start is the from value given
	if !hasFrom {
		// No from: the newest event backwards, the first one forwards.
		// Backwards, pin "newest" to the position now, so start is a token
		// that later forward pagination continues from.
		if backwards {
			from = from.WithRoom(a.n.StreamPosition())
		}
		start = from.String()
	}
	sp := span{from: from.Room, to: to.Room, hasTo: hasTo, backwards: backwards, history: true}
	win, err := a.paginate(ctx, dev.UserID, roomID, sp, limit, withoutIgnored(ignored, a.keepFor(ctx, filter)))
	if err != nil {
		return err
	}

	bundles, err := a.bundles(ctx, dev.UserID, win.events)
	if err != nil {
		return err
	}
	format := core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID, Bundles: bundles}
	res := messagesResponse{Start: start, Chunk: clientEvents(win.events, format)}
	if win.more {
		res.End = from.WithRoom(win.end).String()
	}
	if filter != nil && filter.LazyLoadMembers {
		members, err := a.chunkMembers(ctx, win.events)
		if err != nil {
			return err
		}
		res.State = clientEvents(members, format)
	}
	mxhttp.WriteJSON(w, http.StatusOK, res)
	return nil
}

// keep returns the filter as a predicate for paginate (nil keeps all).
func (f *RoomEventFilter) keep() func(*core.Event) bool {
	if f == nil {
		return nil
	}
	return f.MatchEvent
}

// clientEvents renders events for a client; never nil, so JSON gets [].
func clientEvents(evs []*core.Event, f core.ClientFormat) []core.ClientEvent {
	out := make([]core.ClientEvent, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.ClientEvent(f))
	}
	return out
}
