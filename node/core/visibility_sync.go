package core

import (
	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// maxMembershipChain bounds how far back lastJoinEnd walks a user's
// membership history, so a long history costs bounded work; beyond it the
// answer is "never joined", which hides events rather than leaking them.
const maxMembershipChain = 64

// lastJoinEnd walks back from a user's membership event (their current
// one, a leave or ban) through the member events before it, to the latest
// time they were joined, and returns the position of the event that ended
// that join. ok is false when they were never joined. Under "shared"
// history a user who is no longer joined may see an event only if they were
// joined at some point after it: exactly when the event's position is at
// most end.
func (n *Node) lastJoinEnd(tx *kv.Txn, userID, memberEventID string) (end uint64, ok bool, err error) {
	id := memberEventID
	for range maxMembershipChain {
		rec, err := LoadEventRecord(tx, id)
		if err != nil {
			return 0, false, err
		}
		before, err := n.States.Read(tx, rec.StateBefore)
		if err != nil {
			return 0, false, err
		}
		prevID, found := before.Get(spec.MRoomMember, userID)
		if !found {
			return 0, false, nil
		}
		prev, err := n.LoadPDU(tx, prevID)
		if err != nil {
			return 0, false, err
		}
		if m, _ := prev.Membership(); m == spec.Join {
			return rec.Pos, true, nil
		}
		id = prevID
	}
	return 0, false, nil
}
