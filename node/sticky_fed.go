package node

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Sticky events over federation (MSC4354, "Federation behaviour").
//
// Outbound, a node sends only its own sticky events (it holds their
// prev_events, which the receiver may ask for):
//
//   - live ones go out like any event (enqueueOutbound);
//   - when a server's first member joins a room, the commit of that join
//     queues for it every unexpired sticky event of the room sent by a user
//     of this server, oldest first (planStickyPush, writeStickyPush). They
//     take stream positions reserved before the commit (stickyPlan.reserve),
//     so they follow the join and every event of its batch in that
//     destination's queue, and each has a unique, increasing position;
//   - a queue entry of a sticky event records when it stops being sticky,
//     so the cap that drops a destination's oldest entries skips it while
//     it is unexpired without loading the event (keepOnOverflow): a long
//     outage or a flood of other events never loses one, and the peer gets
//     it when it is back (the queue is on disk, so a restart keeps it too).
//
// Inbound, an old sticky event (a new joiner's, or one caught up after a
// partition) names prev_events the receiver may not have: the ordinary
// gap machinery fetches them, bounded (up to 10 get_missing_events rounds
// of 50 events per room of an inbound batch, each walking back from what
// the last brought, then the state at the missing prev events of up to 5
// PDUs, fedmissing.go and fedgap.go), and the event is
// then input, indexed and served like a live one. The resident serves
// events a joiner may not see (history visibility) redacted, so the DAG
// connects whatever the room's visibility. The fetched events are input as
// ordinary events (they become the receiver's, as any gap's do).
//
// Rate limiting is the proposal's option B: remote sticky events are
// persisted, and delivery to a client is paced instead. A /sync response
// carries at most 100 of them (syncapi's stickyLimit; the rest follow,
// page by page, from its next_batch), so a server sending many cannot flood a client's
// sync. No /send is refused because of sticky events: option A would make
// the sender retry every other PDU of the transaction too.

// fedQueueValue is a tFedQueue value: the event ID, followed, for a sticky
// event, by a NUL byte and its end (Unix ms, big-endian), which event IDs
// never contain.
func fedQueueValue(eventID string, endMS int64, sticky bool) []byte {
	v := make([]byte, 0, len(eventID)+9)
	v = append(v, eventID...)
	if sticky {
		v = append(v, 0)
		v = binary.BigEndian.AppendUint64(v, uint64(max(endMS, 0)))
	}
	return v
}

// parseFedQueueValue reads a tFedQueue value (fedQueueValue).
func parseFedQueueValue(v []byte) (eventID string, endMS int64, sticky bool) {
	if n := len(v); n > 9 && v[n-9] == 0 {
		return string(v[:n-9]), int64(binary.BigEndian.Uint64(v[n-8:])), true
	}
	return string(v), 0, false
}

// outboundValue is the queue value of a local event the batch sends.
func outboundValue(pdu gomatrixserverlib.PDU, nowMS int64) []byte {
	end, sticky := core.StickyEndOf(pdu, nowMS)
	return fedQueueValue(pdu.EventID(), end, sticky && end > nowMS)
}

// keepOnOverflow reports whether a queue entry must survive a full queue:
// an unexpired sticky event does.
func keepOnOverflow(v []byte, nowMS int64) bool {
	_, end, sticky := parseFedQueueValue(v)
	return sticky && end > nowMS
}

// stickyPush is the queueing, in a join's commit, of this server's
// unexpired sticky events of the room for servers whose first member
// joins in the batch.
type stickyPush struct {
	// dests are the servers with a first member joining.
	dests []string
	// own are this server's unexpired sticky events of the room stored
	// before the batch, oldest first.
	own []stickyRecord
}

// size is how many stream positions the push needs.
func (sp *stickyPush) size() int { return len(sp.dests) * len(sp.own) }

// notify is the destinations the push queued events for.
func (sp *stickyPush) notify() []string {
	if sp.size() == 0 {
		return nil
	}
	return sp.dests
}

// noteJoiner adds the server of a user who joins in the batch to the
// push's destinations if it had no joined member before the batch.
func noteJoiner(b *core.Batch, tx *kv.Txn, sp *stickyPush, userID string) error {
	server := core.ServerOf(userID)
	if server == "" || server == b.Node.ServerName() || slices.Contains(sp.dests, server) {
		return nil
	}
	joined, err := tx.Has(core.RoomServerKey(b.RoomID, server))
	if err != nil || joined {
		return err
	}
	sp.dests = append(sp.dests, server)
	return nil
}

// noteOwnSticky adds an entry of the room's sticky index to the push when
// a user of this server sent it and it is still sticky.
func noteOwnSticky(b *core.Batch, sp *stickyPush, rec stickyRecord, nowMS int64) {
	if len(sp.dests) > 0 && rec.EndMS > nowMS && core.ServerOf(rec.Sender) == b.Node.ServerName() {
		sp.own = append(sp.own, rec)
	}
}

// writeStickyPush queues the push's events for its destinations at
// positions next, next+1, ... (reserved: at most last), and returns the
// position after the last one used.
func writeStickyPush(tx *kv.Txn, sp *stickyPush, next, last uint64) (uint64, error) {
	if sp.size() == 0 {
		return next, nil
	}
	if next+uint64(sp.size()) > last {
		return 0, fmt.Errorf("sticky push: more entries than reserved positions")
	}
	for _, dest := range sp.dests {
		rec, err := loadFedDest(tx, dest)
		if err != nil {
			return 0, err
		}
		for _, s := range sp.own {
			if err := tx.Set(fedQueueKey(dest, next), fedQueueValue(s.EventID, s.EndMS, true)); err != nil {
				return 0, err
			}
			next++
			rec.Count++
		}
		if err := tx.SetJSON(fedDestKey(dest), rec); err != nil {
			return 0, err
		}
	}
	return next, nil
}
