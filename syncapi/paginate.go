package syncapi

import (
	"context"

	"github.com/edgenode/edgenode/node/core"
)

// scanBudget is how many events beyond the limit one page may look at
// when hidden or filtered-out events are skipped. It bounds the work of a
// request in a room where the user sees little; the client then gets fewer
// events (maybe none) and an end token further on, and continues from there.
const scanBudget = 1000

// span is a stretch of a room's timeline in room-stream positions, which
// stand between events (see core.Range).
type span struct {
	// from is where to start: backwards, events at or before from;
	// forwards, events after from.
	from uint64
	// to, when hasTo, is where to stop: backwards, events after to;
	// forwards, events at or before to.
	to        uint64
	hasTo     bool
	backwards bool
	// history includes the room's history backfilled from other servers
	// (core.Range.History): /messages and /context, never sync.
	history bool
}

// window is one page of events a user may see and that pass the filter.
type window struct {
	events []*core.Event
	// end is where the next page in the same direction starts; meaningful
	// only when more is true.
	end  uint64
	more bool
	// touched says whether the span held any event at all, seen or not.
	touched bool
}

// paginate reads up to limit events of a room that userID may see and that
// keep accepts (nil keeps all), in the span's direction.
//
// The node's pages count hidden events against their limit, so paginate
// reads page after page, growing them, until it has limit+1 events, the
// timeline ends, or the budget (a.budget events beyond those) runs out. The extra event only tells whether
// anything is left: then the next page starts at it, so nothing between the
// last event returned and it (all hidden or filtered out) is read twice, and
// when nothing is left there is no next page at all, rather than a last
// empty one. Each event is thus returned exactly once over successive pages,
// whatever the filter hides.
func (a *api) paginate(ctx context.Context, userID, roomID string, sp span, limit int, keep func(*core.Event) bool) (window, error) {
	var w window
	if sp.backwards && sp.from == 0 {
		return w, nil // nothing precedes position 0; node reads 0 as "newest"
	}
	if sp.hasTo && !sp.backwards && sp.to == 0 {
		return w, nil // nothing is at or before 0; node reads To 0 as "no bound"
	}
	r := core.Range{From: sp.from, Backwards: sp.backwards, History: sp.history}
	if sp.hasTo {
		r.To = sp.to
	}
	budget := limit + 1 + a.budget
	size := limit + 1
	for budget > 0 {
		r.Limit = min(size, budget)
		budget -= r.Limit
		page, err := a.n.RoomEvents(ctx, userID, roomID, r)
		if err != nil {
			return window{}, err
		}
		if page.End != r.From || len(page.Events) > 0 {
			w.touched = true
		}
		for _, ev := range page.Events {
			if keep != nil && !keep(ev) {
				continue
			}
			if len(w.events) == limit {
				// ev is the look-ahead: the next page starts with it.
				w.more, w.end = true, ev.Pos
				if !sp.backwards {
					w.end = ev.Pos - 1
				}
				return w, nil
			}
			w.events = append(w.events, ev)
		}
		if !page.More {
			return w, nil
		}
		r.From = page.End
		size *= 2
	}
	// Out of budget: the next page starts after the last event looked at.
	w.more, w.end = true, r.From
	return w, nil
}
