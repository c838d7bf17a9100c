package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/edgenode/edgenode/kv"
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

func fedQueueKey(dest string, pos uint64) []byte { return kv.Key(tFedQueue, dest, pos) }
func fedQueuePrefix(dest string) []byte          { return kv.Key(tFedQueue, dest) }
func fedDestKey(dest string) []byte              { return kv.Key(tFedDest, dest) }
func roomServerKey(roomID, server string) []byte { return kv.Key(tRoomServers, roomID, server) }
func roomServerPrefix(roomID string) []byte      { return kv.Key(tRoomServers, roomID) }

// serverOf is the server name part of a user ID ("" if it has none).
func serverOf(userID string) string {
	_, server, ok := strings.Cut(userID, ":")
	if !ok || !strings.HasPrefix(userID, "@") {
		return ""
	}
	return server
}

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

// noteJoinedServer keeps the room's joined-servers index (tRoomServers: room
// ID, server -> number of joined members) as a member key's membership
// changes from was to now. Runs in the commit transaction.
func (b *roomBatch) noteJoinedServer(tx *kv.Txn, userID, was, now string) error {
	server := serverOf(userID)
	if server == "" {
		return nil
	}
	wasJoined, isJoined := was == spec.Join, now == spec.Join
	if wasJoined == isJoined {
		return nil
	}
	key := roomServerKey(b.roomID, server)
	var count uint64
	v, err := tx.Get(key)
	switch {
	case err == nil && len(v) == 8:
		count = binary.BigEndian.Uint64(v)
	case err != nil && !errors.Is(err, kv.ErrNotFound):
		return err
	}
	if isJoined {
		count++
	} else if count > 0 {
		count--
	}
	if count == 0 {
		return tx.Delete(key)
	}
	return tx.Set(key, binary.BigEndian.AppendUint64(nil, count))
}

// membershipOf is the membership a member event sets ("" for no event).
func (b *roomBatch) membershipOf(tx *kv.Txn, eventID string) (string, error) {
	if eventID == "" {
		return "", nil
	}
	if p, ok := b.byID[eventID]; ok {
		return p.pdu.Membership()
	}
	ev, err := b.n.loadPDU(tx, eventID)
	if err != nil {
		return "", err
	}
	return ev.Membership()
}

// outboundIndexer queues the batch's accepted local events for every other
// server in the room (enqueueOutbound), and tells the sender once they are
// durable.
type outboundIndexer struct {
	noPrepare
	n *Node
}

