package core

import (
	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib"
)

// Indexers: the secondary indexes of room events (sticky events, the users'
// room lists, unread counts, the outbound federation queues, ...) are not
// written by the room commit itself. Each concern registers an Indexer when
// the node is built (node.New, through SetIndexers), and the commit (commit.go) calls every
// registered one, in order, for each batch it commits:
//
//  1. before the commit's transaction opens (the room's lock is held),
//     Prepare: it may read the database, and says how many stream positions
//     of its own it needs (Stream.Commit must know the total up front);
//  2. inside the transaction, after the room core has written the batch's
//     timeline, state, room record and membership indexes, and before the
//     event records: Index writes the indexer's own keys, in the same
//     transaction, so an index never lags or leads the room;
//  3. once the transaction is durable, the action Index returned runs
//     (wake-ups, caches, queue notifications), in registration order.
//
// A new concern (relations, search, media references) lives in a package of
// its own that imports this one and plugs in by being added to the list
// node.New registers; commit.go does not change.

// An Indexer keeps one secondary index of room events in the room commit.
type Indexer interface {
	// Prepare is called before the commit's transaction opens. It may read
	// the database (with its own read transaction) and returns the plan the
	// commit hands back to Index: how many stream positions Index may use
	// (0 for most indexers) and anything it worked out.
	Prepare(c *RoomCommit) (IndexPlan, error)
	// Index writes the indexer's keys for the batch in the commit's
	// transaction. plan.First is the first of its plan.Positions reserved
	// positions (unused ones are gaps, which the stream tolerates). It
	// returns what to do once the commit is durable (nil for nothing).
	Index(tx *kv.Txn, c *RoomCommit, plan IndexPlan) (after func(), err error)
}

// IndexPlan is an indexer's preparation for one batch.
type IndexPlan struct {
	// Positions is how many stream positions Index may use at most.
	Positions int
	// First is the first of them, set by the commit before Index.
	First uint64
	// Data is the indexer's own, passed from Prepare to Index.
	Data any
}

// RoomCommit is a room batch's commit as the indexers see it. Fields set
// inside the transaction (Events, MemberChanges, Members, BumpPos, Wake) are
// empty in Prepare.
type RoomCommit struct {
	// RoomID is the batch's room.
	RoomID string
	// Start and Current are the room's current state before and after the
	// batch.
	Start, Current *State
	// Events are the batch's accepted events, in order, with their stream
	// positions.
	Events []CommittedEvent
	// MemberChanges are the member keys whose event the batch changed.
	MemberChanges []MemberChange
	// Members are the room's local members after the batch (user ID ->
	// "join" or "invite").
	Members map[string]string
	// BumpPos is the position of the batch's last event that bumps the room
	// in room lists (0 for none).
	BumpPos uint64
	// Wake lists the local users to wake once the commit is durable: those
	// whose membership changed and every local member.
	Wake []string

	Batch *Batch
}

// CommittedEvent is an accepted event of a batch.
type CommittedEvent struct {
	PDU gomatrixserverlib.PDU
	// Pos is its stream position.
	Pos uint64
	// State is the room's current state once the event is accepted.
	State *State
}

// MemberChange is a member key the batch changed ("" for no event; a user
// with no event has membership "leave").
type MemberChange struct {
	UserID                 string
	OldEventID, NewEventID string
	// OldMembership is the old event's membership ("" for no event);
	// Membership is the new one's.
	OldMembership, Membership string
	// Pos is the stream position of the new event (the batch's last
	// position when it has none).
	Pos uint64
}

// Event returns an event of the batch, or a stored one read through tx.
// (Not the batch's own read transaction: that is gone by commit time.)
func (c *RoomCommit) Event(tx *kv.Txn, eventID string) (gomatrixserverlib.PDU, error) {
	if p, ok := c.Batch.ByID[eventID]; ok {
		return p.PDU, nil
	}
	return c.Batch.Node.LoadPDU(tx, eventID)
}

// SetIndexers sets the indexers every room commit runs, in order: the
// order of their Index calls in the transaction and of their after functions
// once it is durable. New sets them before the node is used.
func (n *Node) SetIndexers(x ...Indexer) { n.indexers = x }

// NoPrepare is embedded by the indexers that have nothing to work out
// before the commit's transaction.
type NoPrepare struct{}

// Prepare returns an empty plan.
func (NoPrepare) Prepare(*RoomCommit) (IndexPlan, error) { return IndexPlan{}, nil }
