package core

import (
	"errors"
	"fmt"
	"strings"
)

// Rejected events are not stored. A peer can sign any number of events
// that fail auth (messages into a room it is not in, each up to 64 KiB):
// stored whole, 5,000 of them took 100 MB of a phone's disk and, parsed
// and cached, over 200 MB of its memory. The spec needs nothing of them
// beyond answering for them: a resend, or an event that names one as its
// prev or auth event, must get the same verdict. So the node remembers the
// verdict by event ID, in memory and bounded (rejectedMarks); an event
// forgotten, or sent again after a restart, is checked again, which costs
// an auth check against events the node has, never a fetch (an event
// naming an unknown one as prev or auth event is fetched as any gap is).

// Bounds on the rejected marks: how many are kept, and how much of each
// reason (auth errors name events and users, 300 bytes or so; a mark stays
// small: at most about 2.5 MiB for all of them).
const (
	maxRejectedMarks  = 4096
	maxRejectedReason = 512
)

// rejectedMark is what is remembered of a rejected event.
type rejectedMark struct {
	roomID string
	reason string
}

// rejectedMarks maps event IDs to the verdict on them.
type rejectedMarks = lru[string, rejectedMark]

func newRejectedMarks() *rejectedMarks { return newLRU[string, rejectedMark](maxRejectedMarks) }

// noteRejected remembers a rejected event's verdict.
func (n *Node) noteRejected(eventID, roomID, reason string) {
	if len(reason) > maxRejectedReason {
		reason = strings.ToValidUTF8(reason[:maxRejectedReason], "") + "…"
	}
	n.rejected.Put(eventID, rejectedMark{roomID: roomID, reason: reason})
}

// RejectedError is the verdict remembered on eventID in roomID, nil if
// there is none.
func (n *Node) RejectedError(eventID, roomID string) error {
	m, ok := n.rejected.Get(eventID)
	if !ok || m.roomID != roomID {
		return nil
	}
	return &InputError{EventID: eventID, Reason: errors.New(m.reason)}
}

// RejectedRefs is the verdict on ev when it names a remembered rejected
// event: rejected when one of its auth events is (as ownAuthEvents says of
// a stored one), refused without a verdict when one of its prev events is
// (as stateAfter does). nil when it names none.
func (b *Batch) RejectedRefs(id string, prevs, auths []string) error {
	for _, a := range auths {
		if _, ok := b.ByID[a]; !ok && b.Node.RejectedError(a, b.RoomID) != nil {
			reason := fmt.Sprintf("auth event %s was rejected", a)
			b.Node.noteRejected(id, b.RoomID, reason)
			return &InputError{EventID: id, Reason: errors.New(reason)}
		}
	}
	for _, p := range prevs {
		if _, ok := b.ByID[p]; !ok && b.Node.RejectedError(p, b.RoomID) != nil {
			return fmt.Errorf("%w: event %s: prev event %s was rejected", ErrForbidden, id, p)
		}
	}
	return nil
}
