package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/kv"
)

// Range selects a slice of a room's timeline by stream position. A position
// p stands between the event at p and the one after it.
type Range struct {
	// From is where to start: backwards, events at or before From; forwards,
	// events after From. Backwards with From 0 starts at the newest event.
	From uint64
	// To, when non-zero, is where to stop (exclusive of the far side in the
	// direction of travel).
	To        uint64
	Backwards bool
	// Limit caps the events returned (and the events looked at: events the
	// user may not see use up the limit too, so a page is bounded work).
	Limit int
}

// Page is a slice of a timeline and where the next page starts.
type Page struct {
	Events []*Event
	// End is the token for the next page in the same direction; equal to
	// the start when there is nothing more.
	End uint64
	// More is false when the timeline is exhausted in that direction.
	More bool
}

// RoomEvents pages through a room's timeline, returning only events userID
// may see.
func (n *Node) RoomEvents(ctx context.Context, userID, roomID string, r Range) (Page, error) {
	if r.Limit <= 0 {
		r.Limit = 10
	}
	var page Page
	err := n.db.View(func(tx *kv.Txn) error {
		if ok, err := tx.Has(roomKey(roomID)); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("room %s: %w", roomID, ErrNotFound)
			}
			return err
		}
		prefix := roomStreamPrefix(roomID)
		scan := kv.Scan{Prefix: prefix, Reverse: r.Backwards}
		switch {
		case r.Backwards && r.From != 0:
			scan.From = roomStreamKey(roomID, r.From)
		case !r.Backwards:
			scan.From = roomStreamKey(roomID, r.From+1)
		}
		page.End = r.From
		seen := 0
		return tx.Each(scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			if r.To != 0 && ((r.Backwards && pos <= r.To) || (!r.Backwards && pos > r.To)) {
				return false, nil
			}
			if seen == r.Limit {
				page.More = true
				return false, nil
			}
			seen++
			if r.Backwards {
				page.End = pos - 1
			} else {
				page.End = pos
			}
			eventID, _, err := decodeTimelineEntry(v)
			if err != nil {
				return false, err
			}
			ev, rec, err := n.loadEvent(tx, eventID)
			if err != nil {
				return false, err
			}
			ok, err := n.visible(tx, userID, ev, rec)
			if err != nil {
				return false, err
			}
			if ok {
				page.Events = append(page.Events, ev)
			}
			return true, nil
		})
	})
	return page, err
}

// A room timeline entry holds the event's ID and the ID of the room's
// current state once the event was accepted, so the current state at any
// stream position is one lookup away (sync needs it for old since tokens).
func encodeTimelineEntry(eventID, stateID string) []byte {
	return []byte(eventID + "\n" + stateID)
}

func decodeTimelineEntry(v []byte) (eventID, stateID string, err error) {
	eventID, stateID, ok := strings.Cut(string(v), "\n")
	if !ok {
		return "", "", fmt.Errorf("malformed timeline entry %q", v)
	}
	return eventID, stateID, nil
}
