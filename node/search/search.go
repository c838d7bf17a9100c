// Package search is the node's server-side full-text search over room
// events (POST /search): an index of words kept in Badger, written in the
// room commit by a registered indexer (index.go), and the query that reads
// it for one user, applying history visibility (query.go).
//
// What is indexed: content.body of m.room.message, content.name of
// m.room.name and content.topic of m.room.topic, for accepted events that
// are not redacted. Encrypted rooms' messages are m.room.encrypted events:
// there is nothing for the server to index, as on every server.
//
// The index is a table of postings keyed (token, room, stream position), so
// looking a word up in one of the user's rooms is one prefix scan, newest
// first in reverse. A posting's value holds what the query needs to decide
// most hits without loading the event: the field the word is in, how often
// it occurs, the event's state-before snapshot (history visibility is a
// function of it for a user joined to the room) and the event ID.
//
// Redactions are handled in the indexer: an applied m.room.redaction
// deletes its target's postings in the same transaction, so a redacted
// message's words do not stay on disk. The query also skips events whose
// record says they are redacted, for the one case the indexer cannot see
// (a redaction that arrived over federation before its target).
//
// Events stored before the index existed (a node upgraded in place) are
// indexed once when the node opens, resumably (catchup.go). History
// backfilled from other servers is not indexed: its positions sort above
// every stream position, while the postings' keys and the query's cursors
// take numeric order for time order and load hits from the room stream.
//
// The package imports the room core (node/core) and kv, never node: node
// embeds *Search, so SearchRoomEvents is promoted on *node.Node for the
// sync API.
package search

import "github.com/edgenode/edgenode/node/core"

// Search is the search concern of a node: its index and its queries, over
// the room core it embeds (for the database and events).
type Search struct {
	*core.Node
	// maxScan is MaxPostingsScanned, or less in tests (export_test.go).
	maxScan int
	// catchUpEvents is the timeline events a catch-up transaction reads
	// (catchup.go), or fewer in tests.
	catchUpEvents int
}

// New returns the search concern of the room core c. node registers its
// Indexer with c.
func New(c *core.Node) *Search {
	return &Search{Node: c, maxScan: MaxPostingsScanned, catchUpEvents: catchUpEvents}
}
