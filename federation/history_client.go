package federation

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The fetching side of /backfill, /event_auth, /state_ids, /state and
// /event: the rest of inbound.EventFetcher. An error response from the server
// is a *RemoteError in the returned error's chain.

// Backfill asks server for the events from (included) and before them, at
// most limit (capped at inbound.MaxBackfill).
func (c *Client) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > inbound.MaxBackfill {
		limit = inbound.MaxBackfill
	}
	res, err := c.fc.Backfill(c.ctx(ctx), c.origin(), spec.ServerName(server), roomID, limit, from)
	if err != nil {
		return nil, fmt.Errorf("federation: backfill %s on %s: %w", roomID, server, remoteError(err))
	}
	return res.PDUs, nil
}

// EventAuth asks server for the auth chain of an event.
func (c *Client) EventAuth(ctx context.Context, server, roomID, eventID string) ([]json.RawMessage, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	res, err := c.fc.GetEventAuth(c.ctx(ctx), c.origin(), spec.ServerName(server), "", roomID, eventID)
	if err != nil {
		return nil, fmt.Errorf("federation: event_auth %s on %s: %w", eventID, server, remoteError(err))
	}
	return eventJSONs(res.AuthEvents), nil
}

// StateIDs asks server for the state before an event and its auth chain,
// as event IDs.
func (c *Client) StateIDs(ctx context.Context, server, roomID, eventID string) (*inbound.RoomStateIDs, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	res, err := c.fc.LookupStateIDs(c.ctx(ctx), c.origin(), spec.ServerName(server), roomID, eventID)
	if err != nil {
		return nil, fmt.Errorf("federation: state_ids %s at %s on %s: %w", roomID, eventID, server, remoteError(err))
	}
	return &inbound.RoomStateIDs{StateIDs: res.StateEventIDs, AuthChainIDs: res.AuthEventIDs}, nil
}

// State asks server for the state before an event and its auth chain, as
// full events.
func (c *Client) State(ctx context.Context, server, roomID, eventID string) (*inbound.RoomState, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	res, err := c.fc.LookupState(c.ctx(ctx), c.origin(), spec.ServerName(server), roomID, eventID, "")
	if err != nil {
		return nil, fmt.Errorf("federation: state %s at %s on %s: %w", roomID, eventID, server, remoteError(err))
	}
	return &inbound.RoomState{State: eventJSONs(res.StateEvents), AuthChain: eventJSONs(res.AuthEvents)}, nil
}

// Event asks server for one event.
func (c *Client) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	if err := c.checkServer(server); err != nil {
		return nil, err
	}
	res, err := c.fc.GetEvent(c.ctx(ctx), c.origin(), spec.ServerName(server), eventID)
	if err != nil {
		return nil, fmt.Errorf("federation: event %s on %s: %w", eventID, server, remoteError(err))
	}
	if len(res.PDUs) != 1 {
		return nil, fmt.Errorf("federation: event %s on %s: %d PDUs in the answer, want 1", eventID, server, len(res.PDUs))
	}
	return res.PDUs[0], nil
}

// origin is the node's server name, as the library wants it.
func (c *Client) origin() spec.ServerName { return spec.ServerName(c.n.ServerName()) }

// eventJSONs converts the library's event list.
func eventJSONs(in gomatrixserverlib.EventJSONs) []json.RawMessage {
	out := make([]json.RawMessage, len(in))
	for i, e := range in {
		out[i] = json.RawMessage(e)
	}
	return out
}
