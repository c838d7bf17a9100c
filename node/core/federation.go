package core

import "context"

// Federation is what the room core asks of the node's federation side when a
// client's request reaches past this server: a join or an invite rejection
// for a room not held here, an invite of another server's user (its server
// signs first), another server's alias, and older history of a room. The
// core holds no network code; the node sets this before it serves anything.
type Federation interface {
	// JoinRemote joins mc.Sender to a room this node does not have, asking
	// servers (or, when empty, the servers the invite names) in turn.
	JoinRemote(ctx context.Context, mc MembershipChange, servers []string) (eventID string, err error)
	// RejectOutOfBand rejects an invite to a room this node does not have.
	RejectOutOfBand(ctx context.Context, mc MembershipChange) (eventID string, err error)
	// InviteRemote invites a user of another server.
	InviteRemote(ctx context.Context, req SendRequest) (eventID string, err error)
	// LookupAlias resolves an alias, asking its server when it is not ours.
	LookupAlias(ctx context.Context, alias string) (RoomAlias, error)
	// BackfillRoom fetches older history of a room from the servers in it and
	// reports how many events it stored.
	BackfillRoom(ctx context.Context, roomID string) (int, error)
}

// SetFederation gives the core its federation side. Call it before the node
// serves requests; it is not safe to call concurrently with them.
func (n *Node) SetFederation(f Federation) { n.federation = f }
