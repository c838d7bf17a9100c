package relations

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// maxThreadScan caps the threads one /threads page looks at, visible or
// not, participated in or not: a page that used them all ends early with a
// next token, so a room with many threads the user has no part in costs
// a bounded amount per request.
const maxThreadScan = 1000

// ThreadsQuery is a GET /rooms/{roomId}/threads request.
type ThreadsQuery struct {
	UserID, RoomID string
	// Participated keeps only threads the user took part in (sent the
	// root or a reply).
	Participated bool
	// From, with HasFrom, continues after a previous page: threads whose
	// latest event is at or before From.
	From    uint64
	HasFrom bool
	Limit   int
}

// ThreadsPage is a page of a room's thread roots, the most recently active
// first.
type ThreadsPage struct {
	Roots   []*core.Event
	Next    uint64
	HasNext bool
}

// ThreadsPage returns a page of q.RoomID's threads by latest activity,
// keeping roots the user may see. The caller checks that the user may read
// the room at all.
func (r *Relations) ThreadsPage(ctx context.Context, q ThreadsQuery) (ThreadsPage, error) {
	var page ThreadsPage
	if err := ctx.Err(); err != nil {
		return page, err
	}
	q.Limit = min(max(q.Limit, 1), MaxLimit)
	sc := kv.Scan{Prefix: threadPrefix(q.RoomID), Reverse: true, KeysOnly: true}
	if q.HasFrom {
		// Reverse scans start at the largest key at or before From: the
		// key of position From+1 sorts after every thread at From and
		// before every one after it.
		sc.From = kv.Key(tThread, q.RoomID, order(q.From)+1)
	}
	err := r.DB.View(func(tx *kv.Txn) error {
		scanned := 0
		return tx.Each(sc, func(k, _ []byte) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil || len(parts) != 3 {
				return false, fmt.Errorf("relations: thread key %x: malformed", k)
			}
			o, _ := parts[1].(uint64)
			pos := unorder(o)
			rootID, _ := parts[2].(string)
			if len(page.Roots) == q.Limit || scanned == maxThreadScan {
				page.HasNext, page.Next = true, pos
				return false, nil
			}
			scanned++
			root, ok, err := r.VisibleEvent(tx, q.UserID, rootID)
			if err != nil || !ok || root.PDU.RoomID().String() != q.RoomID {
				return err == nil, err
			}
			if q.Participated && string(root.PDU.SenderID()) != q.UserID {
				took, err := tx.Has(threadUserKey(q.RoomID, rootID, q.UserID))
				if err != nil || !took {
					return err == nil, err
				}
			}
			page.Roots = append(page.Roots, root)
			return true, nil
		})
	})
	return page, err
}
