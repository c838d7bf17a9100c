package push

import (
	"sync"
	"sync/atomic"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// New events for an app: an app that embeds the node (a phone app in the
// background, say) wants to hear of each event that reaches one of its
// users, and whether the event notifies them, to show a local notification
// without syncing.
//
// It hangs off the room commit as an indexer that writes nothing
// (core.Indexer): once a batch is durable, its action hands it to observe,
// which does no more than put a reference to the batch's accepted events in
// a bounded queue (and nothing at all when no handler is set). A goroutine of its own then decides, per local member,
// with the same push rule evaluation the unread counts use (eval.go), and calls the handler. Room input never waits for it: when the
// queue is full, the batch's events are dropped and counted
// (NewEventsDropped). The handler is never called with a lock of the node
// held.

// NewEventQueue bounds the committed batches waiting to be looked at.
const NewEventQueue = 256

// NewEvent is an event that reached a local user: an event of another user
// (local or remote) in a room the user is joined to, or the user's own
// invite. A user's own events are not reported to them.
type NewEvent struct {
	// UserID is the local user the event is for.
	UserID  string
	RoomID  string
	EventID string
	Sender  string
	// Type is the event type (m.room.message, m.room.encrypted, ...).
	Type string
	// Notify: the event notifies UserID by their push rules; Highlight: it
	// also highlights (a mention, say).
	Notify, Highlight bool
}

// newEventHook is the observer's state in Push.
type newEventHook struct {
	handler atomic.Pointer[func(NewEvent)]
	dropped atomic.Int64

	mu      sync.Mutex // guards jobs, stop and closed
	jobs    chan newEventJob
	stop    chan struct{}
	closed  bool
	dbInUse sync.Mutex // held while the worker reads the database
	dbGone  bool       // set under dbInUse once the node closes
}

// newEventJob is one committed batch's accepted events.
type newEventJob struct {
	roomID  string
	events  []core.CommittedEvent // not to be changed: the commit's own
	members map[string]string     // local members after the batch: user ID -> join or invite
}

// SetNewEventHandler makes fn hear of every event that reaches a local user
// from now on (nil stops it). fn is called from one goroutine of the node's,
// one event at a time, never with a lock of the node held; it must return
// promptly: while it is slow, new events queue up to a bound and are then
// dropped (NewEventsDropped counts them).
func (n *Push) SetNewEventHandler(fn func(NewEvent)) {
	h := &n.newEvents
	h.mu.Lock()
	defer h.mu.Unlock()
	if fn == nil {
		h.handler.Store(nil)
		return
	}
	if h.closed {
		return
	}
	if h.jobs == nil {
		h.jobs = make(chan newEventJob, NewEventQueue)
		h.stop = make(chan struct{})
		go n.runNewEvents(h.jobs, h.stop)
	}
	h.handler.Store(&fn)
}

// NewEventsDropped counts the events not reported to the new-event handler
// because it was behind.
func (n *Push) NewEventsDropped() int64 { return n.newEvents.dropped.Load() }

// NewEventIndexer hands each durable commit to the new-event observer
// (observe); it writes nothing.
type NewEventIndexer struct {
	core.NoPrepare
	Push *Push
}

// Index returns the hand-over, if the room has local members (observe
// checks for a handler when it runs).
func (x NewEventIndexer) Index(_ *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	if len(c.Members) == 0 || len(c.Events) == 0 {
		return nil, nil
	}
	return func() { x.Push.newEvents.observe(c) }, nil
}

// observe queues a committed batch for the handler. The caller holds the
// room's lock: it must not block.
func (h *newEventHook) observe(c *core.RoomCommit) {
	if h.handler.Load() == nil || len(c.Members) == 0 || len(c.Events) == 0 {
		return
	}
	job := newEventJob{roomID: c.RoomID, events: c.Events, members: c.Members}
	h.mu.Lock()
	jobs := h.jobs
	h.mu.Unlock()
	select {
	case jobs <- job:
	default:
		h.dropped.Add(int64(len(job.events)))
	}
}

// StopNewEvents ends the worker's use of the database (node registers it
// with the core's OnClose, so it runs before the database closes). It does
// not wait for a handler call under way: that is the app's code.
func (n *Push) StopNewEvents() {
	h := &n.newEvents
	h.mu.Lock()
	h.closed = true
	if h.stop != nil {
		close(h.stop)
	}
	h.mu.Unlock()
	h.dbInUse.Lock()
	h.dbGone = true
	h.dbInUse.Unlock()
}

func (n *Push) runNewEvents(jobs <-chan newEventJob, stop <-chan struct{}) {
	for {
		var job newEventJob
		select {
		case <-stop:
			return
		case job = <-jobs:
		}
		out, err := n.decideNewEvents(job)
		if err != nil {
			n.Logger().Warn("new events: push rules", "room_id", job.roomID, "err", err)
			continue
		}
		for _, ev := range out {
			fn := n.newEvents.handler.Load()
			if fn == nil {
				break
			}
			n.callNewEventHandler(*fn, ev)
		}
	}
}

// callNewEventHandler calls fn, logging rather than crashing the node if it
// panics.
func (n *Push) callNewEventHandler(fn func(NewEvent), ev NewEvent) {
	defer func() {
		if r := recover(); r != nil {
			n.Logger().Error("new events: handler panicked", "panic", r)
		}
	}()
	fn(ev)
}

// decideNewEvents applies the push rules to a batch's events for each local
// member they concern.
func (n *Push) decideNewEvents(job newEventJob) ([]NewEvent, error) {
	h := &n.newEvents
	h.dbInUse.Lock()
	defer h.dbInUse.Unlock()
	if h.dbGone {
		return nil, nil
	}
	var out []NewEvent
	err := n.DB.View(func(tx *kv.Txn) error {
		look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return n.LoadPDU(tx, id) }}
		for _, c := range job.events {
			sender := string(c.PDU.SenderID())
			var ev *pushEvent
			var pc pushContext
			for userID, m := range job.members {
				if !pushRecipient(c.PDU, userID, m, sender) {
					continue
				}
				if ev == nil {
					ev = newPushEvent(c.PDU)
					state := c.State
					pc = look.context(func() (*core.State, error) { return state, nil }, sender)
				}
				ur, err := n.userRules(tx, userID)
				if err != nil {
					return err
				}
				v := ur.eval(ev, userID, pc)
				if look.err != nil {
					return look.err
				}
				out = append(out, NewEvent{
					UserID: userID, RoomID: job.roomID, EventID: c.PDU.EventID(), Sender: sender,
					Type: c.PDU.Type(), Notify: v.Notify, Highlight: v.Highlight,
				})
			}
		}
		return nil
	})
	return out, err
}
