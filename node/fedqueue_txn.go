package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
)

// The sender's side of the outbound queues (fedqueue.go): reading a
// destination's queue, forming the transaction in flight (and re-forming it
// after a restart), and acknowledging it once delivered.

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
		rec, err := core.LoadEventRecord(tx, e.eventID)
		if errors.Is(err, core.ErrNotFound) {
			n.Logger().Warn("queued outbound event not found", "event_id", e.eventID)
			used++
			continue
		}
		if err != nil {
			return nil, nil, 0, err
		}
		js, err := rec.ReadJSON(tx, e.eventID)
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
		return nil, nil, 0, fmt.Errorf("%w: limit %d", core.ErrInvalidParam, limit)
	}
	err = n.DB.View(func(tx *kv.Txn) error {
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
		return nil, fmt.Errorf("%w: limit %d", core.ErrInvalidParam, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Most calls (nothing queued, or a retry) only read: answer them
	// without a write, which would be a synced commit.
	var out *OutboundTxn
	write := false
	err := n.DB.View(func(tx *kv.Txn) error {
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
	err = e2ee.RetryConflicts(ctx, func() error {
		out = nil
		_, err := n.Stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
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
		rec.TxnID = fmt.Sprintf("%d-%s", rec.TxnUpTo, core.RandomString(12))
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
	err := e2ee.RetryConflicts(ctx, func() error {
		_, err := n.Stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
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
		return nil, fmt.Errorf("%w: limit %d", core.ErrInvalidParam, limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var next *OutboundTxn
	err := e2ee.RetryConflicts(ctx, func() error {
		next = nil
		_, err := n.Stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
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

// eachFedDest calls fn with each destination's queue record, in order of
// server name, while fn returns true.
func eachFedDest(tx *kv.Txn, fn func(dest string, rec fedDestRecord) (bool, error)) error {
	return tx.Each(kv.Scan{Prefix: kv.Key(tFedDest)}, func(k, v []byte) (bool, error) {
		dest, err := kv.LastString(k)
		if err != nil {
			return false, err
		}
		var rec fedDestRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, err
		}
		return fn(dest, rec)
	})
}

// Destinations lists the servers with queued outbound events or EDUs.
func (n *Node) Destinations(ctx context.Context) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		err := eachFedDest(tx, func(dest string, rec fedDestRecord) (bool, error) {
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
