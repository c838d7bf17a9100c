package inbound

import (
	"context"

	"github.com/edgenode/edgenode/node/core"
)

// coreFederation is the node's federation side as the room core sees it
// (core.Federation): joins, invites and history that reach other servers.
// It is a type of its own so that its methods, which the core calls from
// inside its own operations, are not methods of the node.
type coreFederation struct{ n *Inbound }

// CoreFederation is the room core's way to other servers (core.Federation),
// for core.Node.SetFederation.
func (n *Inbound) CoreFederation() core.Federation { return coreFederation{n} }

func (f coreFederation) JoinRemote(ctx context.Context, mc core.MembershipChange, servers []string) (string, error) {
	return f.n.joinRemote(ctx, mc, servers)
}

func (f coreFederation) RejectOutOfBand(ctx context.Context, mc core.MembershipChange) (string, error) {
	return f.n.rejectOutOfBand(ctx, mc)
}

func (f coreFederation) InviteRemote(ctx context.Context, req core.SendRequest) (string, error) {
	return f.n.inviteRemote(ctx, req)
}

func (f coreFederation) LookupAlias(ctx context.Context, alias string) (core.RoomAlias, error) {
	return f.n.LookupAlias(ctx, alias)
}

func (f coreFederation) BackfillRoom(ctx context.Context, roomID string) (int, error) {
	return f.n.backfillRoom(ctx, roomID)
}
