package inbound

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// DropAbandonedJoins undoes, at start-up, the index entries of remote joins
// that a crash stopped between their chunks (fedjoin_chunks.go). node.New
// calls it before it returns, when no join is under way, so a room that has
// pending-join lists and no room record was abandoned. A retry would drop
// them first anyway (dropPendingJoin); a join never retried would keep them
// for ever. Its outliers and snapshots stay, as for a retry: nothing serves
// them, and a later join of the room uses them again.
func (n *Inbound) DropAbandonedJoins(ctx context.Context) error {
	var rooms []string
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(tJoinPending), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil || len(parts) == 0 {
				return false, fmt.Errorf("pending-join key %q: %v", k, err)
			}
			roomID, ok := parts[0].(string)
			if !ok {
				return false, fmt.Errorf("pending-join key %q: no room ID", k)
			}
			if len(rooms) == 0 || rooms[len(rooms)-1] != roomID {
				rooms = append(rooms, roomID)
			}
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	for _, roomID := range rooms {
		var stored bool
		if err := n.DB.View(func(tx *kv.Txn) (err error) {
			stored, err = tx.Has(core.RoomKey(roomID))
			return err
		}); err != nil {
			return err
		}
		if stored {
			continue // its join committed (endPendingJoin ran in that commit)
		}
		if err := n.dropPendingJoin(ctx, roomID); err != nil {
			return fmt.Errorf("abandoned join of %s: %w", roomID, err)
		}
		n.Logger().Info("dropped an abandoned remote join", "room", roomID)
	}
	return nil
}
