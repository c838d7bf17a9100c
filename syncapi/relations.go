package syncapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/relations"
)

// relationsReader is what the relation endpoints and bundled aggregations
// need of the node (node/relations): reads only.
type relationsReader interface {
	RelationsPage(ctx context.Context, q relations.RelationsQuery) (relations.RelationsPage, error)
	ThreadsPage(ctx context.Context, q relations.ThreadsQuery) (relations.ThreadsPage, error)
	Bundle(ctx context.Context, userID string, evs []*core.Event) (core.Bundles, error)
	RelatedBy(ctx context.Context, roomID, eventID string, relTypes, senders []string) (bool, error)
}

// relationsResponse is the body of GET /rooms/{roomId}/relations/{eventId}.
type relationsResponse struct {
	Chunk     []core.ClientEvent `json:"chunk"`
	NextBatch string             `json:"next_batch,omitempty"`
	PrevBatch string             `json:"prev_batch,omitempty"`
	// RecursionDepth is there exactly when the client gave recurse.
	RecursionDepth *int `json:"recursion_depth,omitempty"`
}

// defaultRelationsLimit is a page's size when the client gives no limit.
const defaultRelationsLimit = 20

// relations serves GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]:
// the events that relate to a parent the user may see (404 M_NOT_FOUND
// otherwise, whether it exists or not), newest first unless dir=f.
func (a *api) relations(w http.ResponseWriter, r *http.Request) error {
	ctx, dev := r.Context(), mxhttp.DeviceFrom(r)
	q := r.URL.Query()
	rq := relations.RelationsQuery{
		UserID: dev.UserID, RoomID: r.PathValue("roomId"), EventID: r.PathValue("eventId"),
		RelType: r.PathValue("relType"), EventType: r.PathValue("eventType"),
	}
	switch q.Get("dir") {
	case "", "b":
	case "f":
		rq.Forward = true
	default:
		return mxhttp.InvalidParam("dir must be b or f")
	}
	var err error
	if rq.Limit, err = positiveLimit(q, defaultRelationsLimit, relations.MaxLimit, false); err != nil {
		return err
	}
	from, hasFrom, err := queryToken(q, "from")
	if err != nil {
		return err
	}
	to, hasTo, err := queryToken(q, "to")
	if err != nil {
		return err
	}
	rq.From, rq.HasFrom, rq.To, rq.HasTo = from.Room, hasFrom, to.Room, hasTo
	var depth *int
	switch q.Get("recurse") {
	case "":
	case "true":
		rq.Recurse, depth = true, ptr(relations.RecurseDepth)
	case "false":
		depth = ptr(1)
	default:
		return mxhttp.InvalidParam("recurse must be true or false")
	}
	page, err := a.n.RelationsPage(ctx, rq)
	if err != nil {
		return err
	}
	bundles, err := a.n.Bundle(ctx, dev.UserID, page.Events)
	if err != nil {
		return err
	}
	format := core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID, Bundles: bundles}
	res := relationsResponse{Chunk: clientEvents(page.Events, format), PrevBatch: q.Get("from"), RecursionDepth: depth}
	if page.HasNext {
		res.NextBatch = StreamToken{Room: page.Next}.String()
	}
	mxhttp.WriteJSON(w, http.StatusOK, res)
	return nil
}

// threadsResponse is the body of GET /rooms/{roomId}/threads.
type threadsResponse struct {
	Chunk     []core.ClientEvent `json:"chunk"`
	NextBatch string             `json:"next_batch,omitempty"`
}

// threads serves GET /rooms/{roomId}/threads: the room's thread roots the
// user may see, the most recently active first, each with its m.thread
// aggregation. A user who may not read the room gets 403 M_FORBIDDEN.
func (a *api) threads(w http.ResponseWriter, r *http.Request) error {
	ctx, dev, roomID := r.Context(), mxhttp.DeviceFrom(r), r.PathValue("roomId")
	q := r.URL.Query()
	tq := relations.ThreadsQuery{UserID: dev.UserID, RoomID: roomID}
	switch q.Get("include") {
	case "", "all":
	case "participated":
		tq.Participated = true
	default:
		return mxhttp.InvalidParam("include must be all or participated")
	}
	var err error
	if tq.Limit, err = positiveLimit(q, defaultRelationsLimit, relations.MaxLimit, true); err != nil {
		return err
	}
	from, hasFrom, err := queryToken(q, "from")
	if err != nil {
		return err
	}
	tq.From, tq.HasFrom = from.Room, hasFrom
	if err := a.checkRoomReadable(ctx, dev.UserID, roomID); err != nil {
		return err
	}
	page, err := a.n.ThreadsPage(ctx, tq)
	if err != nil {
		return err
	}
	bundles, err := a.n.Bundle(ctx, dev.UserID, page.Roots)
	if err != nil {
		return err
	}
	format := core.ClientFormat{ForUser: dev.UserID, ForDevice: dev.DeviceID, Bundles: bundles}
	res := threadsResponse{Chunk: clientEvents(page.Roots, format)}
	if page.HasNext {
		res.NextBatch = StreamToken{Room: page.Next}.String()
	}
	mxhttp.WriteJSON(w, http.StatusOK, res)
	return nil
}

// positiveLimit reads limit: def when absent, at most max; 0 is refused
// when mustBePositive (as /threads' spec says), else read as def.
func positiveLimit(q url.Values, def, max int, mustBePositive bool) (int, error) {
	l, err := queryLimit(q, def)
	if err != nil {
		return 0, err
	}
	if l == 0 && q.Get("limit") != "" {
		if mustBePositive {
			return 0, mxhttp.InvalidParam("limit must be greater than zero")
		}
		l = def
	}
	return min(l, max), nil
}

func ptr[T any](v T) *T { return &v }

// bundles works out the bundled aggregations of the events a response
// serves to userID (nil on none). Failing to work them out fails the
// request: serving an edited message unedited would be silently wrong.
func (a *api) bundles(ctx context.Context, userID string, evs []*core.Event) (core.Bundles, error) {
	return a.n.Bundle(ctx, userID, evs)
}
