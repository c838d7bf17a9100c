// Package push owns push rules and what they decide about the events a
// local user receives: the users' rules, kept as m.push_rules account data
// through the node (ruleset.go, userrules.go), and their evaluation
// (eval.go, rules.go, lookup.go); the unread notification counts that /sync
// reports, whole and per thread, and the notifications index of GET
// /notifications (unread.go, unread_threads.go, notifications.go), written
// in the room commit; pushers and the worker that
// posts to their push gateways (pushers.go, gateway.go); and the app's
// new-event hook that tells an embedding app of each event for its users
// and whether it notifies them (newevents.go).
//
// It hangs off the room core as two registered indexers (core.Indexer): the
// counts and notifications are written in the room commit's own
// transaction (the pushes queued once it is durable), and the new-event hook
// is handed each durable commit. It imports the room core (node/core)
// and kv, never node: node embeds *Push, so the exported methods here
// (UnreadCounts, PushRules, SetPusher, Notifications, SetNewEventHandler,
// ...) are promoted on *node.Node for the client and sync APIs and the app.
//
// Read receipts stay with the receipts concern in node: it decides which
// receipts mark a room read and passes the positions they reach to
// RecountUnread and RecountThreadUnread, so this package needs nothing of
// receipts' storage.
package push

import "github.com/edgenode/edgenode/node/core"

// Push is the push concern of a node: its unread counts and its new-event
// hook, over the room core it embeds (for the database, events and state).
type Push struct {
	*core.Node

	// newEvents tells an app of events for its users (newevents.go).
	newEvents newEventHook
	// host reaches the account data the push rules are kept in
	// (userrules.go); rules caches their compiled form.
	host  Host
	rules rulesCache
	// pushers is the gateway worker (gateway.go).
	pushers pusherState
}

// New returns the push concern of the room core c. It starts nothing: the
// new-event worker starts with the first handler, and node registers the
// indexers (UnreadIndexer, NewEventIndexer) and StopNewEvents with c.
func New(c *core.Node) *Push {
	return &Push{Node: c}
}
