package node

import (
	"context"

	"github.com/edgenode/edgenode/kv"
)

// stickyRoomsScanLimit bounds RoomsWithLiveSticky's scan of the expiry
// index.
const stickyRoomsScanLimit = 10000

// RoomsWithLiveSticky returns the rooms holding unexpired sticky events,
// read from the expiry index in one scan whose cost follows the node's
// live sticky events, not anyone's number of rooms. Sliding sync asks
// StickyEvents about those rooms only, instead of seeking into the sticky
// index of every room a user is in (a join's backlog points into its
// room's entries, so a room with a live backlog event is listed too). ok is
// false when there are more live entries than the scan reads: the caller
// then asks about every room.
func (n *Node) RoomsWithLiveSticky(ctx context.Context) (rooms map[string]bool, ok bool, err error) {
	nowMS := n.Now().UnixMilli()
	rooms, ok = map[string]bool{}, true
	seen := 0
	err = n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: stickyExpiryPrefix(), From: kv.Key(tStickyExpiry, uint64(max(nowMS+1, 0))), KeysOnly: true},
			func(k, _ []byte) (bool, error) {
				if seen++; seen > stickyRoomsScanLimit {
					ok = false
					return false, nil
				}
				_, parts, err := kv.DecodeKey(k)
				if err != nil || len(parts) < 3 {
					return false, err
				}
				kind, _ := parts[1].(string)
				owner, _ := parts[2].(string)
				if kind == stickyKindRoom {
					rooms[owner] = true
				}
				return true, nil
			})
	})
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	return rooms, ok, err
}
