package inbound

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The resident side of the federation endpoints that read a room's state
// and events for another server: /state, /state_ids, /event and
// /event_auth. Every one of them first checks the requesting server's
// access (remoteEvent): the server must be in the room and may see the
// event.

// RoomStateIDs is the state before an event and its auth chain, as event
// IDs (the answer to /state_ids).
type RoomStateIDs struct {
	StateIDs     []string
	AuthChainIDs []string
}

// RoomState is the state before an event and its auth chain, as full
// event JSON (the answer to /state, and what send_join returns).
type RoomState struct {
	State     []json.RawMessage
	AuthChain []json.RawMessage
}

// FederationStateIDs answers /state_ids: the state of roomID before
// eventID and the auth chain of that state, as IDs. Errors: ErrNotFound for
// an unknown room or event (or one origin may not see, or one not served:
// rejected, soft-failed); ErrForbidden when origin has no member in the room.
func (n *Inbound) FederationStateIDs(ctx context.Context, origin, roomID, eventID string) (*RoomStateIDs, error) {
	var out *RoomStateIDs
	err := n.federationStateAt(ctx, origin, roomID, eventID, func(_ *kv.Txn, ids *RoomStateIDs) error {
		out = ids
		return nil
	})
	return out, err
}

// FederationState answers /state: as FederationStateIDs, with full events.
func (n *Inbound) FederationState(ctx context.Context, origin, roomID, eventID string) (*RoomState, error) {
	var out *RoomState
	err := n.federationStateAt(ctx, origin, roomID, eventID, func(tx *kv.Txn, ids *RoomStateIDs) error {
		var err error
		out, err = n.roomStateJSON(tx, ids)
		return err
	})
	return out, err
}

// federationStateAt is /state and /state_ids' walk: origin's access to the
// event, then the IDs of the state before it and of that state's auth
// chain, which fn gets in the same read transaction.
func (n *Inbound) federationStateAt(ctx context.Context, origin, roomID, eventID string, fn func(tx *kv.Txn, ids *RoomStateIDs) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return n.DB.View(func(tx *kv.Txn) error {
		rec, _, err := n.remoteEvent(tx, origin, roomID, eventID)
		if err != nil {
			return err
		}
		if err := stateKnownAt(tx, eventID); err != nil {
			return err
		}
		ids, err := n.stateAndAuthChainIDs(tx, rec.StateBefore)
		if err != nil {
			return err
		}
		return fn(tx, ids)
	})
}

// FederationEvent answers /event: one event's JSON (redacted form if
// redacted), under the same rules as FederationStateIDs (the room is the
// event's own).
func (n *Inbound) FederationEvent(ctx context.Context, origin, eventID string) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out json.RawMessage
	err := n.DB.View(func(tx *kv.Txn) error {
		rec, _, err := n.remoteEvent(tx, origin, "", eventID)
		if err != nil {
			return err
		}
		out, err = rec.ReadJSON(tx, eventID)
		return err
	})
	return out, err
}

// FederationEventAuth answers /event_auth: the full auth chain of an event
// in roomID, under the same rules as FederationStateIDs.
func (n *Inbound) FederationEventAuth(ctx context.Context, origin, roomID, eventID string) ([]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	err := n.DB.View(func(tx *kv.Txn) error {
		_, p, err := n.remoteEvent(tx, origin, roomID, eventID)
		if err != nil {
			return err
		}
		ids, err := n.authChain(tx, p.AuthEventIDs())
		if err != nil {
			return err
		}
		out, err = n.eventJSONs(tx, ids)
		return err
	})
	return out, err
}

// stateKnownAt is ErrNotFound for an outlier stored without the state
// before it (the spec's 404: the server does not know the state there).
func stateKnownAt(tx *kv.Txn, eventID string) error {
	noState, err := tx.Has(core.OutlierNoStateKey(eventID))
	if err == nil && noState {
		err = fmt.Errorf("state at event %s: %w (not known here)", eventID, core.ErrNotFound)
	}
	return err
}

