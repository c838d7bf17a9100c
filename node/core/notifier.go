package core

import (
	"context"
	"sync"

	"github.com/edgenode/edgenode/kv"
)

// notifier wakes readers waiting for something that concerns one user. Each
// waiting user has one channel, closed and replaced when something for them
// commits, so a wake-up touches only the users concerned, idle waiters cost
// one map entry and no goroutine, and a user's entry is dropped when their
// last waiter leaves.
type notifier struct {
	mu    sync.Mutex
	users map[string]*userWaiters
	// stopping is closed when the node begins to shut down: every wait ends.
	stopping chan struct{}
	stopOnce sync.Once
}

type userWaiters struct {
	ch   chan struct{}
	refs int
}

func newNotifier() *notifier {
	return &notifier{users: map[string]*userWaiters{}, stopping: make(chan struct{})}
}

// Wake tells every waiter of the given users that something changed.
func (nt *notifier) Wake(userIDs ...string) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	for _, u := range userIDs {
		if w, ok := nt.users[u]; ok {
			close(w.ch)
			w.ch = make(chan struct{})
		}
	}
}

// Listener waits for changes concerning one user. Take it before reading
// what is new, then Wait: nothing committed after the Listener was taken can
// be missed.
type Listener struct {
	nt   *notifier
	user string
	ch   chan struct{}
}

// Listen starts listening for changes that concern userID. Close it when done.
func (n *Node) Listen(userID string) *Listener {
	nt := n.Notifier
	nt.mu.Lock()
	defer nt.mu.Unlock()
	w, ok := nt.users[userID]
	if !ok {
		w = &userWaiters{ch: make(chan struct{})}
		nt.users[userID] = w
	}
	w.refs++
	return &Listener{nt: nt, user: userID, ch: w.ch}
}

// Wait blocks until something for the user changes after the Listener was
// taken (or last woke), ctx ends, or the node begins to shut down. It
// reports whether there was a change.
func (l *Listener) Wait(ctx context.Context) bool {
	select {
	case <-l.nt.stopping:
		return false
	case <-l.ch:
		l.nt.mu.Lock()
		l.ch = l.nt.users[l.user].ch
		l.nt.mu.Unlock()
		return true
	case <-ctx.Done():
		return false
	}
}

// Close stops listening.
func (l *Listener) Close() {
	nt := l.nt
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if w, ok := nt.users[l.user]; ok {
		if w.refs--; w.refs <= 0 {
			delete(nt.users, l.user)
		}
	}
}

// Notify wakes the waiters of the given local users; other parts of the node
// call it after committing something for them.
func (n *Node) Notify(userIDs ...string) { n.Notifier.Wake(userIDs...) }

// BeginShutdown ends every wait, now and later, so long-polling readers
// answer at once and an HTTP server's graceful shutdown does not sit out
// their timeouts. The node keeps working until Close.
func (n *Node) BeginShutdown() { n.Notifier.stopOnce.Do(func() { close(n.Notifier.stopping) }) }

// NotifierIndexer wakes the room's local users once a commit is durable
// (RoomCommit.Wake); it writes nothing.
type NotifierIndexer struct {
	NoPrepare
	Node *Node
}

// Index returns the wake-up.
func (x NotifierIndexer) Index(_ *kv.Txn, c *RoomCommit, _ IndexPlan) (func(), error) {
	return func() { x.Node.Notifier.Wake(c.Wake...) }, nil
}
