package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// StateAfterEvent returns the room state in force after eventID (the event
// itself included when it is a state event), for /context and lazy-loaded
// members. When keys is non-nil only those keys are looked up, and keys the
// state lacks are skipped. State events that cannot be served are skipped
// rather than failing the whole answer. The caller checks that the user may
// see the event; an unknown or unserved event is ErrNotFound.
func (n *Node) StateAfterEvent(ctx context.Context, eventID string, keys []StateKey) ([]*Event, error) {
	var out []*Event
	err := n.DB.View(func(tx *kv.Txn) error {
		rec, err := LoadEventRecord(tx, eventID)
		if err != nil {
			return err
		}
		if rec.Pos == 0 {
			return fmt.Errorf("event %s: %w", eventID, ErrNotFound)
		}
		s, err := n.States.Read(tx, rec.StateAfter)
		if err != nil {
			return err
		}
		var ids []string
		if keys == nil {
			ids = s.EventIDs()
		} else {
			for _, k := range keys {
				if id, ok := s.Get(k.EventType, k.StateKey); ok {
					ids = append(ids, id)
				}
			}
		}
		for _, id := range ids {
			ev, _, err := n.LoadEvent(tx, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}
