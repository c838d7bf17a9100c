package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// Queries across servers: aliases, profiles and end-to-end keys of other
// servers' users, through a RemoteQuerier the app provides. The node does
// not import the federation package (federation imports node); the app
// hands the node its federation client, which implements RemoteQuerier, as
// it does for RemoteJoiner and EventFetcher. Nothing a remote server answers
// is cached: every query asks again, so nothing grows without bound.

// RemoteQuerier asks another server about its aliases, users and keys. The
// app provides it from its federation client (part of Remote). Errors
// wrap ErrNotFound when the server answered 404, ErrForbidden for 403, and
// core.ErrRemoteUnavailable when it could not be reached or failed.
type RemoteQuerier interface {
	// QueryDirectory resolves an alias of server (query/directory).
	QueryDirectory(ctx context.Context, server, alias string) (core.RoomAlias, error)
	// QueryProfile reads the profile of a user of server; field is "",
	// "displayname" or "avatar_url" (query/profile).
	QueryProfile(ctx context.Context, server, userID, field string) (core.Profile, error)
	// QueryKeys asks server for its users' device and cross-signing keys
	// (user/keys/query), as it answered them.
	QueryKeys(ctx context.Context, server string, users map[string][]string) (RemoteKeys, error)
	// ClaimKeys claims one-time keys of server's users (user/keys/claim):
	// user ID -> device ID -> algorithm in; user ID -> device ID ->
	// "algorithm:key_id" -> key out, as it answered them.
	ClaimKeys(ctx context.Context, server string, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error)
}

// RemoteKeys is another server's answer to a keys query.
type RemoteKeys struct {
	DeviceKeys      map[string]map[string]json.RawMessage
	MasterKeys      map[string]json.RawMessage
	SelfSigningKeys map[string]json.RawMessage
}

// aliasServer is the server part of an alias ("" if it is malformed).
func aliasServer(alias string) string {
	local, server, ok := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	if !strings.HasPrefix(alias, "#") || !ok || local == "" || server == "" {
		return ""
	}
	return server
}

// LookupAlias resolves an alias on any server: a local one from the
// database, with the room's joined servers (this one first); another
// server's over federation. An alias nobody knows, or whose server cannot
// be reached, is ErrNotFound; a malformed one ErrInvalidParam.
func (n *Inbound) LookupAlias(ctx context.Context, alias string) (core.RoomAlias, error) {
	server := aliasServer(alias)
	switch {
	case server == "":
		return core.RoomAlias{}, fmt.Errorf("%w: malformed alias %q", core.ErrInvalidParam, alias)
	case server == n.ServerName():
		return n.localAlias(ctx, alias)
	}
	q := n.remoteQuerier()
	if q == nil {
		return core.RoomAlias{}, fmt.Errorf("alias %s: no federation: %w", alias, core.ErrNotFound)
	}
	ra, err := q.QueryDirectory(ctx, server, alias)
	if errors.Is(err, core.ErrRemoteUnavailable) {
		// The spec's answer for an alias that cannot be resolved is 404
		// M_NOT_FOUND (GET /directory/room, POST /join), whether its server
		// does not know it or cannot be found or asked: on a P2P network a
		// server name nobody serves is common. Not %w: the cause is said,
		// not made a 502.
		return core.RoomAlias{}, fmt.Errorf("alias %s cannot be resolved (%v): %w", alias, err, core.ErrNotFound)
	}
	if err != nil {
		return core.RoomAlias{}, err
	}
	if _, err := spec.NewRoomID(ra.RoomID); err != nil {
		return core.RoomAlias{}, fmt.Errorf("%w: %s resolved %s to %q", core.ErrRemoteUnavailable, server, alias, ra.RoomID)
	}
	// The alias's server can always be asked to join through, and comes
	// first: it answered just now.
	servers := []string{server}
	for _, s := range ra.Servers {
		if s != "" && s != n.ServerName() && !slices.Contains(servers, s) && len(servers) < maxAliasServers {
			servers = append(servers, s)
		}
	}
	return core.RoomAlias{RoomID: ra.RoomID, Servers: servers}, nil
}

// maxAliasServers bounds the servers kept from a remote alias answer: a join
// tries them one by one.
const maxAliasServers = 20

// localAlias resolves a local alias with the servers to join through: the
// room's joined servers, this one first. This server is listed even when it
// has no member left: it still has the room's state.
func (n *Inbound) localAlias(ctx context.Context, alias string) (core.RoomAlias, error) {
	roomID, err := n.ResolveAlias(ctx, alias)
	if err != nil {
		return core.RoomAlias{}, err
	}
	joined, err := n.JoinedServers(ctx, roomID)
	if err != nil {
		return core.RoomAlias{}, err
	}
	servers := []string{n.ServerName()}
	for _, s := range joined {
		if s != n.ServerName() {
			servers = append(servers, s)
		}
	}
	return core.RoomAlias{RoomID: roomID, Servers: servers}, nil
}

// LookupProfile returns the profile of any user: a local one's from the
// database, another server's over federation. field ("", "displayname" or
// "avatar_url") narrows what a remote server is asked for. An unknown user
// is ErrNotFound.
func (n *Inbound) LookupProfile(ctx context.Context, userID, field string) (core.Profile, error) {
	uid, err := spec.NewUserID(userID, true)
	if err != nil {
		return core.Profile{}, fmt.Errorf("%w: user ID %q", core.ErrInvalidParam, userID)
	}
	server := string(uid.Domain())
	if server == n.ServerName() {
		return n.Profile(ctx, userID)
	}
	q := n.remoteQuerier()
	if q == nil {
		return core.Profile{}, fmt.Errorf("profile of %s: no federation: %w", userID, core.ErrNotFound)
	}
	return q.QueryProfile(ctx, server, userID, field)
}
