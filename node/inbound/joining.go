package inbound

import (
	"context"
	"sync"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
)

// Rooms being joined over federation.
//
// A resident server queues its events for a joining server as soon as the
// join commits there, which is while send_join is answered: its first
// transaction (for a new joiner, the room's sticky events, sticky_fed.go)
// can reach this node before the send_join answer has been checked and the
// room stored. Such PDUs would be refused as being for an unknown room and,
// the transaction answered 200, never sent again. So an inbound
// transaction with PDUs for a room a local user is joining waits for the
// join to end (at most joinWaitMax) before it is input.

// joinWaitMax bounds how long inbound PDUs wait for a join in progress.
const joinWaitMax = 30 * time.Second

// joiningRooms tracks the rooms with a remote join in progress; its zero
// value is ready.
type joiningRooms struct {
	mu sync.Mutex
	m  map[string]*joinInProgress
}

type joinInProgress struct {
	n    int           // joins of the room in progress
	done chan struct{} // closed when the last ends
}

// begin notes a join of roomID in progress; the returned func ends it.
func (j *joiningRooms) begin(roomID string) func() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m == nil {
		j.m = map[string]*joinInProgress{}
	}
	p := j.m[roomID]
	if p == nil {
		p = &joinInProgress{done: make(chan struct{})}
		j.m[roomID] = p
	}
	p.n++
	return func() {
		j.mu.Lock()
		defer j.mu.Unlock()
		if p.n--; p.n == 0 {
			close(p.done)
			delete(j.m, roomID)
		}
	}
}

// wait waits until no join of roomID is in progress, ctx is done or
// joinWaitMax has passed; it reports whether it waited for anything.
func (j *joiningRooms) wait(ctx context.Context, roomID string) bool {
	j.mu.Lock()
	p := j.m[roomID]
	j.mu.Unlock()
	if p == nil {
		return false
	}
	t := time.NewTimer(joinWaitMax)
	defer t.Stop()
	select {
	case <-p.done:
	case <-ctx.Done():
	case <-t.C:
	}
	return true
}

// awaitJoins waits for the joins in progress of the rooms headers name that
// versions does not know; it reports whether it waited (then the rooms
// should be looked up again).
func (n *Inbound) awaitJoins(ctx context.Context, headers []*pduHeader, versions map[string]gomatrixserverlib.RoomVersion) bool {
	waited := false
	for _, h := range headers {
		if h == nil {
			continue
		}
		if _, known := versions[h.RoomID]; !known && n.joining.wait(ctx, h.RoomID) {
			waited = true
		}
	}
	return waited
}
