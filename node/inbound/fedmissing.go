package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Filling gaps in a room's DAG over federation: the resident side of
// get_missing_events (MissingEvents) and the fetching side
// (fetchMissingPrevs, through an EventFetcher the app provides).

// MaxMissingEvents caps the limit of one get_missing_events request, both
// served and asked for.
const MaxMissingEvents = 50

// MissingEventsRequest is the body of get_missing_events.
type MissingEventsRequest struct {
	EarliestEvents []string
	LatestEvents   []string
	Limit          int
	MinDepth       int64
}

// MissingEvents answers another server's get_missing_events: the events
// before req.LatestEvents (walking prev_events back, not including the
// latest events themselves), stopping at req.EarliestEvents, at most
// req.Limit (capped at MaxMissingEvents) and no shallower than MinDepth,
// oldest first, as full event JSON (the redacted form if redacted).
//
// origin must be in the room now (JoinedServers), else ErrForbidden; an
// unknown room is ErrNotFound. Rejected events are never served. History
// visibility for a server is kept simple: an event is served when the room's
// m.room.history_visibility before it was "shared" or "world_readable", or
// when origin had a joined member in the state before the event (or the
// event is that server's own member event); anything else is served in its
// redacted form, as Synapse does: the requester can connect its DAG (the
// prev events of an old sticky event sent to a new joiner, sticky_fed.go)
// without learning the content. At most 10*limit events are looked at.
func (n *Inbound) MissingEvents(ctx context.Context, origin, roomID string, req MissingEventsRequest) ([]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxMissingEvents {
		limit = MaxMissingEvents
	}
	var out []walkedEvent
	err := n.DB.View(func(tx *kv.Txn) error {
		if _, err := core.LoadRoom(tx, roomID); err != nil {
			return err
		}
		joined, err := tx.Has(core.RoomServerKey(roomID, origin))
		if err != nil {
			return err
		}
		if !joined {
			return fmt.Errorf("%w: %s is not in room %s", core.ErrForbidden, origin, roomID)
		}
		// The requester has the latest events too: reached again through
		// another one's prev events, they are not sent back.
		stop := map[string]bool{}
		for _, id := range slices.Concat(req.EarliestEvents, req.LatestEvents) {
			stop[id] = true
		}
		var queue []string
		for _, id := range req.LatestEvents {
			rec, err := core.LoadEventRecord(tx, id)
			if errors.Is(err, core.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec.RoomID != roomID {
				continue
			}
			p, err := n.LoadPDU(tx, id)
			if err != nil {
				return err
			}
			queue = append(queue, p.PrevEventIDs()...)
		}
		// Events origin may not see go redacted rather than not at all (as
		// Synapse does): a gap must be fillable, or a new joiner could not
		// connect the old sticky events pushed to it.
		out, err = n.walkBack(tx, origin, roomID, queue, stop, limit, true, func(_ *core.EventRecord, p gomatrixserverlib.PDU) bool {
			return p.Depth() >= req.MinDepth
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return walkedJSON(out, false), nil
}

// redactedJSON is an event's JSON redacted by its room version's rules.
func redactedJSON(version string, j json.RawMessage) (json.RawMessage, error) {
	verImpl, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersion(version))
	if err != nil {
		return nil, err
	}
	return verImpl.RedactEventJSON(j)
}

// serverMaySee is the history visibility check for a server (see
// MissingEvents).
func (n *Inbound) serverMaySee(tx *kv.Txn, server string, rec *core.EventRecord, evType string, stateKey *string) (bool, error) {
	if evType == spec.MRoomMember && stateKey != nil && domainOf(*stateKey) == server {
		return true, nil
	}
	before, err := n.States.Read(tx, rec.StateBefore)
	if err != nil {
		return false, err
	}
	hv, err := n.HistoryVisibility(tx, before)
	if err != nil {
		return false, err
	}
	if hv == "shared" || hv == "world_readable" {
		return true, nil
	}
	return n.serverJoinedIn(tx, server, before)
}

// domainOf is the server part of a user ID ("" when there is none).
func domainOf(userID string) string {
	if i := strings.IndexByte(userID, ':'); i >= 0 {
		return userID[i+1:]
	}
	return ""
}

// EventFetcher fetches events a node is missing from another server. The
// app provides it from its federation client (part of Remote).
type EventFetcher interface {
	// GetMissingEvents is get_missing_events on server: events before
	// req.LatestEvents back to req.EarliestEvents, as full event JSON.
	GetMissingEvents(ctx context.Context, server, roomID string, req MissingEventsRequest) ([]json.RawMessage, error)
	// Backfill is /backfill on server: the events from (included) and
	// before them, at most limit, as full event JSON.
	Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error)
	// EventAuth is /event_auth on server: the auth chain of an event.
	EventAuth(ctx context.Context, server, roomID, eventID string) ([]json.RawMessage, error)
	// StateIDs is /state_ids on server: the state before an event and its
	// auth chain, as event IDs.
	StateIDs(ctx context.Context, server, roomID, eventID string) (*RoomStateIDs, error)
	// State is /state on server: as StateIDs, with full events.
	State(ctx context.Context, server, roomID, eventID string) (*RoomState, error)
	// Event is /event on server: one event's JSON.
	Event(ctx context.Context, server, eventID string) (json.RawMessage, error)
}

// fetchMissingPrevs retries the PDUs of a batch that failed with
// ErrMissingEvents, room by room, with rounds of get_missing_events to
// in.Origin (fillFromOrigin). Results of the retried PDUs are replaced by
// the last retry's; a failed fetch leaves them as they are.
func (n *Inbound) fetchMissingPrevs(ctx context.Context, in FederatedInput, results []FederatedPDUResult) error {
	f := n.eventFetcher()
	if f == nil || in.noFetch || in.Origin == "" || in.Origin == n.ServerName() {
		return nil
	}
	var rooms []string
	for _, res := range results {
		if res.EventID != "" && errors.Is(res.Err, ErrMissingEvents) && !slices.Contains(rooms, res.RoomID) {
			rooms = append(rooms, res.RoomID)
		}
	}
	for _, roomID := range rooms {
		if err := n.fillFromOrigin(ctx, f, in, roomID, results); err != nil {
			return err
		}
	}
	return nil
}

// Bounds on filling one room's gap from the sender: at most
// maxMissingRounds get_missing_events of FetchMissingLimit events each,
// and at most maxMissingPoolBytes of fetched events held in memory (500
// events of the largest size would be 32 MiB, too much for a phone).
const (
	maxMissingRounds = 10
	// FetchMissingLimit is the limit of one get_missing_events request.
	FetchMissingLimit   = MaxMissingEvents
	maxMissingPoolBytes = 4 << 20
	// MaxEarliestEvents bounds the earliest_events of one request: the
	// room's newest forward extremities. A room a peer has forked a
	// thousand times would otherwise send them all, over what servers
	// take (this one refuses more than 1,000); the sender's walk then
	// stops at these, and events it returns that are held already are
	// skipped.
	MaxEarliestEvents = 100
)

// fillFromOrigin fills the gap before the PDUs of one room that miss prev
// events, walking back from them through the sender's DAG. Each round asks
// for the events before the frontier of what is still unconnected: those
// PDUs and the events fetched so far that miss prev events themselves
// (kept in a pool between rounds, not stored until they connect). Then the
// pool and the PDUs are input together (in topological order), without
// fetching again. A gap longer than one round (a partition's backlog, a
// new joiner's old sticky events) is thus filled a round at a time, up to
// the bounds; what is still unconnected after them is left to fillGaps.
func (n *Inbound) fillFromOrigin(ctx context.Context, f EventFetcher, in FederatedInput, roomID string, results []FederatedPDUResult) error {
	version, err := n.RoomVersion(roomID)
	if err != nil {
		return err
	}
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil {
		return fmt.Errorf("room %s: %w", roomID, core.ErrUnsupportedRoomVersion)
	}
	pool := map[string]pooledEvent{} // fetched, not yet connected
	var poolIDs []string
	poolBytes := 0
	// The batch's own PDUs are never taken from a fetch: the copy served
	// may be redacted (history visibility), and stored first it would
	// stand for the real event (a sticky event would lose its stickiness).
	inBatch := map[string]bool{}
	for _, res := range results {
		if res.EventID != "" {
			inBatch[res.EventID] = true
		}
	}
	for range maxMissingRounds {
		var idx []int
		for i, res := range results {
			if res.EventID != "" && res.RoomID == roomID && errors.Is(res.Err, ErrMissingEvents) {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil
		}
		var earliest []string
		err := n.DB.View(func(tx *kv.Txn) error {
			room, err := core.LoadRoom(tx, roomID)
			if err == nil {
				earliest = room.Extremities[:min(len(room.Extremities), MaxEarliestEvents)]
			}
			return err
		})
		if err != nil {
			return err
		}
		latest := unconnected(pool, poolIDs, in.PDUs, idx, results)
		fetched, err := f.GetMissingEvents(ctx, in.Origin, roomID, MissingEventsRequest{
			EarliestEvents: earliest, LatestEvents: latest, Limit: FetchMissingLimit,
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			n.Logger().Debug("get_missing_events failed", "origin", in.Origin, "room_id", roomID, "error", err)
			return nil
		}
		added := 0
		for _, e := range fetched[:min(len(fetched), FetchMissingLimit)] {
			ev, err := verImpl.NewEventFromUntrustedJSON(e)
			if err != nil || ev.RoomID().String() != roomID || pool[ev.EventID()].raw != nil || inBatch[ev.EventID()] {
				continue // not what was asked for, or already held
			}
			if poolBytes+len(e) > maxMissingPoolBytes {
				break
			}
			poolBytes += len(e)
			pool[ev.EventID()] = pooledEvent{raw: e, prevs: ev.PrevEventIDs()}
			poolIDs = append(poolIDs, ev.EventID())
			added++
		}
		n.Logger().Debug("fetched missing events", "origin", in.Origin, "room_id", roomID, "count", len(fetched), "new", added)
		if added == 0 {
			return nil // the sender has nothing more to give
		}
		pdus := make([]json.RawMessage, 0, len(poolIDs)+len(idx))
		for _, id := range poolIDs {
			pdus = append(pdus, pool[id].raw)
		}
		for _, i := range idx {
			pdus = append(pdus, in.PDUs[i])
		}
		retry, err := n.InputFederatedPDUs(ctx, FederatedInput{Origin: in.Origin, PDUs: pdus, noFetch: true})
		if err != nil {
			return err
		}
		// Fetched events that connected (or failed for good) leave the pool.
		kept := poolIDs[:0]
		for k, id := range poolIDs {
			if errors.Is(retry[k].Err, ErrMissingEvents) {
				kept = append(kept, id)
			} else {
				poolBytes -= len(pool[id].raw)
				delete(pool, id)
			}
		}
		poolIDs = kept
		for k, i := range idx {
			results[i] = retry[len(pdus)-len(idx)+k]
		}
	}
	return nil
}

// pooledEvent is a fetched event fillFromOrigin holds until it connects,
// with its prev events (read once, when it was parsed).
type pooledEvent struct {
	raw   json.RawMessage
	prevs []string
}

// unconnected is the frontier to fetch before: the event IDs of the pool's
// events and of the PDUs idx that have a prev event outside the pool (the
// others connect through the pool once it does).
func unconnected(pool map[string]pooledEvent, poolIDs []string, pdus []json.RawMessage, idx []int, results []FederatedPDUResult) []string {
	var out []string
	add := func(id string, prevs []string) {
		if len(prevs) == 0 {
			out = append(out, id)
			return
		}
		for _, p := range prevs {
			if pool[p].raw == nil {
				out = append(out, id)
				return
			}
		}
	}
	for _, id := range poolIDs {
		add(id, pool[id].prevs)
	}
	for _, i := range idx {
		var h struct {
			PrevEvents []string `json:"prev_events"`
		}
		_ = json.Unmarshal(pdus[i], &h) // a malformed one is asked for, harmlessly
		add(results[i].EventID, h.PrevEvents)
	}
	return out
}
