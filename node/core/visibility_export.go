package core

import "github.com/edgenode/edgenode/kv"

// Visible reports whether userID may see ev (rec is its stored record), by
// the room's history visibility as in force before the event: the check
// Event and the timeline make, for the concerns in packages of their own
// (search) that read events in bulk in their own transaction.
func (n *Node) Visible(tx *kv.Txn, userID string, ev *Event, rec *EventRecord) (bool, error) {
	return n.visible(tx, userID, ev, rec)
}
