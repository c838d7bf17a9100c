package core

import (
	"errors"

	"github.com/edgenode/edgenode/kv"
)

// What the relations concern (node/relations) needs of the room core
// beyond the Indexer interface: which event an accepted redaction removes
// content from, and an event with its visibility read in a transaction the
// caller already holds (one transaction for a page of relations or a
// response's bundled aggregations, rather than one per event).

// RedactTarget is the event this accepted redaction strips ("" when the
// event is no redaction, or one whose sender may not redact its target: the
// core then leaves the target whole, and so must every index).
func (p *PendingEvent) RedactTarget() string { return p.redactTarget }

// VisibleEvent returns a stored, accepted event if userID may see it, read
// through tx; ok is false (with no error) for an event that is unknown,
// rejected or hidden by history visibility.
func (n *Node) VisibleEvent(tx *kv.Txn, userID, eventID string) (ev *Event, ok bool, err error) {
	ev, rec, err := n.LoadEvent(tx, eventID)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ok, err = n.visible(tx, userID, ev, rec)
	if err != nil || !ok {
		return nil, false, err
	}
	return ev, true, nil
}
