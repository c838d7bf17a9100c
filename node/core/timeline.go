package core

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
	// History includes the room's history backfilled from other servers,
	// before the node's own timeline, and going backwards fetches more of
	// it when it runs out (/messages sets it; sync, which shows what is new
	// and must not wait on the network, does not).
	History bool
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
// may see. The timeline is the room's stream entries preceded by the
// history backfilled from other servers (node/inbound/backfill.go), read and extended
// (going backwards) only with r.History.
func (n *Node) RoomEvents(ctx context.Context, userID, roomID string, r Range) (Page, error) {
	if r.Limit <= 0 {
		r.Limit = 10
	}
	var s timelineScan
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		s, err = n.scanTimeline(tx, userID, roomID, r)
		return err
	})
	if err != nil || !r.Backwards || !r.History {
		return s.page, err
	}
	return n.backfillPage(ctx, userID, roomID, r, s)
}

// A room timeline entry holds the event's ID and the ID of the room's
// current state once the event was accepted, so the current state at any
// stream position is one lookup away (sync needs it for old since tokens).
func EncodeTimelineEntry(eventID, stateID string) []byte {
	return []byte(eventID + "\n" + stateID)
}

func DecodeTimelineEntry(v []byte) (eventID, stateID string, err error) {
	eventID, stateID, ok := strings.Cut(string(v), "\n")
	if !ok {
		return "", "", fmt.Errorf("malformed timeline entry %q", v)
	}
	return eventID, stateID, nil
}
