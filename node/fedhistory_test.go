package node

import (
	"context"
	"encoding/json"
)

// The rest of EventFetcher for directFetcher: each asks the resident node
// as the fetching node's server would.

func (d directFetcher) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	*d.calls++
	return d.resident.Backfill(ctx, d.fetching.ServerName(), roomID, from, limit)
}

func (d directFetcher) EventAuth(ctx context.Context, server, roomID, eventID string) ([]json.RawMessage, error) {
	*d.calls++
	return d.resident.FederationEventAuth(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) StateIDs(ctx context.Context, server, roomID, eventID string) (*RoomStateIDs, error) {
	*d.calls++
	return d.resident.FederationStateIDs(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) State(ctx context.Context, server, roomID, eventID string) (*RoomState, error) {
	*d.calls++
	return d.resident.FederationState(ctx, d.fetching.ServerName(), roomID, eventID)
}

func (d directFetcher) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	*d.calls++
	return d.resident.FederationEvent(ctx, d.fetching.ServerName(), eventID)
}
