package node

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/kv"
)

// MaxBackfill caps the limit of one /backfill request, both served and
// asked for.
const MaxBackfill = 100

// Backfill answers another server's /backfill: the events from (included)
// and before them, walking prev_events back, newest first (by depth), at
// most limit (capped at MaxBackfill), as full event JSON.
//
// An unknown room is ErrNotFound; origin must have a member in the room now
// or in the state before one of from (else ErrForbidden). Rejected and
// soft-failed events are never served, nor events origin may not see
// (serverMaySee); at most 10*limit events are looked at.
func (n *Node) Backfill(ctx context.Context, origin, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxBackfill {
		limit = MaxBackfill
	}
	type found struct {
		depth int64
		id    string
		json  json.RawMessage
	}
	var out []found
	err := n.db.View(func(tx *kv.Txn) error {
		if _, err := loadRoom(tx, roomID); err != nil {
			return err
		}
		in, err := tx.Has(roomServerKey(roomID, origin))
		if err != nil {
			return err
		}
		for _, id := range from {
			if in {
				break
			}
			rec, err := loadEventRecord(tx, id)
			if err != nil || rec.RoomID != roomID {
				continue
			}
			p, err := n.loadPDU(tx, id)
			if err != nil {
				return err
			}
			if in, err = n.serverInRoom(tx, origin, rec, p); err != nil {
				return err
			}
		}
		if !in {
			return fmt.Errorf("%w: %s has no member in room %s", ErrForbidden, origin, roomID)
		}
		seen := map[string]bool{}
		queue := slices.Clone(from)
		for budget := 10 * limit; len(queue) > 0 && len(out) < limit && len(seen) < budget; {
			id := queue[0]
			queue = queue[1:]
			if seen[id] {
				continue
			}
			seen[id] = true
			rec, err := loadEventRecord(tx, id)
			if err != nil {
				continue // unknown here: nothing to walk from
			}
			if rec.RoomID != roomID || rec.Rejected != "" || rec.SoftFailed {
				continue
			}
			p, err := n.loadPDU(tx, id)
			if err != nil {
				return err
			}
			queue = append(queue, p.PrevEventIDs()...)
			ok, err := n.serverMaySee(tx, origin, rec, p.Type(), p.StateKey())
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			j, err := rec.json(tx, id)
			if err != nil {
				return err
			}
			out = append(out, found{p.Depth(), id, j})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b found) int {
		if c := cmp.Compare(b.depth, a.depth); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	events := make([]json.RawMessage, len(out))
	for i, f := range out {
		events[i] = f.json
	}
	return events, nil
}