// remoteEvent loads an event another server asks for. It must be stored, in
// roomID (any room when roomID is ""), and served to clients (not rejected
// or soft-failed); else ErrNotFound. origin must be in the room
// (serverInRoom), else ErrForbidden, and may see the event (serverMaySee),
// else ErrNotFound, so that it learns nothing about events it may not see.
func (n *Inbound) remoteEvent(tx *kv.Txn, origin, roomID, eventID string) (*core.EventRecord, gomatrixserverlib.PDU, error) {
	if roomID != "" {
		if _, err := core.LoadRoom(tx, roomID); err != nil {
			return nil, nil, err
		}
	}
	rec, err := core.LoadEventRecord(tx, eventID)
	if err != nil {
		return nil, nil, err
	}
	if (roomID != "" && rec.RoomID != roomID) || rec.Rejected != "" || rec.SoftFailed {
		return nil, nil, fmt.Errorf("event %s: %w", eventID, core.ErrNotFound)
	}
	if roomID == "" {
		// An event of a room not stored here is one a remote join is
		// still writing (fedjoin_chunks.go), or one it left behind.
		if ok, err := tx.Has(core.RoomKey(rec.RoomID)); err != nil {
			return nil, nil, err
		} else if !ok {
			return nil, nil, fmt.Errorf("event %s: %w", eventID, core.ErrNotFound)
		}
	}
	p, err := n.LoadPDU(tx, eventID)
	if err != nil {
		return nil, nil, err
	}
	in, err := n.serverInRoom(tx, origin, rec, p)
	if err != nil {
		return nil, nil, err
	}
	if !in {
		return nil, nil, fmt.Errorf("%w: %s has no member in room %s", core.ErrForbidden, origin, rec.RoomID)
	}
	ok, err := n.serverMaySee(tx, origin, rec, p.Type(), p.StateKey())
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("event %s: %w (not visible to %s)", eventID, core.ErrNotFound, origin)
	}
	return rec, p, nil
}

// serverInRoom reports whether server has a joined member in the event's
// room now, or had one in the state before the event, or the event is the
// membership of one of its users (as Synapse asks the host to be in the
// room, loosely).
func (n *Inbound) serverInRoom(tx *kv.Txn, server string, rec *core.EventRecord, p gomatrixserverlib.PDU) (bool, error) {
	if ok, err := tx.Has(core.RoomServerKey(rec.RoomID, server)); err != nil || ok {
		return ok, err
	}
	if p.Type() == spec.MRoomMember && p.StateKey() != nil && domainOf(*p.StateKey()) == server {
		return true, nil
	}
	before, err := n.States.Read(tx, rec.StateBefore)
	if err != nil {
		return false, err
	}
	return n.serverJoinedIn(tx, server, before)
}

// serverJoinedIn reports whether s has a joined member of server.
func (n *Inbound) serverJoinedIn(tx *kv.Txn, server string, s *core.State) (bool, error) {
	var ids []string
	s.Each(func(k core.StateKey, eventID string) {
		if k.EventType == spec.MRoomMember && domainOf(k.StateKey) == server {
			ids = append(ids, eventID)
		}
	})
	for _, id := range ids {
		p, err := n.LoadPDU(tx, id)
		if err != nil {
			return false, err
		}
		if m, _ := p.Membership(); m == spec.Join {
			return true, nil
		}
	}
	return false, nil
}

// stateAndAuthChainIDs is the state snapshot stateID and the auth chain of
// its events (every event reached through auth_events from them).
func (n *Inbound) stateAndAuthChainIDs(tx *kv.Txn, stateID string) (*RoomStateIDs, error) {
	s, err := n.States.Read(tx, stateID)
	if err != nil {
		return nil, err
	}
	out := &RoomStateIDs{StateIDs: s.EventIDs()}
	var roots []string
	for _, id := range out.StateIDs {
		p, err := n.LoadPDU(tx, id)
		if err != nil {
			return nil, err
		}
		roots = append(roots, p.AuthEventIDs()...)
	}
	if out.AuthChainIDs, err = n.authChain(tx, roots); err != nil {
		return nil, err
	}
	return out, nil
}

// authChain is the events roots name and, transitively, their auth events,
// each once, in breadth-first order. It is bounded by the room's auth DAG.
func (n *Inbound) authChain(tx *kv.Txn, roots []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	queue := roots
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
		p, err := n.LoadPDU(tx, id)
		if err != nil {
			return nil, err
		}
		queue = append(queue, p.AuthEventIDs()...)
	}
	return out, nil
}

// roomStateJSON loads the events of ids.
func (n *Inbound) roomStateJSON(tx *kv.Txn, ids *RoomStateIDs) (*RoomState, error) {
	state, err := n.eventJSONs(tx, ids.StateIDs)
	if err != nil {
		return nil, err
	}
	chain, err := n.eventJSONs(tx, ids.AuthChainIDs)
	if err != nil {
		return nil, err
	}
	return &RoomState{State: state, AuthChain: chain}, nil
}

// eventJSONs is the stored JSON of each event (redacted form if redacted).
func (n *Inbound) eventJSONs(tx *kv.Txn, ids []string) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		j, err := n.eventJSON(tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
