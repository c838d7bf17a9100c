package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// RoomStateAt returns the room's current state as it was at stream position
// pos: the state recorded with the room's last event at or before pos (empty
// when the room had no event by then). It costs one index seek and a
// snapshot read, however old pos is.
func (n *Node) RoomStateAt(ctx context.Context, roomID string, pos uint64) (*State, error) {
	var s *State
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		s, err = n.roomStateAt(tx, roomID, pos)
		return err
	})
	return s, err
}

func (n *Node) roomStateAt(tx *kv.Txn, roomID string, pos uint64) (*State, error) {
	stateID := ""
	if pos > 0 {
		err := tx.Each(kv.Scan{Prefix: RoomStreamPrefix(roomID), From: RoomStreamKey(roomID, pos), Reverse: true},
			func(_, v []byte) (bool, error) {
				_, id, err := DecodeTimelineEntry(v)
				stateID = id
				return false, err
			})
		if err != nil {
			return nil, err
		}
	}
	return n.States.Read(tx, stateID)
}

// Events loads accepted events by ID, in order. Events that are missing or
// not served (rejected, soft-failed) are skipped.
func (n *Node) Events(ctx context.Context, ids []string) ([]*Event, error) {
	out := make([]*Event, 0, len(ids))
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, id := range ids {
			ev, _, err := n.LoadEvent(tx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("load %s: %w", id, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}
