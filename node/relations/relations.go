// Package relations owns event relationships (the spec's m.relates_to):
// the index of which events relate to which, written in the room commit by
// a registered indexer (indexer.go); the pages of GET /relations and GET
// /threads (query.go, threads.go); and the bundled aggregations served in
// unsigned["m.relations"] wherever events are served (bundle.go): the
// latest valid edit (m.replace), a thread's summary (m.thread) and the
// references (m.reference).
//
// It imports the room core (node/core) and kv, never node: node embeds
// *Relations, so the exported methods here (RelationsPage, ThreadsPage,
// Bundle, RelatedBy) are promoted on *node.Node for the client and sync
// APIs.
//
// History backfilled from other servers (node/backfill.go) is written
// outside the room commit; its writer indexes it with IndexBackfilled, at
// backfill positions the index orders before the stream (tables.go).
package relations

import "github.com/edgenode/edgenode/node/core"

// Relations is the relations concern of a node, over the room core it
// embeds (for the database and events).
type Relations struct {
	*core.Node
}

// New returns the relations concern of the room core c. node registers
// its Indexer with c.
func New(c *core.Node) *Relations { return &Relations{Node: c} }

// Relation types the server aggregates (the spec's names).
const (
	RelThread    = "m.thread"
	RelReplace   = "m.replace"
	RelReference = "m.reference"
)
