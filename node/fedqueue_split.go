package node

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
)

// Taking apart a transaction the destination refuses.
//
// A destination may refuse a whole transaction for what one of its items
// carries (an event with invalid UTF-8 fails the X-Matrix check of the
// whole request, issue 13 finding 3). Resent as it is, it would be refused
// forever and hold up everything queued behind it, in every room. So the
// sender, on such a refusal, asks ShrinkTransaction to put back the second
// half of the transaction's items (PDUs first, then EDUs): the transaction
// in flight then carries the first half, under a new ID, and the
// transactions formed after it at most as many items (fedDestRecord.Split)
// until one is delivered, each delivery doubling the cap. Each refusal
// halves the transaction in flight and each delivery moves the queue on,
// so a refused item ends up alone in a transaction within log2(150)
// refusals; the sender drops it there (ackTransaction) once an empty
// transaction shows that the destination refuses the item and not every
// request. The cap and the transaction in flight are stored like the rest
// of the queue's bookkeeping, so a restart resumes the search.

// maxTxnItems is the most items a transaction carries: the spec's 50 PDUs
// and maxTxnEDUs EDUs. A split cap at or above it no longer binds.
const maxTxnItems = 50 + maxTxnEDUs

// widenSplit is the split cap after a delivery: doubled, and off once it
// no longer binds.
func widenSplit(split int) int {
	if split <= 0 || split*2 >= maxTxnItems {
		return 0
	}
	return split * 2
}

// ShrinkTransaction records that dest refused txn, its transaction in
// flight, for its content: the transaction in flight becomes the first
// half of txn's items (PDUs first, then EDUs) under a new ID, the others
// going back to the queue, and transactions formed until the next delivery
// carry at most as many items. It returns the new transaction in flight.
// txn must carry at least two items (ErrInvalidParam otherwise: a single
// refused item is dropped by acknowledging it). If txn is no longer in
// flight, the transaction that is (or the next one) is returned unchanged.
func (n *Node) ShrinkTransaction(ctx context.Context, dest string, txn *OutboundTxn, limit int) (*OutboundTxn, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit %d", core.ErrInvalidParam, limit)
	}
	var out *OutboundTxn
	err := e2ee.RetryConflicts(ctx, func() error {
		out = nil
		_, err := n.Stream.Commit(0, func(tx *kv.Txn, _ uint64) error {
			var err error
			out, err = n.shrinkIn(tx, dest, txn.TxnID, limit)
			return err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("shrink transaction %s for %s: %w", txn.TxnID, dest, err)
	}
	return out, nil
}

// shrinkIn is ShrinkTransaction's write, inside tx (under the stream's
// lock).
func (n *Node) shrinkIn(tx *kv.Txn, dest, txnID string, limit int) (*OutboundTxn, error) {
	rec, err := loadFedDest(tx, dest)
	if err != nil {
		return nil, err
	}
	if rec.TxnID == "" || rec.TxnID != txnID {
		return n.formTxn(tx, dest, limit)
	}
	var q []queuedPDU
	if rec.TxnUpTo > 0 {
		if q, err = readQueue(tx, dest, rec.Head, limit, rec.TxnUpTo); err != nil {
			return nil, err
		}
		// The entries the transaction carried: its PDUs' byte budget may
		// have left some of them for the next one.
		_, _, used, err := n.loadQueued(tx, q)
		if err != nil {
			return nil, err
		}
		q = q[:used]
	}
	erec, err := loadEDUDest(tx, dest)
	if err != nil {
		return nil, err
	}
	items := len(q) + len(erec.InFlight)
	if items < 2 {
		return nil, fmt.Errorf("%w: a transaction of %d items cannot be split", core.ErrInvalidParam, items)
	}
	keep := items / 2
	if keep <= len(q) {
		rec.TxnUpTo = q[keep-1].pos
		erec.InFlight = nil
	} else {
		erec.InFlight = erec.InFlight[:keep-len(q)]
	}
	rec.Split = keep
	rec.TxnID = fmt.Sprintf("%d-%s", rec.TxnUpTo, core.RandomString(12))
	if err := tx.SetJSON(fedDestKey(dest), rec); err != nil {
		return nil, err
	}
	if err := saveEDUDest(tx, dest, erec); err != nil {
		return nil, err
	}
	return n.inFlightTxn(tx, dest, rec, limit)
}
