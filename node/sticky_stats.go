package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// Bounds on StickyStats: index entries read, and rooms or destinations
// reported. Past either, the answer is partial and says so.
const (
	stickyStatsMaxScan    = 200_000
	stickyStatsMaxEntries = 1000
)

// StickyStats is the admin view of sticky events (MSC4354): how many are
// live per room, and how many of this server's are waiting to be sent per
// destination.
type StickyStats struct {
	// Rooms maps a room ID to its unexpired sticky events (served ones:
	// soft-failed events are not counted).
	Rooms map[string]int `json:"rooms"`
	// Destinations maps a server to the unexpired sticky events queued for
	// it and not yet acknowledged.
	Destinations map[string]int `json:"destinations"`
	// Truncated is set when a bound was reached and the counts are partial.
	Truncated bool `json:"truncated,omitempty"`
}

// StickyStats counts live sticky events per room (the sticky index) and
// pending ones per destination (the outbound queues, whose entries carry a
// sticky event's end: no event is loaded). It reads at most
// stickyStatsMaxScan entries and reports at most stickyStatsMaxEntries rooms
// and destinations.
func (n *Node) StickyStats(ctx context.Context) (*StickyStats, error) {
	nowMS := n.Now().UnixMilli()
	out := &StickyStats{Rooms: map[string]int{}, Destinations: map[string]int{}}
	scanned := 0
	// more counts a read entry and reports whether the scan may go on.
	more := func() bool {
		if scanned++; scanned > stickyStatsMaxScan {
			out.Truncated = true
			return false
		}
		return ctx.Err() == nil
	}
	err := n.DB.View(func(tx *kv.Txn) error {
		err := tx.Each(kv.Scan{Prefix: kv.Key(tSticky)}, func(_, v []byte) (bool, error) {
			var rec stickyRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return false, fmt.Errorf("sticky index: %w", err)
			}
			if rec.EndMS > nowMS {
				if _, ok := out.Rooms[rec.RoomID]; !ok && len(out.Rooms) == stickyStatsMaxEntries {
					out.Truncated = true
					return false, nil
				}
				out.Rooms[rec.RoomID]++
			}
			return more(), nil
		})
		if err != nil {
			return err
		}
		var dests []string
		var heads []uint64
		err = eachFedDest(tx, func(dest string, rec fedDestRecord) (bool, error) {
			if rec.Count > 0 {
				dests, heads = append(dests, dest), append(heads, rec.Head)
			}
			return len(dests) < stickyStatsMaxEntries, nil
		})
		if err != nil {
			return err
		}
		for i, dest := range dests {
			count := 0
			err := tx.Each(kv.Scan{Prefix: fedQueuePrefix(dest), From: fedQueueKey(dest, heads[i])}, func(_, v []byte) (bool, error) {
				if keepOnOverflow(v, nowMS) { // an unexpired sticky event
					count++
				}
				return more(), nil
			})
			if err != nil {
				return err
			}
			if count > 0 {
				out.Destinations[dest] = count
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sticky stats: %w", err)
	}
	return out, nil
}