// Index queues the batch's events; the sender hears of the destinations
// after the commit.
func (x outboundIndexer) Index(tx *kv.Txn, c *RoomCommit, _ IndexPlan) (func(), error) {
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
func (n *Node) enqueueOutbound(tx *kv.Txn, c *RoomCommit) ([]string, error) {
	var local []CommittedEvent
	for _, e := range c.Events {
		if serverOf(string(e.PDU.SenderID())) == n.serverName {
			local = append(local, e)
		}
	}
	if len(local) == 0 {
		return nil, nil
	}
	dests := map[string]bool{}
	err := tx.Each(kv.Scan{Prefix: roomServerPrefix(c.RoomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		s, err := kv.LastString(k)
		if err == nil && s != n.serverName {
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
		if s := serverOf(ch.UserID); s != "" && s != n.serverName && ch.OldMembership == spec.Join {
			dests[s] = true
		}
	}
	if len(dests) == 0 {
		return nil, nil
	}
	limit := n.fedQueueCap()
	nowMS := n.now().UnixMilli()
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
				n.log.Warn("outbound federation queue full: dropping oldest events",
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

// queuedPDU is one entry of a destination's queue.
type queuedPDU struct {
	pos     uint64
	eventID string
}

// readQueue reads up to limit of dest's oldest entries from position head,
// stopping after position maxPos when it is not 0.
func readQueue(tx *kv.Txn, dest string, head uint64, limit int, maxPos uint64) ([]queuedPDU, error) {
	var out []queuedPDU
	err := tx.Each(kv.Scan{Prefix: fedQueuePrefix(dest), From: fedQueueKey(dest, head)}, func(k, v []byte) (bool, error) {
		pos, err := kv.LastUint(k)
		if err != nil {
			return false, err
		}
		if maxPos != 0 && pos > maxPos {
			return false, nil
		}
		id, _, _ := parseFedQueueValue(v)
		out = append(out, queuedPDU{pos: pos, eventID: id})
		return len(out) < limit, nil
	})
	return out, err
}

// maxTxnPDUBytes bounds the PDU JSON of one outbound transaction, so that
// with the EDUs (maxTxnEDUBytes) it stays under the receiver's 1 MiB body
// limit: 50 PDUs of up to 64 KiB each would not. A single PDU always goes.
const maxTxnPDUBytes = 448 << 10

// loadQueued returns the event IDs and JSON of the queued entries that fit
// in maxTxnPDUBytes, oldest first, and how many entries of q they cover
// (the transaction's last position is q[used-1].pos). An entry whose event
// cannot be found is skipped (it is still acknowledged with the rest).
func (n *Node) loadQueued(tx *kv.Txn, q []queuedPDU) (ids []string, events []json.RawMessage, used int, err error) {
	size := 0
	for _, e := range q {
		rec, err := loadEventRecord(tx, e.eventID)
		if errors.Is(err, ErrNotFound) {
			n.log.Warn("queued outbound event not found", "event_id", e.eventID)
			used++
			continue
		}
		if err != nil {
			return nil, nil, 0, err
		}
		js, err := rec.json(tx, e.eventID)
		if err != nil {
			return nil, nil, 0, err
		}
		if len(events) > 0 && size+len(js) > maxTxnPDUBytes {
			break
		}
		size += len(js)
		used++
		ids = append(ids, e.eventID)
		events = append(events, js)
	}
	return ids, events, used, nil
}

// PendingPDUs returns up to limit of the events queued for dest, oldest
// first, and upTo, the queue position of the last one (acknowledged up to
// there once delivered). Nothing pending is upTo 0.
func (n *Node) PendingPDUs(ctx context.Context, dest string, limit int) (ids []string, events []json.RawMessage, upTo uint64, err error) {
	if limit <= 0 {
		return nil, nil, 0, fmt.Errorf("%w: limit %d", ErrInvalidParam, limit)
	}
	err = n.db.View(func(tx *kv.Txn) error {
		var rec fedDestRecord
		if err := tx.GetJSON(fedDestKey(dest), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return nil
			}
			return err
		}
		q, err := readQueue(tx, dest, rec.Head, limit, 0)
		if err != nil || len(q) == 0 {
			return err
		}
		var used int
		ids, events, used, err = n.loadQueued(tx, q)
		if err == nil {
			upTo = q[used-1].pos
		}
		return err
	})
	return ids, events, upTo, err
}

// OutboundTxn is a federation transaction to send to one destination.
type OutboundTxn struct {
	// TxnID is stable across retries of the same transaction, even across
	// a restart.
	TxnID    string
	EventIDs []string
	PDUs     []json.RawMessage
	// EDUs are the queued EDUs the transaction carries (eduqueue.go).
	EDUs []OutboundEDU
	// UpTo is the PDU queue position acknowledged (AckAndNext) once it is
	// delivered (0 for a transaction of EDUs only).
	UpTo uint64
}

// loadFedDest reads dest's PDU bookkeeping; a destination never queued for
// has the zero record.
func loadFedDest(tx *kv.Txn, dest string) (fedDestRecord, error) {
	var rec fedDestRecord
	err := tx.GetJSON(fedDestKey(dest), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		err = nil
	}
	return rec, err
}

// inFlightTxn rebuilds dest's transaction in flight, or returns nil if
// nothing it carried is left (every PDU dropped by the cap, and no EDUs).
func (n *Node) inFlightTxn(tx *kv.Txn, dest string, rec fedDestRecord, limit int) (*OutboundTxn, error) {
	var q []queuedPDU
	if rec.TxnUpTo > 0 {
		var err error
		if q, err = readQueue(tx, dest, rec.Head, limit, rec.TxnUpTo); err != nil {
			return nil, err
		}
	}
	erec, err := loadEDUDest(tx, dest)
	if err != nil {
		return nil, err
	}
	edus, err := loadEDUs(tx, dest, erec.InFlight)
	if err != nil || (len(q) == 0 && len(edus) == 0) {
		return nil, err
	}
	ids, events, used, err := n.loadQueued(tx, q)
	if err != nil {
		return nil, err
	}
	upTo := rec.TxnUpTo
	if len(q) > 0 {
		upTo = q[used-1].pos
	}
	return &OutboundTxn{TxnID: rec.TxnID, EventIDs: ids, PDUs: events, EDUs: edus, UpTo: upTo}, nil
}

// NextTransaction returns the transaction to send to dest next, or nil when
// nothing is queued. If a transaction is in flight (sent, not yet
// acknowledged), it is returned again with the same ID, carrying the same
// events (less any dropped by the queue cap) and EDUs; otherwise up to
// limit of the oldest queued events and up to 100 queued EDUs form a new
// one, whose ID and contents are stored before it is returned.
func (n *Node) NextTransaction(ctx context.Context, dest string, limit int) (*OutboundTxn, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalidParam, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Most calls (nothing queued, or a retry) only read: answer them
	// without a write, which would be a synced commit.
	var out *OutboundTxn
	write := false
	err := n.db.View(func(tx *kv.Txn) error {
		rec, err := loadFedDest(tx, dest)
		if err != nil {
			return err
		}
		if rec.TxnID == "" {
			erec, err := loadEDUDest(tx, dest)
			write = rec.Count > 0 || erec.pending() > 0
			return err
		}
		out, err = n.inFlightTxn(tx, dest, rec, limit)
		write = err == nil && out == nil
		return err
	})
	if err != nil || !write {
		if err != nil {
			err = fmt.Errorf("next transaction for %s: %w", dest, err)
		}
		return out, err
	}
	// EDU enqueues (under other locks) may write dest's EDU record
	// meanwhile: a conflict runs this again.
	err = retryConflicts(ctx, func() error {
		out = nil
		_, err := n.stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
			var err error
			out, err = n.formTxn(tx, dest, limit)
			return err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("next transaction for %s: %w", dest, err)
	}
	return out, nil
}

// formTxn is NextTransaction's write, inside tx (under the stream's lock):
// the transaction in flight if there is one, else a new one from the
// oldest queued events and EDUs, whose ID is stored; nil when nothing is
// queued.
func (n *Node) formTxn(tx *kv.Txn, dest string, limit int) (*OutboundTxn, error) {
	rec, err := loadFedDest(tx, dest)
	if err != nil {
		return nil, err
	}
	if rec.TxnID != "" {
		if out, err := n.inFlightTxn(tx, dest, rec, limit); err != nil || out != nil {
			return out, err
		}
		rec.TxnID, rec.TxnUpTo = "", 0 // everything it carried dropped: start afresh
	}
	pduLimit, eduLimit := limit, maxTxnEDUs
	if rec.Split > 0 {
		pduLimit = min(limit, rec.Split)
	}
	q, err := readQueue(tx, dest, rec.Head, pduLimit, 0)
	if err != nil {
		return nil, err
	}
	ids, events, used, err := n.loadQueued(tx, q)
	if err != nil {
		return nil, err
	}
	if rec.Split > 0 {
		eduLimit = rec.Split - used
	}
	refs, edus, err := readEDUs(tx, dest, eduLimit)
	if err != nil {
		return nil, err
	}
	erec, err := loadEDUDest(tx, dest)
	if err != nil {
		return nil, err
	}
	erec.InFlight = refs
	if len(q) > 0 {
		rec.TxnUpTo = q[used-1].pos
	}
	if len(q) > 0 || len(refs) > 0 {
		rec.TxnID = fmt.Sprintf("%d-%s", rec.TxnUpTo, randomString(12))
	}
	if err := tx.SetJSON(fedDestKey(dest), rec); err != nil {
		return nil, err
	}
	if err := saveEDUDest(tx, dest, erec); err != nil || rec.TxnID == "" {
		return nil, err
	}
	return &OutboundTxn{TxnID: rec.TxnID, EventIDs: ids, PDUs: events, EDUs: edus, UpTo: rec.TxnUpTo}, nil
}

// ackTransaction records that txn, returned by NextTransaction for dest,
// was delivered: its events and EDUs leave the queues.
func (n *Node) ackTransaction(ctx context.Context, dest string, txn *OutboundTxn) error {
	return n.ack(ctx, dest, txn.UpTo, txn.TxnID)
}

// ackPDUs removes dest's queued events up to position upTo (delivered) and
// ends the transaction in flight, with its EDUs, if it carried nothing
// later.
func (n *Node) ackPDUs(ctx context.Context, dest string, upTo uint64) error {
	return n.ack(ctx, dest, upTo, "")
}

// ack removes dest's queued events up to upTo and, if the transaction in
// flight carried nothing later (and is txnID, unless that is ""), ends it
// and removes its EDUs.
func (n *Node) ack(ctx context.Context, dest string, upTo uint64, txnID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := retryConflicts(ctx, func() error {
		_, err := n.stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
			return ackIn(tx, dest, upTo, txnID)
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("ack outbound transaction for %s: %w", dest, err)
	}
	return nil
}

// ackIn is ack's write, inside tx (under the stream's lock).
func ackIn(tx *kv.Txn, dest string, upTo uint64, txnID string) error {
	var rec fedDestRecord
	err := tx.GetJSON(fedDestKey(dest), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	deleted, _, err := tx.DeleteUpTo(kv.Scan{Prefix: fedQueuePrefix(dest), From: fedQueueKey(dest, rec.Head)}, upTo, 0)
	if err != nil {
		return err
	}
	rec.Count = max(0, rec.Count-deleted)
	rec.Head = max(rec.Head, upTo+1)
	rec.Dropped = 0
	if rec.TxnID != "" && rec.TxnUpTo <= upTo && (txnID == "" || txnID == rec.TxnID) {
		rec.TxnID, rec.TxnUpTo = "", 0
		rec.Split = widenSplit(rec.Split)
		if err := ackEDUs(tx, dest); err != nil {
			return err
		}
	}
	// The record stays when the queue empties: its Head saves the next
	// scan from stepping over the tombstones of everything acked.
	return tx.SetJSON(fedDestKey(dest), rec)
}

// AckAndNext records that txn, returned by NextTransaction (or an earlier
// AckAndNext) for dest, was delivered, so its events and EDUs leave the
// queues, and returns the next transaction, in one commit:
// a sender working through a backlog syncs once per transaction rather
// than twice.
func (n *Node) AckAndNext(ctx context.Context, dest string, txn *OutboundTxn, limit int) (*OutboundTxn, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", ErrInvalidParam, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var next *OutboundTxn
	err := retryConflicts(ctx, func() error {
		next = nil
		_, err := n.stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
			if err := ackIn(tx, dest, txn.UpTo, txn.TxnID); err != nil {
				return err
			}
			var err error
			next, err = n.formTxn(tx, dest, limit)
			return err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ack and next transaction for %s: %w", dest, err)
	}
	return next, nil
}

// Destinations lists the servers with queued outbound events or EDUs.
func (n *Node) Destinations(ctx context.Context) ([]string, error) {
	var out []string
	err := n.db.View(func(tx *kv.Txn) error {
		err := tx.Each(kv.Scan{Prefix: kv.Key(tFedDest)}, func(k, v []byte) (bool, error) {
			dest, err := kv.LastString(k)
			if err != nil {
				return false, err
			}
			var rec fedDestRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return false, err
			}
			if rec.Count > 0 || rec.TxnID != "" {
				out = append(out, dest)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		// Destinations with EDUs only (a record exists only while some
		// are queued or in flight).
		return tx.Each(kv.Scan{Prefix: kv.Key(tEDUDest), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			dest, err := kv.LastString(k)
			if err == nil && !slices.Contains(out, dest) {
				out = append(out, dest)
			}
			return err == nil, err
		})
	})
	return out, err
}

// JoinedServers lists the servers with a joined member in a room, this one
// included when it has one.
func (n *Node) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	var out []string
	err := n.db.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: roomServerPrefix(roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			s, err := kv.LastString(k)
			out = append(out, s)
			return err == nil, err
		})
	})
	return out, err
}
