package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// getMissingEvents is POST /_matrix/federation/v1/get_missing_events/{roomId}:
// events before latest_events back to earliest_events for a server in the
// room (node.MissingEvents: at most 50, oldest first, only those the
// requesting server may see).
func (h *handler) getMissingEvents(w http.ResponseWriter, r *http.Request) error {
	fr := fedRequest(r)
	if len(fr.content) == 0 {
		return mxhttp.NotJSON("missing body")
	}
	var body fclient.MissingEvents
	if err := json.Unmarshal(fr.content, &body); err != nil {
		return mxhttp.BadJSON("get_missing_events: %v", err)
	}
	if len(body.LatestEvents) == 0 {
		return mxhttp.BadJSON("get_missing_events: latest_events is required")
	}
	if len(body.EarliestEvents) > 1000 || len(body.LatestEvents) > 1000 {
		return mxhttp.BadJSON("get_missing_events: too many event IDs")
	}
	limit := body.Limit
	if limit <= 0 {
		limit = 10 // the spec's default
	}
	events, err := h.n.MissingEvents(r.Context(), string(fr.origin), r.PathValue("roomId"), inbound.MissingEventsRequest{
		EarliestEvents: body.EarliestEvents, LatestEvents: body.LatestEvents,
		Limit: limit, MinDepth: int64(body.MinDepth),
	})
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, fclient.RespMissingEvents{Events: rawJSONs(events)})
	return nil
}

var _ inbound.EventFetcher = (*Client)(nil)

// GetMissingEvents asks server for the events before req.LatestEvents back
// to req.EarliestEvents (get_missing_events). It implements
// inbound.EventFetcher. An error response from the server is a *RemoteError in
// the returned error's chain.
func (c *Client) GetMissingEvents(ctx context.Context, server, roomID string, req inbound.MissingEventsRequest) ([]json.RawMessage, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	res, err := c.fc.LookupMissingEvents(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), roomID, fclient.MissingEvents{
		Limit: req.Limit, MinDepth: int(req.MinDepth), EarliestEvents: req.EarliestEvents, LatestEvents: req.LatestEvents,
	}, "")
	if err != nil {
		return nil, fmt.Errorf("federation: get_missing_events %s on %s: %w", roomID, server, remoteError(err))
	}
	out := make([]json.RawMessage, len(res.Events))
	for i, e := range res.Events {
		out[i] = json.RawMessage(e)
	}
	return out, nil
}
