package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib"
)

// remoteParts is a Remote made of the parts a test installs. A part left
// nil answers as a server that cannot be reached (ErrRemoteUnavailable), as
// the federation client does: a test that sets only a joiner meets, for
// leaves, invites, queries and fetches, a network where no one answers.
type remoteParts struct {
	joiner  inbound.RemoteJoiner
	leaver  inbound.RemoteLeaver
	inviter inbound.RemoteInviter
	querier inbound.RemoteQuerier
	fetcher inbound.EventFetcher
}

var _ inbound.Remote = remoteParts{}

func unreachable(part, server string) error {
	return fmt.Errorf("%w: %s (no %s in this test)", core.ErrRemoteUnavailable, server, part)
}

func (r remoteParts) MakeJoin(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	if r.joiner == nil {
		return gomatrixserverlib.ProtoEvent{}, "", unreachable("joiner", server)
	}
	return r.joiner.MakeJoin(ctx, server, roomID, userID)
}

func (r remoteParts) SendJoin(ctx context.Context, server string, join gomatrixserverlib.PDU) (inbound.RemoteJoinState, error) {
	if r.joiner == nil {
		return inbound.RemoteJoinState{}, unreachable("joiner", server)
	}
	return r.joiner.SendJoin(ctx, server, join)
}

func (r remoteParts) MakeLeave(ctx context.Context, server, roomID, userID string) (gomatrixserverlib.ProtoEvent, gomatrixserverlib.RoomVersion, error) {
	if r.leaver == nil {
		return gomatrixserverlib.ProtoEvent{}, "", unreachable("leaver", server)
	}
	return r.leaver.MakeLeave(ctx, server, roomID, userID)
}

func (r remoteParts) SendLeave(ctx context.Context, server string, leave gomatrixserverlib.PDU) error {
	if r.leaver == nil {
		return unreachable("leaver", server)
	}
	return r.leaver.SendLeave(ctx, server, leave)
}

func (r remoteParts) SendInvite(ctx context.Context, server string, invite gomatrixserverlib.PDU, state []gomatrixserverlib.InviteStrippedState) (json.RawMessage, error) {
	if r.inviter == nil {
		return nil, unreachable("inviter", server)
	}
	return r.inviter.SendInvite(ctx, server, invite, state)
}

func (r remoteParts) QueryDirectory(ctx context.Context, server, alias string) (core.RoomAlias, error) {
	if r.querier == nil {
		return core.RoomAlias{}, unreachable("querier", server)
	}
	return r.querier.QueryDirectory(ctx, server, alias)
}

func (r remoteParts) QueryProfile(ctx context.Context, server, userID, field string) (core.Profile, error) {
	if r.querier == nil {
		return core.Profile{}, unreachable("querier", server)
	}
	return r.querier.QueryProfile(ctx, server, userID, field)
}

func (r remoteParts) QueryKeys(ctx context.Context, server string, users map[string][]string) (inbound.RemoteKeys, error) {
	if r.querier == nil {
		return inbound.RemoteKeys{}, unreachable("querier", server)
	}
	return r.querier.QueryKeys(ctx, server, users)
}

func (r remoteParts) ClaimKeys(ctx context.Context, server string, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	if r.querier == nil {
		return nil, unreachable("querier", server)
	}
	return r.querier.ClaimKeys(ctx, server, claims)
}

func (r remoteParts) GetMissingEvents(ctx context.Context, server, roomID string, req inbound.MissingEventsRequest) ([]json.RawMessage, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.GetMissingEvents(ctx, server, roomID, req)
}

func (r remoteParts) Backfill(ctx context.Context, server, roomID string, from []string, limit int) ([]json.RawMessage, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.Backfill(ctx, server, roomID, from, limit)
}

func (r remoteParts) EventAuth(ctx context.Context, server, roomID, eventID string) ([]json.RawMessage, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.EventAuth(ctx, server, roomID, eventID)
}

func (r remoteParts) StateIDs(ctx context.Context, server, roomID, eventID string) (*inbound.RoomStateIDs, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.StateIDs(ctx, server, roomID, eventID)
}

func (r remoteParts) State(ctx context.Context, server, roomID, eventID string) (*inbound.RoomState, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.State(ctx, server, roomID, eventID)
}

func (r remoteParts) Event(ctx context.Context, server, eventID string) (json.RawMessage, error) {
	if r.fetcher == nil {
		return nil, unreachable("fetcher", server)
	}
	return r.fetcher.Event(ctx, server, eventID)
}

// setRemotePart changes one part of n's remote, keeping the parts set before.
func setRemotePart(n *Node, set func(*remoteParts)) {
	var r remoteParts
	if old, ok := n.Remote().(remoteParts); ok {
		r = old
	}
	set(&r)
	n.SetRemote(r)
}

func setRemoteJoiner(n *Node, j inbound.RemoteJoiner) {
	setRemotePart(n, func(r *remoteParts) { r.joiner = j })
}

func setRemoteLeaver(n *Node, l inbound.RemoteLeaver) {
	setRemotePart(n, func(r *remoteParts) { r.leaver = l })
}

func setRemoteInviter(n *Node, i inbound.RemoteInviter) {
	setRemotePart(n, func(r *remoteParts) { r.inviter = i })
}

func setRemoteQuerier(n *Node, q inbound.RemoteQuerier) {
	setRemotePart(n, func(r *remoteParts) { r.querier = q })
}

func setEventFetcher(n *Node, f inbound.EventFetcher) {
	setRemotePart(n, func(r *remoteParts) { r.fetcher = f })
}
