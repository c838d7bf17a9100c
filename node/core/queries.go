package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// LoadEvent returns a stored event that clients may be served: accepted
// (not rejected, not soft-failed). Others are ErrNotFound.
func (n *Node) LoadEvent(tx *kv.Txn, eventID string) (*Event, *EventRecord, error) {
	rec, err := LoadEventRecord(tx, eventID)
	if err != nil {
		return nil, nil, err
	}
	if rec.Pos == 0 {
		return nil, nil, fmt.Errorf("event %s: %w", eventID, ErrNotFound)
	}
	if p, ok := n.pdus.Get(eventID); ok && rec.RedactedBy == "" {
		return &Event{PDU: p, Pos: rec.Pos, TxnID: rec.TxnID, DeviceID: rec.DeviceID}, rec, nil
	}
	ev, err := rec.parse(tx, eventID)
	if err != nil {
		return nil, nil, err
	}
	if rec.RedactedBy == "" {
		n.pdus.Put(eventID, ev.PDU)
	}
	return ev, rec, nil
}

// Event returns an event if userID may see it; otherwise ErrNotFound, so
// callers learn nothing about events they may not see.
func (n *Node) Event(ctx context.Context, userID, eventID string) (*Event, error) {
	var out *Event
	err := n.DB.View(func(tx *kv.Txn) error {
		ev, rec, err := n.LoadEvent(tx, eventID)
		if err != nil {
			return err
		}
		ok, err := n.visible(tx, userID, ev, rec)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("event %s: %w", eventID, ErrNotFound)
		}
		out = ev
		return nil
	})
	return out, err
}

// stateEvents loads every event of a state.
func (n *Node) stateEvents(tx *kv.Txn, s *State) ([]*Event, error) {
	out := make([]*Event, 0, s.Len())
	var err error
	s.Each(func(_ StateKey, id string) {
		if err != nil {
			return
		}
		var ev *Event
		if ev, _, err = n.LoadEvent(tx, id); err == nil {
			out = append(out, ev)
		}
	})
	return out, err
}

func (n *Node) currentState(tx *kv.Txn, roomID string) (*State, error) {
	room, err := LoadRoom(tx, roomID)
	if err != nil {
		return nil, err
	}
	return n.States.Read(tx, room.State)
}

// CurrentState returns every event of a room's current state.
func (n *Node) CurrentState(ctx context.Context, roomID string) ([]*Event, error) {
	var out []*Event
	err := n.DB.View(func(tx *kv.Txn) error {
		s, err := n.currentState(tx, roomID)
		if err != nil {
			return err
		}
		out, err = n.stateEvents(tx, s)
		return err
	})
	return out, err
}

// CurrentStateEvent returns one event of a room's current state, or ErrNotFound.
func (n *Node) CurrentStateEvent(ctx context.Context, roomID, evType, stateKey string) (*Event, error) {
	var out *Event
	err := n.DB.View(func(tx *kv.Txn) error {
		s, err := n.currentState(tx, roomID)
		if err != nil {
			return err
		}
		out, err = n.stateEvent(tx, s, evType, stateKey)
		return err
	})
	return out, err
}

// stateForUser is the room state a user may read: the current state while
// joined, the state when they left otherwise, or the current state of a
// world-readable room. Others get ErrForbidden.
func (n *Node) stateForUser(tx *kv.Txn, userID, roomID string) (*State, error) {
	cur, err := n.currentState(tx, roomID)
	if err != nil {
		return nil, err
	}
	var rec MembershipRecord
	err = tx.GetJSON(MembershipKey(userID, roomID), &rec)
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	switch {
	case rec.Membership == spec.Join:
		return cur, nil
	case rec.Membership == spec.Leave || rec.Membership == spec.Ban:
		if er, err := LoadEventRecord(tx, rec.EventID); err == nil && er.StateAfter != "" {
			return n.States.Read(tx, er.StateAfter)
		}
	}
	if hv, err := n.HistoryVisibility(tx, cur); err == nil && hv == "world_readable" {
		return cur, nil
	}
	return nil, fmt.Errorf("%w: you are not a member of %s", ErrForbidden, roomID)
}

// RoomState returns the room state userID may read (see stateForUser).
func (n *Node) RoomState(ctx context.Context, userID, roomID string) ([]*Event, error) {
	var out []*Event
	err := n.DB.View(func(tx *kv.Txn) error {
		s, err := n.stateForUser(tx, userID, roomID)
		if err != nil {
			return err
		}
		out, err = n.stateEvents(tx, s)
		return err
	})
	return out, err
}

// RoomStateEvent returns one state event of the state userID may read.
func (n *Node) RoomStateEvent(ctx context.Context, userID, roomID, evType, stateKey string) (*Event, error) {
	var out *Event
	err := n.DB.View(func(tx *kv.Txn) error {
		s, err := n.stateForUser(tx, userID, roomID)
		if err != nil {
			return err
		}
		out, err = n.stateEvent(tx, s, evType, stateKey)
		return err
	})
	return out, err
}

// Members returns the member events of the state userID may read.
func (n *Node) Members(ctx context.Context, userID, roomID string) ([]*Event, error) {
	all, err := n.RoomState(ctx, userID, roomID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, ev := range all {
		if ev.PDU.Type() == spec.MRoomMember {
			out = append(out, ev)
		}
	}
	return out, nil
}

// RoomExists reports whether the node has the room.
func (n *Node) RoomExists(ctx context.Context, roomID string) (bool, error) {
	var ok bool
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		ok, err = tx.Has(RoomKey(roomID))
		return err
	})
	return ok, err
}

// stateEvent loads the event of s at (evType, stateKey), or ErrNotFound.
func (n *Node) stateEvent(tx *kv.Txn, s *State, evType, stateKey string) (*Event, error) {
	id, ok := s.Get(evType, stateKey)
	if !ok {
		return nil, fmt.Errorf("state %s/%s: %w", evType, stateKey, ErrNotFound)
	}
	ev, _, err := n.LoadEvent(tx, id)
	return ev, err
}
