// Package node assembles a homeserver: New opens the room core (node/core)
// and the concerns around it, registers what each needs of the core (the
// indexers of the room commit in their order, the federation hook, the stops
// at close), and Node embeds them all, so their methods are the node's and
// the consumers (clientapi, syncapi, federation, app) hold one *Node through
// interfaces of their own.
//
// The concerns in packages of their own are node/inbound (the inbound
// federation side), node/e2ee (keys and devices), node/push (unread counts,
// push evaluation, the new-event hook) and node/keybackup. Those still in
// this package: accounts, devices and tokens; account data and filters;
// receipts, presence and typing (the EDUs, both ways); the outbound federation
// and EDU queues; and sticky events, described below.
//
// # Sticky events (MSC4354)
//
// An event is sticky when its top-level msc4354_sticky (or, on receipt,
// sticky) object has an integer duration_ms in 0..3,600,000. Local sends add
// the object after building the event and then re-hash, re-sign and
// re-derive the ID (WithStickyKey, node/core/stickyformat.go); redaction strips it. An event
// is sticky until min(received, origin_server_ts) + min(duration, 1 hour).
//
// Tables (tables_sticky.go), all written in the commit of the batch that
// causes them:
//
//   - tSticky (room, position): each accepted, served sticky event still
//     sticky at commit, local or federated: the sticky stream beside the
//     event stream, with the event's ID, sender and end.
//   - tStickyUser (user, position): a join's backlog. When a local user's
//     membership becomes join, one entry lists the positions of the room's
//     unexpired sticky events, oldest first, and stands for as many fresh
//     positions of the room event stream (reserved in the same commit), so
//     the backlog pages one event at a time yet costs one small write
//     (8 bytes an event). tStickyJoin (user, room) records the join's
//     position: tSticky entries up to it reach that user through the
//     backlog instead, so none comes twice; a rejoin replaces the backlog.
//   - tStickySoft (room, sender, event): soft-failed sticky events, re-checked
//     against the current state when their sender joins, and served (given
//     a position, indexed in tSticky) if they now pass (sticky_softfail.go).
//   - tStickyExpiry (end, kind, ...): one entry per entry above. A sweeper
//     goroutine (sticky_sweep.go, started by New, stopped by Close) deletes
//     expired entries, at most 1,000 per transaction, waking at the next
//     end or within a minute, so the tables hold only what is still sticky.
//
// StickyEvents (sticky_query.go) reads a user's due sticky events for /sync:
// entries of both tables in (after, upto] for the user's joined rooms,
// merged by position, unexpired, unredacted, whose sender is joined in the
// current state (so a sender's leave takes their events off /sync), at most
// a limit, with the cursor to resume from. History visibility is not
// applied: joined users see every unexpired sticky event of the room.
//
// Over federation (sticky_fed.go): a node sends only its own sticky events;
// a server whose first member joins gets this node's unexpired ones of the
// room, queued in the join's commit at reserved positions; queue entries of
// sticky events carry their end, and the queue cap never drops an unexpired
// one. Inbound, old sticky events are accepted through the gap machinery
// (get_missing_events rounds, then the state at missing prev events), and
// PDUs of a room being joined wait for the join (node/inbound/joining.go). Rate limiting
// is the proposal's option B: persist, and deliver at most 100 per /sync
// response. StickyStats (sticky_stats.go) is the admin view.
package node
