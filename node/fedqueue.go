package node

import (
	"errors"
	"slices"
	"sync"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Outbound federation queues.
//
// When a room batch commits accepted events that originate on this server,
// each is queued, in the commit's own transaction, for every other server
// with a joined member in the room (after the batch, or at its start: a
// server whose last user leaves or is kicked still hears of it). A crash can
// therefore never lose a queued event: either the event and its queue
// entries are on disk, or neither is.
//
// Per destination the queue is tFedQueue (destination, stream position) ->
// event ID (and, for a sticky event, its end: sticky_fed.go), oldest first, plus a tFedDest record counting the entries and
// holding the transaction in flight, so a retry, even after a restart,
// reuses its transaction ID (the receiver deduplicates by it).
//
// Every write to tFedQueue and tFedDest happens under the room-event
// stream's lock (room commits, and n.stream.Commit(0, ...) for the sender's
// writes), so they are serialized and a room commit never fails on a
// conflict with the sender.
//
// This file is the enqueueing side (the commit's indexer, the joined-server
// index, the cap); fedqueue_txn.go is the sender's side (transactions and
// their acks).

// DefaultFedQueueCap bounds each destination's queue. When a commit pushes a
// queue past it, the oldest entries are dropped (and logged): a peer gone
// for long catches up by backfill rather than by a replay of everything.
const DefaultFedQueueCap = 10000

// fedState is the node's in-memory side of the outbound queues; its zero
// value is ready.
type fedState struct {
	mu     sync.Mutex
	notify func(dests []string)
	cap    int // 0: DefaultFedQueueCap
}

// fedDestRecord is a destination's bookkeeping.
type fedDestRecord struct {
	// Count is the number of entries queued.
	Count int `json:"c"`
	// TxnID and TxnUpTo describe the transaction in flight: its ID and the
	// last position it carries. Empty when none is.
	TxnID   string `json:"t,omitempty"`
	TxnUpTo uint64 `json:"u,omitempty"`
	// Head is a position at or before the oldest entry: scans seek to it
	// rather than step over the tombstones of entries acked or dropped.
	Head uint64 `json:"h,omitempty"`
	// Dropped counts entries dropped by the cap since the last ack (for
	// logging once per run of drops, not once per commit).
	Dropped int `json:"d,omitempty"`
	// Split, when not 0, caps the items (PDUs and EDUs) of the
	// transactions formed for dest, while one it refused for its content
	// is taken apart (fedqueue_split.go). Each delivery doubles it until
	// it no longer binds.
	Split int `json:"s,omitempty"`
}

// The outbound federation tables: per destination server a queue of local
// events to send and its bookkeeping.
const (
	tFedQueue = "fedqueue" // destination, stream position -> event ID [NUL, sticky end] (fedQueueValue)
	tFedDest  = "feddest"  // destination -> fedDestRecord (count, transaction in flight, scan head)
)

func fedQueueKey(dest string, pos uint64) []byte { return kv.Key(tFedQueue, dest, pos) }
func fedQueuePrefix(dest string) []byte          { return kv.Key(tFedQueue, dest) }
func fedDestKey(dest string) []byte              { return kv.Key(tFedDest, dest) }

// SetFederationNotify registers fn to be called, after each commit that
// queued outbound events, with the destinations that got new work. fn must
// not block (it runs on the committing goroutine). nil unregisters.
func (n *Node) SetFederationNotify(fn func(dests []string)) {
	n.fed.mu.Lock()
	defer n.fed.mu.Unlock()
	n.fed.notify = fn
}

// setFedQueueCap changes the per-destination queue cap (tests).
func (n *Node) setFedQueueCap(c int) {
	n.fed.mu.Lock()
	defer n.fed.mu.Unlock()
	n.fed.cap = c
}

func (n *Node) fedQueueCap() int {
	n.fed.mu.Lock()
	defer n.fed.mu.Unlock()
	if n.fed.cap <= 0 {
		return DefaultFedQueueCap
	}
	return n.fed.cap
}

// fedQueued tells the registered sender about new work.
func (n *Node) fedQueued(dests []string) {
	if len(dests) == 0 {
		return
	}
	n.fed.mu.Lock()
	fn := n.fed.notify
	n.fed.mu.Unlock()
	if fn != nil {
		fn(dests)
	}
}

// outboundIndexer queues the batch's accepted local events for every other
// server in the room (enqueueOutbound), and tells the sender once they are
// durable.
type outboundIndexer struct {
	core.NoPrepare
	n *Node
}

// Index queues the batch's events; the sender hears of the destinations
// after the commit.
func (x outboundIndexer) Index(tx *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	dests, err := x.n.enqueueOutbound(tx, c)
	if err != nil || len(dests) == 0 {
		return nil, err
	}
	return func() { x.n.fedQueued(dests) }, nil
}

// enqueueOutbound queues the batch's accepted local events for every other
// server in the room, in the commit transaction, after the commit has
// brought the joined-servers index up to date. It returns the destinations
// that got new entries.
func (n *Node) enqueueOutbound(tx *kv.Txn, c *core.RoomCommit) ([]string, error) {
	var local []core.CommittedEvent
	for _, e := range c.Events {
		if core.ServerOf(string(e.PDU.SenderID())) == n.ServerName() {
			local = append(local, e)
		}
	}
	if len(local) == 0 {
		return nil, nil
	}
	dests := map[string]bool{}
	err := tx.Each(kv.Scan{Prefix: core.RoomServerPrefix(c.RoomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		s, err := kv.LastString(k)
		if err == nil && s != n.ServerName() {
			dests[s] = true
		}
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	// Servers whose members all left (or were kicked or banned) in this
	// batch still get its events: they were joined when it began.
	for _, ch := range c.MemberChanges {
		if s := core.ServerOf(ch.UserID); s != "" && s != n.ServerName() && ch.OldMembership == spec.Join {
			dests[s] = true
		}
	}
	if len(dests) == 0 {
		return nil, nil
	}
	limit := n.fedQueueCap()
	nowMS := n.Now().UnixMilli()
	out := make([]string, 0, len(dests))
	for dest := range dests {
		out = append(out, dest)
	}
	slices.Sort(out)
	for _, dest := range out {
		var rec fedDestRecord
		if err := tx.GetJSON(fedDestKey(dest), &rec); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return nil, err
		}
		for _, e := range local {
			if err := tx.Set(fedQueueKey(dest, e.Pos), outboundValue(e.PDU, nowMS)); err != nil {
				return nil, err
			}
			rec.Count++
		}
		if rec.Count > limit {
			dropped, head, err := dropOldest(tx, dest, rec.Head, rec.Count-limit, nowMS)
			if err != nil {
				return nil, err
			}
			if dropped > 0 && (rec.Dropped == 0 || (rec.Dropped+dropped)/1000 != rec.Dropped/1000) {
				n.Logger().Warn("outbound federation queue full: dropping oldest events",
					"destination", dest, "dropped_since_last_delivery", rec.Dropped+dropped, "cap", limit)
			}
			rec.Count -= dropped
			rec.Dropped += dropped
			rec.Head = max(rec.Head, head)
		}
		if err := tx.SetJSON(fedDestKey(dest), rec); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dropOldest deletes up to k of dest's oldest queue entries (scanning from
// position head), skipping those keepOnOverflow keeps, and returns how many
// it deleted and the new head: a position at or before the oldest entry
// left (the first one kept, else the one after the last deleted).
func dropOldest(tx *kv.Txn, dest string, head uint64, k int, nowMS int64) (int, uint64, error) {
	newHead, kept, n := head, false, 0
	deleted, err := tx.DeleteEach(kv.Scan{Prefix: fedQueuePrefix(dest), From: fedQueueKey(dest, head)}, func(key, v []byte, del func([]byte)) (bool, error) {
		pos, err := kv.LastUint(key)
		if err != nil {
			return false, err
		}
		if keepOnOverflow(v, nowMS) {
			if !kept {
				newHead, kept = pos, true
			}
			return true, nil
		}
		del(key)
		n++
		if !kept {
			newHead = pos + 1
		}
		return n < k, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return deleted, newHead, nil
}
