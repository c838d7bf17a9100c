package node

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/edgenode/edgenode/node/keybackup"
	"github.com/edgenode/edgenode/node/mediaref"
	"github.com/edgenode/edgenode/node/push"
	"github.com/edgenode/edgenode/node/relations"
	"github.com/edgenode/edgenode/node/search"
	"github.com/edgenode/edgenode/node/userdir"
)

// Node is one homeserver: the room core (core.Node) and the concerns around
// it, each registered with the core in New. The concerns in packages of
// their own (e2ee, push, keybackup) are embedded so that their exported
// methods are promoted.
type Node struct {
	*core.Node
	// Inbound is the inbound federation side (node/inbound): what other
	// servers send and ask, and the remote joins, invites and queries.
	*inbound.Inbound
	// E2EE is end-to-end encryption and devices (node/e2ee): keys, the
	// to-device inboxes and the device-list stream.
	*e2ee.E2EE
	// Push is push rules and their evaluation, unread counts, the
	// notifications index, pushers and their gateway worker, and the
	// new-event hook (node/push).
	*push.Push
	// KeyBackups is server-side key backup (node/keybackup: /room_keys).
	*keybackup.KeyBackups
	// Relations is event relationships (node/relations): the relations
	// index, /relations and /threads pages and bundled aggregations.
	*relations.Relations
	// Search is the full-text index of room events and its queries
	// (node/search).
	*search.Search
	// Directory is the user directory (node/userdir: /user_directory/search).
	*userdir.Directory
	concerns
}

// concerns are the node's parts around the room core that still live in
// this package: accounts and account data, receipts, presence and typing,
// the outbound federation queues and sticky events. Each registers what it
// needs of the core in New.
type concerns struct {
	// accountData, receipts and presence number changes to account data,
	// receipts and presence; typing is in memory (see typing.go).
	accountData *kv.Stream
	receipts    *kv.Stream
	presence    *kv.Stream
	typing      *typingState

	// fed is the outbound federation queues' in-memory side (fedqueue.go).
	fed fedState
	// edu is the outbound EDU queues' in-memory side (eduqueue.go).
	edu eduState

	// sticky sweeps expired sticky events from their indexes (sticky_sweep.go).
	sticky *stickySweeper
	// presenceWatch decays presence: syncs in flight and the one timer
	// (presence_decay.go).
	presenceWatch *presenceWatch

	// mediaRefs queues other servers' media references for prefetch
	// (node/mediaref; mediarefs.go).
	mediaRefs *mediaref.Queue
}

// New opens the node's data directory (creating it, its key and its database
// on first use). The node is usable as soon as New returns; Close releases it.
func New(ctx context.Context, cfg core.Config) (*Node, error) {
	c, err := core.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{Node: c, Push: push.New(c), Relations: relations.New(c), Search: search.New(c), Directory: userdir.New(c)}
	n.Inbound = inbound.New(c, n, n.Relations)
	n.mediaRefs = mediaref.NewQueue(c.ServerName())
	// The order is part of the commit's behaviour: sticky events first,
	// because their push to newly joined servers goes into the outbound
	// queues before the batch's own events are counted against the queue
	// cap; the room lists before the notifier, so a woken sync sees them; the
	// outbound queues after the membership indexes (the commit writes those
	// before any indexer); the new-event observer, then the media references
	// (both only hand the durable batch on).
	n.SetIndexers(
		stickyIndexer{n},                   // sticky_index.go
		core.UserBumpIndexer{Node: c},      // userbump.go
		push.UnreadIndexer{Push: n.Push},   // push/unread.go
		relations.Indexer{R: n.Relations},  // relations/indexer.go
		search.Indexer{Search: n.Search},   // search/index.go
		core.NotifierIndexer{Node: c},      // notifier.go
		outboundIndexer{n: n},              // fedqueue.go
		push.NewEventIndexer{Push: n.Push}, // push/newevents.go
		// The user directory after the others: after a join over
		// federation, its after function indexes the room's members, which
		// need not delay anyone's wake-up.
		userdir.Indexer{D: n.Directory},      // userdir/indexer.go
		mediaref.Indexer{Queue: n.mediaRefs}, // mediaref/mediaref.go
	)
	n.SetFederation(n.CoreFederation())
	n.OnClose(n.stopTyping)        // its timer reads the database
	n.OnClose(n.stopStickySweeper) // so does the sweeper
	n.OnClose(n.stopPresenceDecay) // and the presence timer
	n.OnClose(n.StopNewEvents)     // and the new-event worker
	n.OnClose(n.StopPushers)       // and the push gateway workers
	n.Push.SetHost(pushHost{n})    // pushhost.go
	if err := n.openConcerns(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.StartPushers(); err != nil {
		n.Close()
		return nil, err
	}
	if err := userdir.Build(ctx, n.Directory); err != nil {
		n.Close()
		return nil, err
	}
	if err := search.CatchUp(ctx, n.Search); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// openConcerns opens the concerns' streams and queues and starts their
// timers.
func (n *Node) openConcerns(ctx context.Context) error {
	e, err := e2ee.Open(n.Node, e2eeHost{n})
	if err != nil {
		return err
	}
	n.E2EE = e
	if err := n.openUserDataStreams(); err != nil {
		return err
	}
	if err := n.openEDUQueue(); err != nil {
		return err
	}
	if err := n.DropAbandonedJoins(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.openPresenceDecay(ctx); err != nil {
		return fmt.Errorf("node: presence: %w", err)
	}
	n.startStickySweeper()
	n.KeyBackups, err = keybackup.Open(ctx, n.Node)
	return err
}
