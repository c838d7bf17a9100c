package core

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
)

// Reading a room's timeline across its two ranges: the stream entries
// (tRoomStream, stream positions) and, before them, the history backfilled
// from other servers (tRoomBackfill, backfill positions; see
// tables_history.go for why positions there read as they do). A token at a
// position means the same in both ranges: going backwards, events at or
// before it; forwards, events after it; so a page's end simply crosses
// from one range into the other.

// TimelineLess reports whether position a comes before b in a room's
// timeline (backfilled history first, then the stream).
func TimelineLess(a, b uint64) bool { return timelineOrder(a) < timelineOrder(b) }

// maxBackfillRounds caps the /backfill rounds one page may wait for; a page
// that used them all and is not full says there is more (Page.More), so the
// client's next request goes on fetching.
const maxBackfillRounds = 3

// timelineScan is one read of a room's timeline.
type timelineScan struct {
	page Page
	// seen counts the entries looked at, visible or not.
	seen int
	// stopped is true when the limit or r.To ended the scan, rather than
	// the start or end of the timeline.
	stopped bool
}

type timelineSegment struct {
	scan     kv.Scan
	backfill bool
}

// scanTimeline reads up to r.Limit entries of the room's timeline from
// r.From in r's direction, keeping those userID may see.
func (n *Node) scanTimeline(tx *kv.Txn, userID, roomID string, r Range) (timelineScan, error) {
	var s timelineScan
	if ok, err := tx.Has(RoomKey(roomID)); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("room %s: %w", roomID, ErrNotFound)
		}
		return s, err
	}
	stream, history := RoomStreamPrefix(roomID), RoomBackfillPrefix(roomID)
	var segs []timelineSegment
	switch {
	case !r.History && IsBackfillPos(r.From):
		// Only /messages hands out such positions.
	case !r.History && r.Backwards:
		sc := kv.Scan{Prefix: stream, Reverse: true}
		if r.From != 0 {
			sc.From = RoomStreamKey(roomID, r.From)
		}
		segs = []timelineSegment{{scan: sc}}
	case !r.History:
		segs = []timelineSegment{{scan: kv.Scan{Prefix: stream, From: RoomStreamKey(roomID, r.From+1)}}}
	case r.Backwards && IsBackfillPos(r.From):
		segs = []timelineSegment{{scan: kv.Scan{Prefix: history, Reverse: true, From: RoomBackfillKey(roomID, r.From)}, backfill: true}}
	case r.Backwards:
		sc := kv.Scan{Prefix: stream, Reverse: true}
		if r.From != 0 {
			sc.From = RoomStreamKey(roomID, r.From)
		}
		segs = []timelineSegment{{scan: sc}, {scan: kv.Scan{Prefix: history, Reverse: true}, backfill: true}}
	case IsBackfillPos(r.From):
		segs = []timelineSegment{{scan: kv.Scan{Prefix: history, From: RoomBackfillKey(roomID, r.From+1)}, backfill: true}, {scan: kv.Scan{Prefix: stream}}}
	case r.From == 0:
		segs = []timelineSegment{{scan: kv.Scan{Prefix: history}, backfill: true}, {scan: kv.Scan{Prefix: stream}}}
	default:
		segs = []timelineSegment{{scan: kv.Scan{Prefix: stream, From: RoomStreamKey(roomID, r.From+1)}}}
	}
	s.page.End = r.From
	for _, seg := range segs {
		if s.stopped {
			break
		}
		err := tx.Each(seg.scan, func(k, v []byte) (bool, error) {
			pos, err := kv.LastUint(k)
			if err != nil {
				return false, err
			}
			if r.To != 0 {
				o, to := timelineOrder(pos), timelineOrder(r.To)
				if (r.Backwards && o <= to) || (!r.Backwards && o > to) {
					s.stopped = true
					return false, nil
				}
			}
			if s.seen == r.Limit {
				s.page.More, s.stopped = true, true
				return false, nil
			}
			s.seen++
			if r.Backwards {
				s.page.End = pos - 1
			} else {
				s.page.End = pos
			}
			eventID := string(v)
			if !seg.backfill {
				if eventID, _, err = DecodeTimelineEntry(v); err != nil {
					return false, err
				}
			}
			ev, rec, err := n.LoadEvent(tx, eventID)
			if err != nil {
				return false, err
			}
			ev.Pos = pos
			ok, err := n.visible(tx, userID, ev, rec)
			if err != nil {
				return false, err
			}
			if ok {
				s.page.Events = append(s.page.Events, ev)
			}
			return true, nil
		})
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// backfillPage continues a backwards page that reached the start of the
// room's timeline: it backfills from other servers and reads on, for at
// most maxBackfillRounds rounds. Backfill is best-effort: when no server
// answers, the page is what the node has (an error here is the node's own:
// storage, or ctx).
func (n *Node) backfillPage(ctx context.Context, userID, roomID string, r Range, s timelineScan) (Page, error) {
	page, seen := s.page, s.seen
	for round := 0; !s.stopped; round++ {
		if round == maxBackfillRounds {
			page.More = true // there may be more: the next page fetches on
			break
		}
		added, err := n.federation.BackfillRoom(ctx, roomID) // errors: storage, ctx
		if err != nil {
			return Page{}, err
		}
		if added == 0 || page.End == 0 {
			break
		}
		rest := r
		rest.From, rest.Limit = page.End, r.Limit-seen
		if rest.Limit <= 0 {
			page.More = true
			break
		}
		err = n.DB.View(func(tx *kv.Txn) error {
			var err error
			s, err = n.scanTimeline(tx, userID, roomID, rest)
			return err
		})
		if err != nil {
			return Page{}, err
		}
		page.Events = append(page.Events, s.page.Events...)
		page.End, page.More = s.page.End, s.page.More
		seen += s.seen
	}
	return page, nil
}
