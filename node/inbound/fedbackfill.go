package inbound

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
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
func (n *Inbound) Backfill(ctx context.Context, origin, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxBackfill {
		limit = MaxBackfill
	}
	var out []walkedEvent
	err := n.DB.View(func(tx *kv.Txn) error {
		if _, err := core.LoadRoom(tx, roomID); err != nil {
			return err
		}
		in, err := tx.Has(core.RoomServerKey(roomID, origin))
		if err != nil {
			return err
		}
		for _, id := range from {
			if in {
				break
			}
			rec, err := core.LoadEventRecord(tx, id)
			if err != nil || rec.RoomID != roomID {
				continue
			}
			p, err := n.LoadPDU(tx, id)
			if err != nil {
				return err
			}
			if in, err = n.serverInRoom(tx, origin, rec, p); err != nil {
				return err
			}
		}
		if !in {
			return fmt.Errorf("%w: %s has no member in room %s", core.ErrForbidden, origin, roomID)
		}
		// Soft-failed events are not served, nor walked past, as for clients.
		out, err = n.walkBack(tx, origin, roomID, from, nil, limit, false, func(rec *core.EventRecord, _ gomatrixserverlib.PDU) bool {
			return !rec.SoftFailed
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return walkedJSON(out, true), nil
}
