package core

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// StreamEventsSince returns the events committed at room-stream positions
// in (from, to] in the given rooms, oldest first. Its cost follows what was
// committed in that span, not the number of rooms. It reads at most limit
// such events and looks at most at scanLimit stream entries; more is true
// when it stopped early (the caller decides what a gap that large means).
func (n *Node) StreamEventsSince(ctx context.Context, rooms map[string]bool, from, to uint64, limit, scanLimit int) (evs []*Event, more bool, err error) {
	if to <= from {
		return nil, false, nil
	}
	var ids []string
	scanned := 0
	err = n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(tStream), From: StreamKey(from + 1)}, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil || pos > to {
				return false, err
			}
			if scanned++; scanned > scanLimit {
				more = true
				return false, nil
			}
			var e StreamEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return false, fmt.Errorf("stream entry %d: %w", pos, err)
			}
			if !rooms[e.RoomID] {
				return true, nil
			}
			if len(ids) == limit {
				more = true
				return false, nil
			}
			ids = append(ids, e.EventID)
			return true, nil
		})
	})
	if err != nil {
		return nil, false, err
	}
	evs, err = n.Events(ctx, ids)
	return evs, more, err
}
