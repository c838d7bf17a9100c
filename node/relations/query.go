package relations

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Limits on one /relations page, so a hostile request costs little.
const (
	// MaxLimit caps a page's events.
	MaxLimit = 100
	// RecurseDepth is how many levels of relations recurse follows (the
	// spec asks for at least 3).
	RecurseDepth = 3
	// maxRecurseRelations caps the relations a recursive page gathers
	// before paginating: a parent with more descendants than this is
	// served its newest (or oldest) ones.
	maxRecurseRelations = 2000
)

// RelationsQuery is a GET /rooms/{roomId}/relations/{eventId} request.
type RelationsQuery struct {
	UserID, RoomID, EventID string
	// RelType and EventType narrow the relations ("" for any; an event
	// type only with a rel_type).
	RelType, EventType string
	// From is where the page starts: backwards, relations at or before
	// From; forwards, those after it. Without HasFrom, the newest
	// (backwards) or the oldest (forwards).
	From    uint64
	HasFrom bool
	// To, with HasTo, is where it stops: backwards, relations after To;
	// forwards, those at or before To.
	To      uint64
	HasTo   bool
	Forward bool
	Limit   int
	// Recurse includes relations of relations, RecurseDepth levels deep.
	Recurse bool
}

// RelationsPage is a page of a parent's relating events.
type RelationsPage struct {
	// Events are the relating events the user may see, in the page's
	// direction.
	Events []*core.Event
	// Next, with HasNext, is where the next page starts.
	Next    uint64
	HasNext bool
}

// RelationsPage returns a page of the events that relate to q.EventID.
// The parent must be an event of q.RoomID that the user may see, or the
// answer is core.ErrNotFound, whether it exists or not. Relations the user
// may not see are left out (and use up the limit, so a page is bounded
// work).
func (r *Relations) RelationsPage(ctx context.Context, q RelationsQuery) (RelationsPage, error) {
	var page RelationsPage
	if err := ctx.Err(); err != nil {
		return page, err
	}
	q.Limit = min(max(q.Limit, 1), MaxLimit)
	err := r.DB.View(func(tx *kv.Txn) error {
		parent, ok, err := r.VisibleEvent(tx, q.UserID, q.EventID)
		if err != nil {
			return err
		}
		if !ok || parent.PDU.RoomID().String() != q.RoomID {
			return fmt.Errorf("event %s in room %s: %w", q.EventID, q.RoomID, core.ErrNotFound)
		}
		var recs []*relRecord
		if q.Recurse {
			recs, err = recursive(tx, q)
		} else {
			recs, err = direct(tx, q)
		}
		if err != nil {
			return err
		}
		if len(recs) > q.Limit {
			recs = recs[:q.Limit]
			page.HasNext = true
			page.Next = recs[len(recs)-1].Pos
			if !q.Forward {
				page.Next--
			}
		}
		for _, rec := range recs {
			ev, ok, err := r.VisibleEvent(tx, q.UserID, rec.EventID)
			if err != nil {
				return err
			}
			if ok {
				page.Events = append(page.Events, ev)
			}
		}
		return nil
	})
	return page, err
}

// inWindow reports whether a relation at pos is inside q's from/to window.
func (q *RelationsQuery) inWindow(pos uint64) bool {
	if q.Forward {
		return (!q.HasFrom || later(pos, q.From)) && (!q.HasTo || !later(pos, q.To))
	}
	return (!q.HasFrom || !later(pos, q.From)) && (!q.HasTo || later(pos, q.To))
}

// direct reads up to q.Limit+1 of the parent's own relations in q's
// window and direction.
func direct(tx *kv.Txn, q RelationsQuery) ([]*relRecord, error) {
	sc := kv.Scan{Prefix: relPrefix(q.RoomID, q.EventID, q.RelType, q.EventType), Reverse: !q.Forward}
	if q.HasFrom {
		if q.Forward {
			sc.From = relKeyAt(q.RoomID, q.EventID, q.RelType, q.EventType, order(q.From)+1)
		} else {
			sc.From = relKeyAt(q.RoomID, q.EventID, q.RelType, q.EventType, order(q.From))
		}
	}
	var out []*relRecord
	err := tx.Each(sc, func(_, v []byte) (bool, error) {
		rec, err := decodeRel(v)
		if err != nil {
			return false, err
		}
		if !q.inWindow(rec.Pos) {
			return false, nil // past To
		}
		out = append(out, rec)
		return len(out) <= q.Limit, nil
	})
	return out, err
}

// recursive gathers the parent's relations and theirs, RecurseDepth
// levels deep, of every rel_type (the filters apply to what is returned,
// not to the walk, as Synapse has it), and returns those in q's window,
// sorted in its direction.
func recursive(tx *kv.Txn, q RelationsQuery) ([]*relRecord, error) {
	var all []*relRecord
	seen := map[string]bool{q.EventID: true}
	frontier := []string{q.EventID}
	for depth := 0; depth < RecurseDepth && len(frontier) > 0 && len(all) < maxRecurseRelations; depth++ {
		var next []string
		for _, parent := range frontier {
			err := tx.Each(kv.Scan{Prefix: relPrefix(q.RoomID, parent, "", "")}, func(_, v []byte) (bool, error) {
				rec, err := decodeRel(v)
				if err != nil {
					return false, err
				}
				if seen[rec.EventID] {
					return true, nil
				}
				seen[rec.EventID] = true
				all = append(all, rec)
				next = append(next, rec.EventID)
				return len(all) < maxRecurseRelations, nil
			})
			if err != nil {
				return nil, err
			}
		}
		frontier = next
	}
	out := all[:0]
	for _, rec := range all {
		if (q.RelType == "" || rec.RelType == q.RelType) && (q.EventType == "" || rec.EventType == q.EventType) && q.inWindow(rec.Pos) {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b *relRecord) int {
		if q.Forward {
			return cmp.Compare(order(a.Pos), order(b.Pos))
		}
		return cmp.Compare(order(b.Pos), order(a.Pos))
	})
	return out, nil
}

// RelatedBy reports whether some event relates to eventID (in roomID) with
// one of relTypes (any, when nil) from one of senders (anyone, when nil):
// the event filter's related_by_rel_types and related_by_senders. It reads
// at most maxRecurseRelations relations of the event.
func (r *Relations) RelatedBy(ctx context.Context, roomID, eventID string, relTypes, senders []string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	found := false
	err := r.DB.View(func(tx *kv.Txn) error {
		n := 0
		return tx.Each(kv.Scan{Prefix: relPrefix(roomID, eventID, "", "")}, func(_, v []byte) (bool, error) {
			rec, err := decodeRel(v)
			if err != nil {
				return false, err
			}
			n++
			found = (relTypes == nil || slices.Contains(relTypes, rec.RelType)) &&
				(senders == nil || slices.Contains(senders, rec.Sender))
			return !found && n < maxRecurseRelations, nil
		})
	})
	return found, err
}
