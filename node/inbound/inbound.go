// Package inbound is the node's side facing other servers about rooms: what
// they send and ask of it, and what the node asks of them for its own users.
//
// It owns inbound PDUs and transactions (federated.go: parse, order, wait for
// joins in progress, fetch missing prev and auth events, fill gaps with the
// state at them), the history other servers ask for and the node fetches
// from them (backfill into storage, /backfill, get_missing_events, the state,
// event and auth-chain queries), joins, leaves and invites in both directions
// (make/send join and leave, remote joins written in chunks, invites and
// out-of-band memberships of rooms the node does not have), and the queries
// of other servers' aliases, profiles and keys. All of it reaches other
// servers through one Remote, set after New (remote.go). The outbound side
// (the queues that push the node's own events and EDUs) is not here: it hangs
// off the room core's commit as an indexer, while everything here comes in
// through the core's input.
//
// It may import node/core, node/e2ee (the key shapes an answer must have),
// kv, internal/jsontext and gomatrixserverlib, never
// node: node embeds an *Inbound in its Node, so the methods here are
// *node.Node's, and gives it what it needs of the other concerns (LocalKeys).
// The room core reaches it through core.Federation (CoreFederation).
package inbound

import (
	"context"
	"encoding/json"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// Inbound is the node's inbound federation side over its room core.
type Inbound struct {
	*core.Node

	// keys are the node's own end-to-end keys (the e2ee concern's).
	keys LocalKeys
	// remote reaches other servers: joins, leaves, invites, queries and
	// missing events (remote.go).
	remote guarded[Remote]
	// joining are the rooms being joined through the remote (joining.go).
	joining joiningRooms
	// history index what backfill stores (backfill.go).
	history []HistoryIndexer
}

// A HistoryIndexer keeps an index of room events (relations, search) up to
// date with history fetched from other servers, which backfill stores
// outside the room commit and so outside the core's Indexers. Index runs in
// backfill's transaction for each event it stores, at its backfill
// position.
type HistoryIndexer interface {
	IndexBackfilled(tx *kv.Txn, ev gomatrixserverlib.PDU, pos uint64) error
}

// LocalKeys are the local users' end-to-end keys, which QueryAllKeys and
// ClaimAllKeys merge with other servers' answers. They belong to the e2ee
// concern; *node.Node provides them.
type LocalKeys interface {
	// QueryKeys returns local users' device and cross-signing keys as
	// requester may see them.
	QueryKeys(ctx context.Context, requester string, users map[string][]string) (
		deviceKeys map[string]map[string]json.RawMessage, masterKeys, selfSigningKeys, userSigningKeys map[string]json.RawMessage, err error,
	)
	// ClaimKeys claims one-time (or fallback) keys of local users' devices.
	ClaimKeys(ctx context.Context, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error)
}

// New returns the inbound side of the room core c, with no remote (SetRemote),
// keys for the local users' keys, and the indexes backfilled history goes
// into.
func New(c *core.Node, keys LocalKeys, history ...HistoryIndexer) *Inbound {
	return &Inbound{Node: c, keys: keys, history: history}
}
